"""The ``luckystack`` command: the engine's commands (run, explain, schema, cache) plus the app's own.

App commands: ``demo`` (simulate a Jupiter recording and stack it), ``simulate`` (write a simulated
recording and its truth), ``info`` (what the reader sees in a recording), ``compare`` (rank result
images side by side). After every run the app writes ``report.html`` into the output folder.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from luckystack.bench import COMMAND as bench_command
from luckystack.compare import COMMAND as compare_command
from luckystack.graph import cli as engine_cli
from luckystack.graph.cli import Command, UsageError

REPO_ROOT = Path(__file__).resolve().parent.parent
PIPELINES = REPO_ROOT / "pipelines"
SCENES = ("jupiter", "saturn", "moon", "sun")
LAYOUTS = ("mono", "RGB", "RGGB", "GRBG", "GBRG", "BGGR")


def shipped_pipeline(name: str) -> Path:
    """The path of a pipeline shipped in ``pipelines/`` (``planet`` → pipelines/planet.json)."""
    path = PIPELINES / f"{name}.json"
    if not path.is_file():
        raise UsageError(f"no shipped pipeline {name!r} in {PIPELINES}")
    return path


# ---- simulate ---------------------------------------------------------------------------------

def _simulate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scene", choices=SCENES, default="jupiter", help="what to simulate (default: jupiter)")
    p.add_argument("--frames", type=int, default=300, help="number of frames (default: 300)")
    p.add_argument("--size", default="640x480", metavar="WxH", help="frame size (default: 640x480)")
    p.add_argument("--bit-depth", type=int, default=8, help="data bit depth, 8 or 9..16 (default: 8)")
    p.add_argument("--layout", choices=LAYOUTS, default="mono", help="mono, RGB or a Bayer pattern (default: mono)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default: 0)")
    p.add_argument("--out", "-o", default=None, metavar="FILE",
                   help="SER file to write (default: ./<scene>.ser); the truth goes beside it")


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 640x480") from None
    return w, h


def _cmd_simulate(args: argparse.Namespace) -> int:
    from luckystack.simulate.recording import simulate_command

    width, height = _parse_size(args.size)
    try:
        summary = simulate_command(args.scene, args.frames, args.out or f"{args.scene}.ser", width, height,
                                   args.bit_depth, args.layout, args.seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(summary["line"])
    return 0


# ---- info -------------------------------------------------------------------------------------

def _info_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a recording: SER, AVI, FITS cube, or a folder of FITS/TIFF/PNG frames")


def _cmd_info(args: argparse.Namespace) -> int:
    from luckystack.graph.node import NodeError
    from luckystack.info import describe

    try:
        print(describe(args.file))
    except (ValueError, OSError) as exc:
        raise NodeError(str(exc)) from None
    return 0


# ---- demo -------------------------------------------------------------------------------------

def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=int, default=400, help="frames to simulate (default: 400)")
    p.add_argument("--out", "-o", default="out", metavar="DIR", help="output root (default: ./out)")
    p.add_argument("--workdir", default="demo", metavar="DIR",
                   help="where the simulated recording goes (default: ./demo)")


def _cmd_demo(args: argparse.Namespace) -> int:
    from luckystack.simulate.recording import simulate_command

    recording = Path(args.workdir) / "jupiter.ser"
    if not recording.is_file():
        print(simulate_command("jupiter", args.frames, recording, seed=1)["line"])
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


def _report_after_run(record, out_dir: Path) -> None:
    from luckystack.report.build import write_run_report

    path = write_run_report(record, out_dir)
    print(f"  report {path}")


def app_commands() -> list[Command]:
    """The app's commands, added to the engine's."""
    commands = [
        Command("demo", "simulate a Jupiter recording, stack it with pipelines/planet.json, write a report",
                _cmd_demo, _demo_args,
                "The quickest look at luckystack: no file of your own needed. The simulated recording is\n"
                "kept in --workdir, so running the demo again reuses the cache and finishes at once.",
                "example:\n  luckystack demo\n  luckystack demo --frames 1000 --out results"),
        Command("simulate", "write a simulated recording (SER) and its truth, for testing settings",
                _cmd_simulate, _simulate_args,
                "Simulates seeing (global drift, local distortion, blur varying between frames and across\n"
                "the field), transparency, photon and read noise. The truth (<name>.truth.npz) holds the\n"
                "sharp image and every frame's true shifts, for judging a stack.",
                "example:\n  luckystack simulate --scene moon --frames 500 --out moon.ser\n"
                "  luckystack run pipelines/surface.json --input moon.ser"),
        Command("info", "show what the reader sees in a recording", _cmd_info, _info_args,
                "Format, size, colour layout, detected bit depth, frame count, duration and frame rate from\n"
                "the timestamps, and the capture program's metadata.",
                "example:\n  luckystack info jupiter.ser"),
    ]
    return commands + [compare_command, bench_command]


def _after_sweep(runs, out_root: Path) -> None:
    from luckystack.report.comparison import write_comparison

    path = write_comparison(runs, out_root)
    if path is not None:
        print(f"\ncomparison: {path}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``luckystack`` command."""
    import luckystack.nodes  # noqa: F401  (registers the node types)

    return engine_cli.main(argv, commands=app_commands(), after_run=_report_after_run,
                           after_sweep=_after_sweep)


if __name__ == "__main__":
    sys.exit(main())
