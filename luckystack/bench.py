"""Benchmark suite: speed and memory of ``pipelines/planet.json`` on simulated recordings
(and of ``pipelines/surface.json`` on a full-frame Moon, whose hundreds of APs test memory and cache).

``python -m luckystack.bench [--quick] [--full] [--runs N] [--workdir DIR]`` (or ``luckystack bench``)
simulates its recordings once into ``--workdir`` (reruns reuse them), runs every scenario ``--runs``
times, each timed run in a fresh subprocess so its memory belongs to that run alone and with its
recording read once just before (in the page cache, as a recording just captured), and prints one
table: scenario, frames, size, median wall time of ``api.run`` (input fingerprint included), frames/s,
peak memory (the main process's peak RSS; the sampled peak PSS of the main process and its joblib
workers together, in the memory scenarios, as sampling it slows a run; and the sum of every process's
exact peak RSS, an upper bound), cache bytes, and the nodes that ran with their seconds (the per-node
breakdown of the cold run), then the targets met or missed.

Recordings longer than the simulated base (``--base`` frames) repeat its frames: speed and memory do
not depend on the frames being unique, and the simulator takes ~20 ms a frame.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from luckystack.graph.cli import Command

REPO = Path(__file__).resolve().parent.parent
PIPELINE = REPO / "pipelines" / "planet.json"
HEADER = 178  # SER header bytes


# ---- recordings ---------------------------------------------------------------------------------

def recording(workdir: Path, frames: int, width: int, height: int, depth: int, base: int,
              scene: str = "jupiter") -> Path:
    """A simulated recording of ``scene`` (cached in ``workdir``): ``base`` simulated frames, repeated."""
    from luckystack.io.ser_format import SerHeader, write_ser
    from luckystack.simulate.recording import simulate_command

    path = workdir / f"{scene}_{width}x{height}_{depth}bit_{frames}.ser"
    if path.is_file():
        return path
    n0 = min(frames, base)
    src = workdir / f"{scene}_{width}x{height}_{depth}bit_{n0}.ser"
    if not src.is_file():
        print(f"simulating {n0} frames {width}x{height} {depth}-bit {scene} …", file=sys.stderr, flush=True)
        simulate_command(scene, n0, src, width, height, depth, seed=0)
    if n0 == frames:
        return src
    dtype = np.uint8 if depth <= 8 else np.dtype("<u2")
    data = np.memmap(src, dtype, "r", HEADER, (n0, height, width))
    tmp = path.with_suffix(".part")
    write_ser(tmp, (data[i % n0] for i in range(frames)), SerHeader(width, height, pixel_depth=depth))
    tmp.rename(path)
    return path


# ---- one timed run (in a child process) ---------------------------------------------------------

def _status_kb(pid: int | str, field: str, name: str = "status") -> int:
    """A ``kB`` field of /proc/PID/status (or smaps_rollup); 0 when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/{name}").read_text()
    except OSError:
        return 0
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else 0


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``. A child belongs to the *thread* that started it (the node thread
    starts the workers), so each thread's list of children is read, not only the main thread's."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = []
        try:
            threads = os.listdir(f"/proc/{p}/task")
        except OSError:
            threads = []
        for tid in threads:
            try:
                kids += [int(c) for c in Path(f"/proc/{p}/task/{tid}/children").read_text().split()]
            except OSError:
                pass
        out += kids
        todo += kids
    return out


