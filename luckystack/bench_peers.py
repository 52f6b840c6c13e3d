"""luckystack against PlanetarySystemStacker (PSS 0.9.8), whole commands as a user types them.

``luckystack bench --vs-pss [--pairs N]`` (or ``python -m luckystack.bench_peers``) simulates a 2000-frame
640×480 8-bit Jupiter and a 1280×960 Moon once into ``--workdir``, then alternates, ``--pairs`` times,
``luckystack run pipelines/planet.json --input X`` (default stack sizes 10, 25, 50 %; run in a fresh
folder, so its ``./cache`` is cold every time) with PSS's defaults on the same file (planet mode, best 10 %),
and ``surface.json`` with PSS's surface mode (``-m Surface``) on the Moon. PSS runs through
``run_pss.sh`` of the peers folder (``$LUCKYSTACK_PEERS``, else ``../shared/peers`` beside the repository;
``install_pss.sh`` there installs it in its own Python 3.10). It prints, per program, the medians of the
whole process tree's wall time, CPU time (user + system of every process, workers included) and peak
anonymous memory (the tree's RssAnon summed, sampled 20 times a second), and luckystack's ratio to PSS.

luckystack's own modules are compiled to bytecode first, as a user's first run leaves them (PSS's were
compiled when pip installed it); without that, an environment that sets ``PYTHONDONTWRITEBYTECODE``
would make every timed command compile luckystack's sources again.

The benchmark's process becomes the child subreaper of what it starts, so workers orphaned at exit are
still waited for: their CPU time counts, and a run ends when its last process does.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from luckystack.bench import REPO, _descendants, _status_kb, machine, page_in, recording
from luckystack.graph.allocator import default_huge_pages

PR_SET_CHILD_SUBREAPER = 36
SAMPLE_S = 0.05
LINGER_S = 60.0  # longest wait for orphaned workers after the main process exits


def _become_subreaper() -> bool:
    """Orphaned descendants are re-parented to this process (Linux), so they can be waited for."""
    import ctypes  # (here: the CLI imports this module's arguments at every start)

    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, finished but not yet waited for, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _started(pid: int) -> int:
    """When ``pid`` started (clock ticks since boot); 0 when it is gone."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def _reap(pid: int) -> None:
    """Wait for ``pid`` if it is a finished child of this process (an orphan re-parented here)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def measure_tree(argv: list[str], cwd: Path, env: dict[str, str] | None = None,
                 log: Path | None = None) -> dict[str, float]:
    """Run ``argv`` in ``cwd`` and measure its whole process tree: ``wall`` (s, until its last process
    ends), ``cpu`` (s, user + system of every process), ``anon_mb`` (peak of the tree's summed RssAnon,
    sampled every :data:`SAMPLE_S` s) and ``rc`` (the main process's exit status). Output goes to ``log``.
    The tree is every process below this one that started with or after the command (orphans are
    re-parented here); other children of this process are left alone."""
    _become_subreaper()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = [0]
    tree: set[int] = set()
    done = threading.Event()

    def members() -> set[int]:
        seen = {p for p in _descendants(os.getpid()) if _started(p) >= start} | tree
        tree.update(seen)
        return {p for p in seen if _alive(p)}

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], sum(_status_kb(p, "RssAnon") for p in members()))
            done.wait(SAMPLE_S)

    sink = open(log, "w") if log else subprocess.DEVNULL
    try:
        t = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT)
        start = _started(proc.pid)
        tree.add(proc.pid)
        watch = threading.Thread(target=sample, daemon=True)
        watch.start()
        rc = proc.wait()
        deadline = time.monotonic() + LINGER_S
        while time.monotonic() < deadline:  # the workers it leaves behind (re-parented here) end too
            alive = members()
            for p in tree - alive:
                _reap(p)
            if not alive:
                break
            time.sleep(0.01)
        wall = time.perf_counter() - t
        done.set()
        watch.join()
    finally:
        if log:
            sink.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "anon_mb": peak[0] / 1024, "rc": rc}


@dataclass
class Contest:
    """One recording, the two commands run on it, and their measurements."""

    name: str
    recording: Path
    ours: list[str]
    theirs: list[str]
    runs: dict[str, list[dict[str, float]]] = field(default_factory=lambda: {"luckystack": [], "PSS": []})

    def median(self, who: str, what: str) -> float:
        return statistics.median(r[what] for r in self.runs[who])


def peers_folder() -> Path:
    """Where install_pss.sh and run_pss.sh are: $LUCKYSTACK_PEERS, else ../shared/peers up the tree."""
    if os.environ.get("LUCKYSTACK_PEERS"):
        return Path(os.environ["LUCKYSTACK_PEERS"])
    for up in (REPO.parent, *REPO.parent.parents):
        if (up / "shared" / "peers" / "run_pss.sh").is_file():
            return up / "shared" / "peers"
    return REPO.parent / "shared" / "peers"


def luckystack_command() -> list[str]:
    """``luckystack`` as installed beside this Python (what a user types), else ``python -m luckystack``."""
    script = Path(sys.executable).with_name("luckystack")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "luckystack"]


def play(contests: list[Contest], pairs: int, work: Path) -> None:
    """``pairs`` rounds; in each, every contest runs luckystack then PSS (A B A B …), each in a fresh
    folder; a failed run stops the benchmark with its log's path."""
    for k in range(pairs):
        for c in contests:
            for who, argv in (("luckystack", c.ours), ("PSS", c.theirs)):
                folder = work / "runs" / f"{c.name}-{who}"
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
                page_in(c.recording)  # in the page cache for both alike
                log = work / "runs" / f"{c.name}-{who}.log"
                r = measure_tree([a.replace("{out}", str(folder)) for a in argv], folder, log=log)
                if r["rc"] != 0:
                    raise RuntimeError(f"{who} failed on {c.recording.name} (exit {r['rc']}); see {log}")
                c.runs[who].append(r)
                print(f"  pair {k + 1}/{pairs} {c.name} {who}: {r['wall']:.2f} s wall, {r['cpu']:.2f} s CPU, "
                      f"{r['anon_mb']:.0f} MB", file=sys.stderr, flush=True)


def report(contests: list[Contest]) -> str:
    """The table: per contest and program, median wall, CPU and peak memory, and luckystack / PSS."""
    head = ["recording", "program", "runs", "wall s", "CPU s", "peak anon MB"]
    rows = []
    for c in contests:
        for who in ("luckystack", "PSS"):
            rows.append([c.name, who, str(len(c.runs[who]))] +
                        [f"{c.median(who, w):.2f}" for w in ("wall", "cpu")] + [f"{c.median(who, 'anon_mb'):.0f}"])
        rows.append([c.name, "luckystack / PSS", ""] +
                    [f"{c.median('luckystack', w) / c.median('PSS', w):.2f}x" for w in ("wall", "cpu", "anon_mb")])
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(x.ljust(w) for x, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def run_versus(args: argparse.Namespace) -> int:
    """The luckystack-against-PSS benchmark (see the module docstring)."""
    peers = peers_folder()
    run_pss = peers / "run_pss.sh"
    if not run_pss.is_file():
        print(f"error: no run_pss.sh in {peers} (set LUCKYSTACK_PEERS)", file=sys.stderr)
        return 2
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    default_huge_pages()  # (the command's set-up turned them off; PSS would inherit that)
    print(f"machine: {machine()}", flush=True)
    jupiter = recording(work, args.frames, 640, 480, 8, args.frames)
    moon = recording(work, args.moon_frames, 1280, 960, 8, args.moon_frames, scene="moon")
    ours = luckystack_command()
    for package in ("graph", "luckystack", "nodes"):  # as a first run leaves them (see the module docstring)
        compileall.compile_dir(str(REPO / package), quiet=1)
    contests = [
        Contest(f"Jupiter {args.frames} x 640x480", jupiter,
                ours + ["run", str(REPO / "pipelines" / "planet.json"), "--input", str(jupiter)],
                ["bash", str(run_pss), str(jupiter), "{out}"]),
        Contest(f"Moon {args.moon_frames} x 1280x960", moon,
                ours + ["run", str(REPO / "pipelines" / "surface.json"), "--input", str(moon)],
                ["bash", str(run_pss), str(moon), "{out}", "-m", "Surface"]),
    ]
    play(contests, args.pairs, work)
    print()
    print(report(contests))
    print(f"\nload average after the benchmark: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pairs", type=int, default=3, help="alternated luckystack/PSS pairs per recording (default: 3)")
    p.add_argument("--moon-frames", type=int, default=100,
                   help="frames of the 1280x960 Moon against PSS (default: 100)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m luckystack.bench_peers", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    p.add_argument("--frames", type=int, default=2000, help="frames of the Jupiter recording (default: 2000)")
    p.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "luckystack-bench"), metavar="DIR")
    return run_versus(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
