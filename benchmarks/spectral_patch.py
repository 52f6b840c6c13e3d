"""Benchmark: CPU per patch of spectral (Fourier) stacking, the stack's ``_add_spectra``, by patch side.

``python benchmarks/spectral_patch.py [--sides 48 88 132 192] [--aps N] [--frames 40] [--rounds 5]``
adds ``--frames`` frames of a textured 1280×960 scene into the spectral sums of a grid of APs (seven
bands, the chain of a planet's default sizes; each frame's patches in one of them) and prints the least (and median) CPU µs per patch of ``--rounds`` rounds
per side: on a shared machine the least is the steadiest figure. Run it with another checkout's interpreter to compare (it imports whatever ``luckystack`` that
interpreter has installed).
"""

from __future__ import annotations

import argparse
import statistics
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


def run(side: int, aps: int, frames: int) -> float:
    """Seconds per patch of adding ``frames`` frames' patches of ``aps`` APs of ``side`` px."""
    from luckystack.imaging import stacking
    from luckystack.imaging.stacking import StackPlan, _accumulators

    frame = scene()
    h, w = frame.shape[:2]
    step = side // 2
    grid = [(y, x) for y in range(8, h - side - 8, step) for x in range(8, w - side - 8, step)][:aps]
    origins = np.array(grid, np.int32)
    plan = StackPlan(stream=None, origins=origins, patch=side, zoom=1.0, method="interpolate", pixfrac=1.0,
                     interpolation="cubic", bands=7, crop_offset=(0, 0), out_shape=(h, w), channels=1,
                     spectral_power=2.0)
    num, den, sq = _accumulators(plan, len(origins))
    rng = np.random.default_rng(1)
    weights = np.ones(len(origins))
    start = time.process_time()
    for _ in range(frames):
        offsets = rng.uniform(-3, 3, (len(origins), 2))
        members = [[int(b)] for b in rng.integers(0, plan.bands, len(origins))]
        stacking._add_spectra(num, den, sq, plan, frame, list(range(len(origins))), offsets, members,
                              np.zeros(len(origins), np.int32), weights, 1.1)
    return (time.process_time() - start) / (frames * len(origins))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/spectral_patch.py", description=__doc__.split("\n")[0])
    ap.add_argument("--sides", type=int, nargs="+", default=[48, 88, 132, 192])
    ap.add_argument("--aps", type=int, default=0, help="APs per frame (default: 64 at ≤ 64 px, else 24)")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    for side in args.sides:
        aps = args.aps or (64 if side <= 64 else 24)
        run(side, aps, 2)  # warm caches
        times = [run(side, aps, args.frames) for _ in range(args.rounds)]
        print(f"side {side:4d} px, {aps} APs: {min(times) * 1e6:7.1f} µs per patch "
              f"(the least of {args.rounds} rounds; median {statistics.median(times) * 1e6:.1f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