class MemoryWatch:
    """Every ``interval`` s, reads the exact peak RSS (VmHWM, a high-water mark, so the last reading
    holds it) of every descendant of this process (the joblib workers): with this process's own, their
    sum bounds the run's memory from above (pages shared between processes count in each). With
    ``pss`` it also samples the proportional set size (PSS: shared pages split between the processes
    sharing them) of this process and its descendants together, and keeps the peak; a sample can miss
    a short peak.

    PSS costs: reading smaps_rollup walks a process's page tables, ~3 ms for a run's four processes,
    which at 20 samples a second made a 2-job cold run 0.27–0.4 s slower (medians of 4–5, alternating).
    So only the memory scenarios sample it; the peak RSS readings cost ~0.2 ms.

    ``ru_maxrss`` cannot be used here: Linux carries a process's peak RSS across fork and exec, so a
    child started by a big parent reports the parent's peak (VmHWM starts afresh with the new program).
    """

    def __init__(self, pss: bool = True, interval: float = 0.05) -> None:
        import threading

        self.pss = pss
        self.peak_total = 0
        self.peak_workers = 0
        self.worker_hwm: dict[int, int] = {}  # pid → peak RSS (kB) last read
        self._stop = threading.Event()
        self._interval = interval
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "MemoryWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def sample(self) -> None:
        me = os.getpid()
        kids = _descendants(me)
        for p in kids:
            self.worker_hwm[p] = max(self.worker_hwm.get(p, 0), _status_kb(p, "VmHWM"))
        if self.pss:
            workers = [_status_kb(p, "Pss", "smaps_rollup") for p in kids]
            total = _status_kb(me, "Pss", "smaps_rollup") + sum(workers)
            self.peak_total = max(self.peak_total, total)
            self.peak_workers = max([self.peak_workers, *workers])

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the pipeline once as ``spec`` says; return times, per-node seconds and peak memory (MB):
    ``rss_main`` this process's peak RSS (VmHWM, exact), ``rss_bound`` the sum of every process's
    exact peak RSS (an upper bound of the run's memory) and, where ``spec["pss"]`` asks for them (they
    slow the run), ``pss_total`` the sampled peak PSS of all its processes together (main + joblib
    workers) and ``pss_worker`` the largest worker's (else None)."""
    import luckystack.nodes  # noqa: F401  (registers the node types)
    from luckystack.graph import api
    from luckystack.graph.progress import Reporter

    pipeline = api.load_pipeline(spec["pipeline"], spec.get("sets") or {})
    with MemoryWatch(pss=bool(spec.get("pss"))) as mem:
        t = time.perf_counter()
        [run] = api.run(pipeline, [spec["input"]], cache=spec["cache"], out=spec["out"], jobs=spec["jobs"],
                        reporter=Reporter())
        wall = time.perf_counter() - t
    rec = run.record
    main_kb = _status_kb("self", "VmHWM")
    return {"wall": wall, "ran": {n.id: n.seconds for n in rec.nodes.values() if n.status == "ran"},
            "rss_main": main_kb / 1024, "rss_bound": (main_kb + sum(mem.worker_hwm.values())) / 1024,
            "pss_total": mem.peak_total / 1024 if mem.pss else None,
            "pss_worker": mem.peak_workers / 1024 if mem.pss else None}


def page_in(path: Path) -> None:
    """Read the file once, so a timed run finds it in the page cache (as a recording just captured or
    copied) whatever the run before left there: the table measures luckystack, not the disk."""
    with open(path, "rb", buffering=0) as f:
        while f.read(16 << 20):
            pass


