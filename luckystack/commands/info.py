"""``luckystack info``: what the reader sees in a recording."""

from __future__ import annotations

import argparse

from luckystack.graph.cli import Command
from luckystack.graph.node import NodeError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a recording: SER, AVI, FITS cube, or a folder of FITS/TIFF/PNG frames")


def run(args: argparse.Namespace) -> int:
    from luckystack.info import describe

    try:
        print(describe(args.file))
    except (ValueError, OSError) as exc:
        raise NodeError(str(exc)) from None
    return 0


COMMAND = Command(
    "info", "show what the reader sees in a recording", run, add_arguments,
    "Format, size, colour layout, detected bit depth, frame count, duration and frame rate from\n"
    "the timestamps, and the capture program's metadata.",
    "example:\n  luckystack info jupiter.ser")
