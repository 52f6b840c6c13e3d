"""Benchmark: what a stack-size sweep costs once the shared steps are cached.

``python benchmarks/sweep_sizes.py [--frames 2000] [--size 640x480] [--recording FILE]`` simulates a
recording (unless one is given), runs ``pipelines/planet.json`` once with ``stack.percent=25`` on an
empty cache (the full run), then sweeps ``stack.percent=5,10,25,50``: 25 is found cached and the three
new sizes recompute only stack, merge and post. Prints both times and each new size's cost as a
fraction of the full run (target: under 10 %).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from luckystack.graph import api
from luckystack.graph.progress import Reporter

REPO = Path(__file__).resolve().parent.parent
SWEEP = [5, 10, 25, 50]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/sweep_sizes.py", description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--size", default="640x480", help="WxH of the simulated recording")
    ap.add_argument("--recording", help="use this recording instead of simulating one")
    ap.add_argument("--pipeline", default=str(REPO / "pipelines" / "planet.json"))
    ap.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    args = ap.parse_args(argv)
    import luckystack.nodes  # noqa: F401  (registers the node types)

    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        work = Path(tmp)
        if args.recording:
            recording = Path(args.recording)
        else:
            from luckystack.simulate import simulate_command

            w, h = (int(v) for v in args.size.lower().split("x"))
            t = time.perf_counter()
            recording = simulate_command("jupiter", args.frames, work / "bench.ser", w, h, seed=7)["ser"]
            print(f"simulated {args.frames} frames {w}x{h} in {time.perf_counter() - t:.1f} s")
        pipeline = api.load_pipeline(args.pipeline)
        common = {"cache": work / "cache", "out": work / "out", "jobs": args.jobs, "reporter": Reporter()}
        t = time.perf_counter()
        api.run(pipeline, [recording], sweep={"stack.percent": [25]}, **common)
        full = time.perf_counter() - t
        t = time.perf_counter()
        runs = api.run(pipeline, [recording], sweep={"stack.percent": SWEEP}, **common)
        sweep = time.perf_counter() - t
        new = [n for n in SWEEP if n != 25]
        ran = api.sweep_executions(runs)
        per_size = sweep / len(new)
        print(f"first run (stack.percent=25, empty cache): {full:.2f} s")
        print(f"sweep stack.percent={','.join(map(str, SWEEP))} after it: {sweep:.2f} s "
              f"({len(new)} new sizes; nodes computed: "
              + ", ".join(f"{k} {v}" for k, v in ran.items() if v) + ")")
        print(f"each additional stack size: {per_size:.2f} s = {100 * per_size / full:.1f} % of the first run "
              f"(target < 10 %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