def timed_run(spec: dict[str, Any]) -> dict[str, Any]:
    """``_child(spec)`` in a fresh Python process, the recording paged in first; adds ``process`` (its
    whole wall time, imports too)."""
    page_in(Path(spec["input"]))
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "luckystack.bench", "--child", json.dumps(spec)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark run failed: {proc.stderr.strip().splitlines()[-1:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process"] = time.perf_counter() - t
    return out


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


# ---- scenarios ----------------------------------------------------------------------------------

@dataclass
class Row:
    scenario: str
    frames: int
    size: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    cache: int | None = None
    rec_bytes: int = 0
    note: str = ""

    @property
    def wall(self) -> float:
        return statistics.median(r["wall"] for r in self.runs)

    @property
    def process(self) -> float:
        """Median wall time of the whole child process: Python's start and the imports too, as a
        command typed at the shell."""
        return statistics.median(r["process"] for r in self.runs)

    def cells(self) -> list[str]:
        walls = [r["wall"] for r in self.runs]
        spread = f" ({min(walls):.2f}–{max(walls):.2f})" if len(walls) > 1 else ""
        main = max(r["rss_main"] for r in self.runs)
        pss = [r["pss_total"] for r in self.runs if r["pss_total"] is not None]
        total = f"{max(pss):.0f}" if pss else "-"
        bound = max(r["rss_bound"] for r in self.runs)
        ran = sorted(self.runs, key=lambda r: r["wall"])[len(self.runs) // 2]["ran"]
        nodes = " ".join(f"{k} {v:.2f}" for k, v in ran.items() if v >= 0.005) or "-"
        cache = "-" if self.cache is None else \
            f"{self.cache / 1e6:.1f} MB ({100 * self.cache / max(self.rec_bytes, 1):.1f} %)"
        return [self.scenario, str(self.frames), self.size, f"{self.wall:.2f}{spread}",
                f"{self.frames / self.wall:.0f}", f"{main:.0f} / {total} / {bound:.0f}", cache, nodes]


def _spec(rec: Path, cache: Path, out: Path, jobs: int | None, sets: dict | None = None,
          pipeline: Path = PIPELINE, pss: bool = False) -> dict[str, Any]:
    return {"pipeline": str(pipeline), "input": str(rec), "cache": str(cache), "out": str(out),
            "jobs": jobs, "sets": sets or {}, "pss": pss}


@dataclass
class Cold:
    """A cold-run scenario: its row, recording, jobs and pipeline, where to keep its last cache, and
    whether to sample PSS (see :class:`MemoryWatch`)."""

    row: Row
    rec: Path
    jobs: int | None
    pipeline: Path = PIPELINE
    keep: Path | None = None
    pss: bool = False


def cold(name: str, rec: Path, frames: int, size: str, jobs: int | None, keep: Path | None = None,
         pipeline: Path = PIPELINE, pss: bool = False) -> Cold:
    """The cold-run scenario ``name`` of recording ``rec`` (its row still empty)."""
    return Cold(Row(name, frames, size, rec_bytes=rec.stat().st_size), rec, jobs, pipeline, keep, pss)


def cold_runs(scenarios: list[Cold], runs: int, work: Path) -> list[Row]:
    """Cold runs (empty cache each time) of every scenario, in ``runs`` rounds of one run each: this
    machine's speed drifts by 10–15 % over the minutes of a bench, and a drift then falls on every
    scenario alike, so their ratios (2 jobs against 1, 16-bit and 4× pixels against 8-bit) stay fair.
    Each scenario's last cache is kept at its ``keep`` if given."""
    for k in range(runs):
        for s in scenarios:
            cache = work / "cache_cold"
            shutil.rmtree(cache, ignore_errors=True)
            s.row.runs.append(timed_run(_spec(s.rec, cache, work / "out", s.jobs, pipeline=s.pipeline, pss=s.pss)))
            s.row.cache = dir_bytes(cache)
            if s.keep is not None and k == runs - 1:
                shutil.rmtree(s.keep, ignore_errors=True)
                cache.rename(s.keep)
        if runs > 1:
            print(f"  round {k + 1} of {runs}: " + ", ".join(f"{s.row.scenario} {s.row.runs[-1]['wall']:.2f} s"
                                                           for s in scenarios), file=sys.stderr, flush=True)
    return [s.row for s in scenarios]


def rerun(name: str, rec: Path, frames: int, size: str, cache: Path, variants: list[dict], work: Path,
          jobs: int | None) -> Row:
    """Runs on a warm cache, each with overrides not yet cached (so only the changed nodes run)."""
    row = Row(name, frames, size)
    for sets in variants:
        row.runs.append(timed_run(_spec(rec, cache, work / "out", jobs, sets)))
    return row


def engine_overhead() -> tuple[float, str]:
    """benchmarks/engine_overhead.py: hash + explain + load of a fully cached 20-node pipeline (seconds,
    its output)."""
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "engine_overhead.py")], capture_output=True,
                         text=True, check=True).stdout
    m = re.search(r"fully cached:\s+([0-9.]+) s", out)
    return (float(m.group(1)) if m else float("nan")), out


def machine() -> str:
    model = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    return f"{os.cpu_count()} cores, {model}{mem}; Python {platform.python_version()}; load average {load}"


def table(rows: list[Row]) -> str:
    head = ["scenario", "frames", "size", "wall s (median; min–max)", "frames/s",
            "peak MB: main RSS / all PSS / all RSS",
            "cache", "nodes that ran (s, median run)"]
    body = [r.cells() for r in rows]
    widths = [max(len(c) for c in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(b) for b in body])


