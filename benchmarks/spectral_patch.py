"""Benchmark: CPU per patch of spectral (Fourier) stacking, the stack's ``_add_spectra``, by patch side.

``python benchmarks/spectral_patch.py [--sides 36 48 72 88 132 192] [--aps N] [--frames 8] [--rounds 7]
[--against PYTHON [--pairs 5]]`` adds ``--frames`` frames of a textured 1280×960 frame into the spectral
sums of a grid of APs (seven bands, the chain of a planet's default sizes; each patch in one of them) and
prints the least CPU µs per patch of ``--rounds`` rounds per side: on a shared machine the least is the
steadiest figure. With ``--against`` (another checkout's interpreter, e.g. main's venv) each side is
timed ``--pairs`` times in fresh processes of this interpreter and that one, alternating, and the median
ratio of their least times is printed as well.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np


def scene(h: int = 960, w: int = 1280, seed: int = 0) -> np.ndarray:
    """A (h, w, 1) float32 frame with detail at every scale (summed smoothed noise)."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.zeros((h, w), np.float32)
    for sigma in (1, 3, 9, 27):
        img += cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), sigma) * sigma
    return (img - img.min())[..., None] * np.float32(10)


def run(frame: np.ndarray, side: int, aps: int, frames: int) -> float:
    """CPU seconds per patch of adding ``frames`` frames' patches of ``aps`` APs of ``side`` px."""
    from luckystack.imaging import stacking

    h, w = frame.shape[:2]
    step = side // 2
    grid = [(y, x) for y in range(8, h - side - 8, step) for x in range(8, w - side - 8, step)][:aps]
    origins = np.array(grid, np.int32)
    plan = stacking.StackPlan(stream=None, origins=origins, patch=side, zoom=1.0, method="interpolate",
                              pixfrac=1.0, interpolation="cubic", bands=7, crop_offset=(0, 0),
                              out_shape=(h, w), channels=1, spectral_power=2.0)
    num, den, sq = stacking._accumulators(plan, len(origins))
    rng = np.random.default_rng(1)
    weights = np.ones(len(origins))
    start = time.process_time()
    for _ in range(frames):
        offsets = rng.uniform(-3, 3, (len(origins), 2))
        members = [[int(b)] for b in rng.integers(0, plan.bands, len(origins))]
        stacking._add_spectra(num, den, sq, plan, frame, list(range(len(origins))), offsets, members,
                              np.zeros(len(origins), np.int32), weights, 1.1)
    return (time.process_time() - start) / (frames * len(origins))


def least(side: int, aps: int, frames: int, rounds: int) -> float:
    """The least of ``rounds`` rounds' CPU seconds per patch, after one warm-up round."""
    frame = scene()
    run(frame, side, aps, 2)
    return min(run(frame, side, aps, frames) for _ in range(rounds))


def _in_process(python: str, side: int, aps: int, args: argparse.Namespace) -> float:
    out = subprocess.run([python, __file__, "--sides", str(side), "--aps", str(aps), "--frames", str(args.frames),
                          "--rounds", str(args.rounds), "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])[str(side)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/spectral_patch.py", description=__doc__.split("\n")[0])
    ap.add_argument("--sides", type=int, nargs="+", default=[36, 48, 72, 88, 132, 192])
    ap.add_argument("--aps", type=int, default=0, help="APs per frame (default: 64 below 64 px, else 24)")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--against", metavar="PYTHON", help="another checkout's interpreter to alternate with")
    ap.add_argument("--pairs", type=int, default=5, help="alternating process pairs per side (--against)")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    found = {}
    for side in args.sides:
        aps = args.aps or (64 if side < 64 else 24)
        if args.json:
            found[str(side)] = least(side, aps, args.frames, args.rounds)
            continue
        if not args.against:
            print(f"side {side:4d} px, {aps} APs: {least(side, aps, args.frames, args.rounds) * 1e6:7.1f} µs "
                  f"per patch", flush=True)
            continue
        this, that = [], []
        for _ in range(args.pairs):
            this.append(_in_process(sys.executable, side, aps, args))
            that.append(_in_process(args.against, side, aps, args))
        ratios = [a / b for a, b in zip(this, that)]
        print(f"side {side:4d} px, {aps} APs: {min(this) * 1e6:7.1f} µs per patch against {min(that) * 1e6:7.1f}"
              f" µs: {statistics.median(ratios):.2f}× (pairs {min(ratios):.2f}–{max(ratios):.2f})", flush=True)
    if args.json:
        print(json.dumps(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
