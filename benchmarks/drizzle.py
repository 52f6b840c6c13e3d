"""Benchmark: the stack node's time with drizzle 2× against the plain stack, on one recording.

``python benchmarks/drizzle.py [--frames 300] [--size 640x480] [--rounds 3] [--jobs N]`` simulates a
Jupiter recording (unless ``--recording`` is given), runs ``pipelines/planet.json`` once so the upstream
nodes are cached, then alternates plain and drizzle-2× stacks (every stack entry removed before each,
so neither builds on earlier sums) and prints each stack node time, the medians and their ratio
(target: drizzle under 3× the plain stack).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/drizzle.py", description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", default="640x480", help="WxH of the simulated recording")
    ap.add_argument("--rounds", type=int, default=3, help="plain/drizzle pairs, alternating")
    ap.add_argument("--recording", help="use this recording instead of simulating one")
    ap.add_argument("--jobs", type=int, default=1, help="processes per node (default: 1)")
    args = ap.parse_args(argv)
    from luckystack import api
    from luckystack.graph.progress import Reporter
    from luckystack.graph.store import CacheStore

    with tempfile.TemporaryDirectory(prefix="bench_drizzle_") as tmp:
        work = Path(tmp)
        recording = Path(args.recording) if args.recording else None
        if recording is None:
            from luckystack.simulate.recording import simulate_command

            w, h = (int(v) for v in args.size.lower().split("x"))
            recording = simulate_command("jupiter", args.frames, work / "jupiter.ser", w, h, seed=1)["ser"]
        store = CacheStore(work / "cache")
        times: dict[float, list[float]] = {1: [], 2: []}
        for _ in range(args.rounds):
            for zoom in (1, 2):
                p = api.load_pipeline(REPO / "pipelines" / "planet.json", {"stack.drizzle": zoom})
                for entry in store.entries():
                    if entry.type in ("stack", "merge", "post"):
                        store.remove(entry.key)
                [run] = api.run(p, [recording], cache=store, out=work / "out", jobs=args.jobs, reporter=Reporter(),
                                report=False)
                times[zoom].append(run.record.nodes["stack"].seconds)
                print(f"stack node, {'drizzle 2x' if zoom == 2 else 'plain     '}: {times[zoom][-1]:.2f} s", flush=True)
        plain, drizzle = statistics.median(times[1]), statistics.median(times[2])
        print(f"median plain {plain:.2f} s, drizzle 2x {drizzle:.2f} s: {drizzle / plain:.2f}x (target < 3x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