def run_suite(args: argparse.Namespace) -> int:
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    runs, jobs = args.runs, args.jobs
    n = args.frames
    big_n = max(1, n // 4)
    mem_n = tuple(int(v) for v in args.memory_frames.split(","))
    if args.full:
        mem_n = (mem_n[0], 20000)
    print(f"machine: {machine()}", flush=True)
    rec8 = recording(work, n, 640, 480, 8, max(args.base, n))
    rec16 = recording(work, n, 640, 480, 16, args.base)
    rec_big = recording(work, big_n, 1280, 960, 8, args.base // 2)
    moon = recording(work, big_n, 1280, 960, 8, args.base // 2, scene="moon")
    rows: list[Row] = []

    def add(row: Row) -> Row:
        rows.append(row)
        print(f"  {row.scenario}: {row.wall:.2f} s", file=sys.stderr, flush=True)
        return row

    warm = work / "cache_warm"
    base, deep, big, surface, one = cold_runs([
        cold("cold, 8-bit", rec8, n, "640x480", jobs, keep=warm),
        cold("cold, 16-bit", rec16, n, "640x480", jobs),
        cold("cold, 8-bit, 4x pixels", rec_big, big_n, "1280x960", jobs),
        cold("cold, Moon surface (surface.json, ~200 APs)", moon, big_n, "1280x960", jobs,
             pipeline=REPO / "pipelines" / "surface.json"),
        cold("cold, 8-bit, --jobs 1", rec8, n, "640x480", 1),
    ], runs, work)
    for row in (base, deep, big, surface):
        add(row)
    changed = add(rerun("rerun: stack size changed", rec8, n, "640x480", warm,
              [{"stack.percent": [10, 25, 40 + k]} for k in range(runs)], work, jobs))
    added = add(rerun("rerun: a larger stack size added", rec8, n, "640x480", warm,
                      [{"stack.percent": [10, 25, 50, 60 + k]} for k in range(runs)], work, jobs))
    post = add(rerun("rerun: merge/post params changed", rec8, n, "640x480", warm,
                     [{"merge.full_weight": 0.9 - 0.05 * k} for k in range(runs)], work, jobs))
    ap = add(rerun("rerun: AP size changed", rec8, n, "640x480", warm,
                   [{"align.ap_size": 80 - 8 * k} for k in range(runs)], work, jobs))
    add(one)
    mem = [add(cold_runs([cold(f"memory, {m} frames", recording(work, m, 640, 480, 8, args.base), m, "640x480",
                               jobs, pss=True)], 1, work)[0]) for m in mem_n]
    overhead, _ = engine_overhead()
    print()
    print(table(rows))
    rss = [max(r["pss_total"] for r in row.runs) for row in mem]
    bound = [max(r["rss_bound"] for r in row.runs) for row in mem]
    checks = [
        ("cold 8-bit ≥ 1000 frames/s", f"{n / base.wall:.0f} frames/s"),
        ("16-bit / 4x-pixel cold runs scale with pixels", f"{deep.wall / base.wall:.2f}x and "
         f"{big.wall / big.frames / (base.wall / n):.2f}x per frame (pixels 1x and 4x)"),
        ("stack size rerun < 1 s", f"{changed.wall:.2f} s (changed), {added.wall:.2f} s (one added); "
         f"{changed.process:.2f} s and {added.process:.2f} s as whole commands (Python's start and imports too)"),
        ("merge/post rerun < 1 s", f"{post.wall:.2f} s; {post.process:.2f} s as a whole command"),
        ("AP size rerun < half the cold run", f"{ap.wall / base.wall:.2f} of it"),
        ("peak memory < 600 MB, flat in frames (PSS of main + workers)",
         " vs ".join(f"{m} frames {v:.0f} MB" for m, v in zip(mem_n, rss))
         + " (at most " + " and ".join(f"{v:.0f}" for v in bound) + " MB: every process's peak RSS added)"),
        ("cache < 5 % of the recording", f"{100 * base.cache / base.rec_bytes:.1f} %"),
        ("jobs 2 vs 1 ≥ 1.7x", f"{one.wall / base.wall:.2f}x"),
        ("engine overhead, fully cached 20-node pipeline < 0.3 s", f"{overhead:.3f} s"),
    ]
    print()
    for what, got in checks:
        print(f"{what}: {got}")
    print(f"\nload average after the suite: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


# ---- command line -------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=int, default=3, help="timed runs per scenario (default: 3)")
    p.add_argument("--frames", type=int, default=2000, help="frames of the main recording (default: 2000)")
    p.add_argument("--base", type=int, default=500,
                   help="simulated frames that longer recordings repeat (default: 500)")
    p.add_argument("--quick", action="store_true", help="1 run per scenario, 1000 frames (about 2 minutes)")
    p.add_argument("--memory-frames", default="500,5000", metavar="N,N",
                   help="frame counts of the peak-memory scenario (default: 500,5000)")
    p.add_argument("--full", action="store_true", help="memory scenario up to 20,000 frames (6 GB on disk)")
    p.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "luckystack-bench"), metavar="DIR",
                   help="recordings and caches (kept, so reruns do not simulate again)")
    p.add_argument("--vs-pss", action="store_true",
                   help="instead: whole commands against PlanetarySystemStacker on a Jupiter (--frames) and a "
                        "1280x960 Moon, alternated (see luckystack.bench_peers)")
    from luckystack.bench_peers import add_arguments as peer_arguments

    peer_arguments(p)


def _run(args: argparse.Namespace) -> int:
    if args.vs_pss:
        from luckystack.bench_peers import run_versus

        return run_versus(args)
    if args.quick:
        args.runs, args.frames = 1, min(args.frames, 1000)
    args.jobs = getattr(args, "jobs", None)
    return run_suite(args)


COMMAND = Command(
    "bench", "benchmark speed and memory of pipelines/planet.json on simulated recordings", _run,
    add_arguments, __doc__.split("\n\n")[1], "example:\n  luckystack bench --quick\n  luckystack bench --runs 5 --full")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        print(json.dumps(_child(json.loads(argv[1]))))
        return 0
    p = argparse.ArgumentParser(prog="python -m luckystack.bench", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    return _run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
