"""``luckystack studio``: a local web page to try settings on a recording."""

from __future__ import annotations

import argparse

from luckystack.graph.cli import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="RECORDING_OR_FOLDER",
                   help="a recording, or a folder of recordings (listed, with a batch over all of them)")
    p.add_argument("--pipeline", "-p", default=None, metavar="FILE",
                   help="pipeline to start from (default: the shipped pipelines/planet.json)")
    p.add_argument("--out", "-o", default="out", metavar="DIR", help="output root, as for `run` (default: ./out)")
    p.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this computer only)")
    p.add_argument("--no-browser", action="store_true", help="print the URL but do not open a browser")


def run(args: argparse.Namespace) -> int:
    from luckystack.studio.command import run_command  # only this command imports the web stack

    return run_command(args)


COMMAND = Command(
    "studio", "a local web page to try settings on a recording (AP size, stack size, sharpening)", run,
    add_arguments,
    "Starts a local server and opens the page: the recording, the node graph, the APs on the\n"
    "reference, the quality graph with one cut per stack size, the result and its sharpening.\n"
    "Every change runs through the same engine and cache as `run`; \"Save pipeline\" writes it.",
    "example:\n  luckystack studio jupiter.ser\n  luckystack studio captures/ --pipeline pipelines/surface.json")
