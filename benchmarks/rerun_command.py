"""A stack-size rerun as the user types it: ``python benchmarks/rerun_command.py``.

Runs ``luckystack run pipelines/planet.json --input REC`` once (the full run, skipped when ``--cache``
holds it), then for each of ``--sizes`` the whole command again with ``--set stack.percent=[P]`` (a size
no earlier run made, so the stack node builds on the cached results), as a new process each time.
Prints per command its wall time, its CPU time (user + system, with its worker processes), and the
stack node's own seconds from the run record; then the same command once more (everything cached: the
floor of a rerun, Python's start, imports, look-ups, export and report); then the medians. ``--luckystack`` picks the command to
time (another checkout's, for an A/B comparison, alternating with ``--against``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _command(luckystack: str, pipeline: Path, rec: Path, cache: Path, out: Path, sets: list[str]) -> list[str]:
    return [luckystack, "run", str(pipeline), "--input", str(rec), "--cache", str(cache), "--out", str(out),
            *[a for s in sets for a in ("--set", s)]]


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children) of one command."""
    before = os.times()
    t0 = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    after = os.times()
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr.strip().splitlines()[-1] if done.stderr else ''}")
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def stack_seconds(out: Path, rec: Path) -> float:
    record = json.loads((out / rec.stem / "run.json").read_text())
    return next(n["seconds"] for n in record["nodes"] if n["id"] == "stack")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/rerun_command.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--recording", default="/tmp/benchwd/jupiter_640x480_8bit_2000.ser",
                    help="the recording (default: the bench's 2000-frame 640x480 Jupiter)")
    ap.add_argument("--sizes", default="7,13,17,23,33,42,47,9",
                    help="the stack sizes (%%) of the reruns, each one a new command (default: 7,13,17,23,33,42,47,9)")
    ap.add_argument("--workdir", default=None, help="cache and output folders (default: a temporary folder)")
    ap.add_argument("--luckystack", default=str(Path(sys.executable).with_name("luckystack")),
                    help="the luckystack command to time (default: this Python's)")
    ap.add_argument("--against", default=None, metavar="LUCKYSTACK",
                    help="another luckystack command, timed alternately with its own cache (A/B)")
    ap.add_argument("--pipeline", default=str(REPO / "pipelines" / "planet.json"))
    args = ap.parse_args(argv)
    rec = Path(args.recording)
    if not rec.is_file():
        sys.exit(f"{rec}: not found (make one with `luckystack simulate`)")
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="lsk-rerun-"))
    commands = {"this": args.luckystack} | ({"other": args.against} if args.against else {})
    rows: dict[str, list[tuple[str, float, float, float]]] = {name: [] for name in commands}
    cached: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    try:
        for name, exe in commands.items():
            wall, cpu = timed(_command(exe, Path(args.pipeline), rec, work / f"cache-{name}", work / f"out-{name}", []))
            print(f"{name}: full run {wall:.2f} s (CPU {cpu:.2f} s)", flush=True)
        for size in args.sizes.split(","):
            for name, exe in commands.items():
                out = work / f"out-{name}"
                wall, cpu = timed(_command(exe, Path(args.pipeline), rec, work / f"cache-{name}", out,
                                           [f"stack.percent=[{size}]"]))
                rows[name].append((size, wall, cpu, stack_seconds(out, rec)))
                print(f"{name}: P{size:<5} whole command {wall:5.2f} s (CPU {cpu:5.2f} s), stack node "
                      f"{rows[name][-1][3]:5.2f} s", flush=True)
        for size in args.sizes.split(","):
            for name, exe in commands.items():  # the same command again: nothing to compute
                out = work / f"out-{name}"
                cmd = _command(exe, Path(args.pipeline), rec, work / f"cache-{name}", out,
                               [f"stack.percent=[{args.sizes.split(',')[-1]}]"])
                cached[name].append(timed(cmd))
                print(f"{name}: all cached whole command {cached[name][-1][0]:5.2f} s "
                      f"(CPU {cached[name][-1][1]:5.2f} s)", flush=True)
        load = " ".join(f"{v:.1f}" for v in os.getloadavg())
        print(f"\nmedians over {len(args.sizes.split(','))} reruns (load average now {load}):")
        for name, r in rows.items():
            print(f"  {name} ({commands[name]}): whole command {statistics.median(x[1] for x in r):.2f} s, "
                  f"CPU {statistics.median(x[2] for x in r):.2f} s, stack node {statistics.median(x[3] for x in r):.2f} s; "
                  f"all cached {statistics.median(x[0] for x in cached[name]):.2f} s, "
                  f"CPU {statistics.median(x[1] for x in cached[name]):.2f} s")
        if args.against:
            ratio = (statistics.median(x[1] for x in rows["this"]) / statistics.median(x[1] for x in rows["other"]))
            ratio_cached = (statistics.median(x[0] for x in cached["this"])
                            / statistics.median(x[0] for x in cached["other"]))
            print(f"  this / other: stack-size rerun {ratio:.2f}, all cached {ratio_cached:.2f}")
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
