"""``luckystack demo``: simulate a Jupiter recording, stack it with pipelines/planet.json, write a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from luckystack.commands import progress_reporter
from luckystack.graph.cli import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=int, default=400, help="frames to simulate (default: 400)")
    p.add_argument("--out", "-o", default="out", metavar="DIR", help="output root (default: ./out)")
    p.add_argument("--workdir", default="demo", metavar="DIR",
                   help="where the simulated recording goes (default: ./demo)")


def run(args: argparse.Namespace) -> int:
    from luckystack.cli import main, shipped_pipeline
    from luckystack.simulate.recording import simulate_command

    recording = Path(args.workdir) / "jupiter.ser"
    if not recording.is_file():
        print(simulate_command("jupiter", args.frames, recording, seed=1, reporter=progress_reporter())["line"])
    else:
        print(f"using the simulated recording {recording} from an earlier demo")
    argv = ["run", str(shipped_pipeline("planet")), "--input", str(recording), "--out", args.out]
    for name in ("cache", "jobs"):
        if getattr(args, name, None) is not None:
            argv = [f"--{name}", str(getattr(args, name))] + argv
    if getattr(args, "debug", False):
        argv = ["--debug"] + argv
    status = main(argv)
    if status == 0:
        report = Path(args.out) / recording.stem / "report.html"
        print(f"\ndemo results are in {Path(args.out) / recording.stem}/ — open {report} in a browser")
    return status


COMMAND = Command(
    "demo", "simulate a Jupiter recording, stack it with pipelines/planet.json, write a report", run, add_arguments,
    "The quickest look at luckystack: no file of your own needed. The simulated recording is\n"
    "kept in --workdir, so running the demo again reuses the cache and finishes at once.",
    "example:\n  luckystack demo\n  luckystack demo --frames 1000 --out results")
