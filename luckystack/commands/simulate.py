"""``luckystack simulate``: write a simulated recording (SER) and its truth."""

from __future__ import annotations

import argparse

from luckystack.commands import progress_reporter
from luckystack.graph.cli import Command, UsageError

SCENES = ("jupiter", "saturn", "moon", "sun")
LAYOUTS = ("mono", "RGB", "RGGB", "GRBG", "GBRG", "BGGR")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scene", choices=SCENES, default="jupiter", help="what to simulate (default: jupiter)")
    p.add_argument("--frames", type=int, default=300, help="number of frames (default: 300)")
    p.add_argument("--size", default="640x480", metavar="WxH", help="frame size (default: 640x480)")
    p.add_argument("--bit-depth", type=int, default=8, help="data bit depth, 8 or 9..16 (default: 8)")
    p.add_argument("--layout", choices=LAYOUTS, default="mono", help="mono, RGB or a Bayer pattern (default: mono)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default: 0)")
    p.add_argument("--out", "-o", default=None, metavar="FILE",
                   help="SER file to write (default: ./<scene>.ser); the truth goes beside it")


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' → (640, 480); UsageError otherwise."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 640x480") from None
    return w, h


def run(args: argparse.Namespace) -> int:
    from luckystack.simulate.recording import simulate_command

    width, height = parse_size(args.size)
    try:
        summary = simulate_command(args.scene, args.frames, args.out or f"{args.scene}.ser", width, height,
                                   args.bit_depth, args.layout, args.seed, reporter=progress_reporter())
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(summary["line"])
    return 0


COMMAND = Command(
    "simulate", "write a simulated recording (SER) and its truth, for testing settings", run, add_arguments,
    "Simulates seeing (global drift, local distortion, blur varying between frames and across\n"
    "the field), transparency, photon and read noise. The truth (<name>.truth.npz) holds the\n"
    "sharp image and every frame's true shifts, for judging a stack.",
    "example:\n  luckystack simulate --scene moon --frames 500 --out moon.ser\n"
    "  luckystack run pipelines/surface.json --input moon.ser")
