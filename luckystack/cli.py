"""The ``luckystack`` command: the engine's commands (run, explain, schema, cache) plus the app's own.

App commands, each a ``COMMAND`` in its own module (:mod:`luckystack.commands`, :mod:`luckystack.compare`,
:mod:`luckystack.bench`): ``demo`` (simulate a Jupiter recording and stack it), ``simulate`` (write a
simulated recording and its truth), ``info`` (what the reader sees in a recording), ``studio`` (a local
web page to try settings), ``compare`` (rank result images side by side), ``bench`` (the benchmark
suite). After every run the app writes ``report.html`` into the output folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from luckystack.graph import cli as engine_cli
from luckystack.graph.cli import Application, Command, UsageError
from luckystack.graph.parallel import stop_workers

REPO_ROOT = Path(__file__).resolve().parent.parent
PIPELINES = REPO_ROOT / "pipelines"


def shipped_pipeline(name: str) -> Path:
    """The path of a pipeline shipped in ``pipelines/`` (``planet`` → pipelines/planet.json)."""
    path = PIPELINES / f"{name}.json"
    if not path.is_file():
        raise UsageError(f"no shipped pipeline {name!r} in {PIPELINES}")
    return path


def _report_after_run(record, out_dir: Path) -> None:
    from luckystack.api import write_report

    path = write_report(record, out_dir)
    print(f"  report {path}")


def app_commands() -> list[Command]:
    """The app's commands, added to the engine's: each a ``COMMAND`` in its own module, imported only
    when that command runs (or shows its --help)."""
    return [
        Command("demo", "simulate a Jupiter recording, stack it with pipelines/planet.json, write a report",
                module="luckystack.commands.demo"),
        Command("simulate", "write a simulated recording (SER) and its truth, for testing settings",
                module="luckystack.commands.simulate"),
        Command("info", "show what the reader sees in a recording", module="luckystack.commands.info"),
        Command("studio", "a local web page to try settings on a recording (AP size, stack size, sharpening)",
                module="luckystack.commands.studio"),
        Command("compare", "rank result images side by side: contact sheet, blink GIF and a table of figures",
                module="luckystack.compare"),
        Command("bench", "benchmark speed and memory of pipelines/planet.json on simulated recordings",
                module="luckystack.bench"),
    ]


def _after_sweep(runs, out_root: Path) -> None:
    from luckystack.api import write_comparison

    path = write_comparison(runs, out_root)
    if path is not None:
        print(f"\ncomparison: {path}")


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when it lies inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _hint(error: Exception, args: argparse.Namespace) -> str | None:
    """Advice for errors users meet: a planet pipeline that finds no disc on dark sky was most likely
    given a Moon or Sun recording."""
    text = str(error)
    if "dark sky" in text and "surface" not in Path(str(getattr(args, "pipeline", ""))).name:
        return f"a Moon or Sun recording that fills the frame? use {_shown(PIPELINES / 'surface.json')}"


NO_NODES = ("info", "simulate", "compare", "bench")  # commands that never look at node types


def application() -> Application:
    """How the engine's command line names luckystack, with examples on its recordings and pipelines."""
    from luckystack import __version__
    from luckystack.setup import LIBRARIES

    return Application(
        name="luckystack", version=f"luckystack {__version__}", libraries=LIBRARIES,
        description="Lucky-imaging stacker run as a cached dataflow graph: only what changed is recomputed.",
        examples={
            "": "example:\n  luckystack run pipelines/planet.json --input jupiter.ser",
            "run": "example:\n  luckystack run pipelines/planet.json -i jupiter.ser --set stack.percent=25\n"
                   "  luckystack run pipelines/planet.json -i a.ser -i b.ser --sweep stack.percent=5,10,25\n"
                   "  luckystack run pipelines/planet.json -i a.ser -i b.ser --scheduler tcp://host:8786",
            "explain": "example:\n  luckystack explain pipelines/planet.json -i jupiter.ser --set align.ap_size=48",
            "schema": "example:\n  luckystack schema -o pipelines/schema.json",
        })


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``luckystack`` command. Called without ``argv`` as the process's own program
    (the installed command, ``python -m luckystack``) it ends the process when the command is done: see
    :func:`exit_now`."""
    status = _command(argv)
    if argv is None and getattr(sys.modules.get("__main__"), "main", None) is main:
        exit_now(status)
    return status


def exit_now(status: int) -> None:
    """End the process with ``status`` once its exit handlers have run and its output is flushed,
    without the interpreter's teardown of every module and object (after a run, which imported numpy,
    zarr and OpenCV, that took about 0.1 s and did nothing the user sees). Idle worker processes are
    killed first rather than waited for while each tears its own interpreter down. Returns instead while
    a thread other than this one still runs: the normal exit waits for it."""
    stop_workers(wait=True)
    if any(t.is_alive() and not t.daemon and t is not threading.current_thread() for t in threading.enumerate()):
        return
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(status)


def _command(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = engine_cli.chosen_command(argv)
    if chosen == "run":
        _start_ahead(_run_options(argv))
    if chosen is not None and chosen not in NO_NODES:  # none: --help, --version and usage errors
        import luckystack.nodes  # noqa: F401  (registers the node types)

    from luckystack.setup import configure_process

    configure_process()
    return engine_cli.main(argv, app=application(), commands=app_commands(), after_run=_report_after_run,
                           after_sweep=_after_sweep, hint=_hint)


def _run_options(argv: Sequence[str]) -> argparse.Namespace:
    """The options of ``run`` in ``argv`` that say where its nodes run and what they read (no checks:
    the command's own parser reports what is wrong)."""
    p = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    p.add_argument("--input", "-i", action="append", default=[])
    for name in ("--cache", "--executor", "--scheduler", "--workers"):
        p.add_argument(name)
    p.add_argument("--jobs", type=int)
    try:
        return p.parse_known_args(argv)[0]
    except (argparse.ArgumentError, ValueError, SystemExit):
        return argparse.Namespace(input=[], cache=None, executor="?", scheduler=None, workers=None, jobs=None)


def _start_ahead(options: argparse.Namespace) -> None:
    """On a first run (see :func:`_new_inputs`), start the worker processes and the hashing of the new
    inputs for their fingerprints now, before this process imports the node types: their start-up runs
    meanwhile instead of holding up the first map."""
    new = _new_inputs(options)
    if not new:
        return
    from luckystack.graph.defaults import default_jobs
    from luckystack.graph.fingerprint import hash_ahead
    from luckystack.graph.parallel import start_workers

    start_workers(options.jobs or default_jobs(), preload=("luckystack.nodes",))
    for path in new:
        try:
            hash_ahead(path)
        except OSError:
            pass  # gone meanwhile: the command says so


def _new_inputs(options: argparse.Namespace) -> list[str]:
    """The inputs of a run here, with worker processes, that its cache has never fingerprinted (so every
    node computes on them); none when the run has no workers to start, or its inputs are all known (a
    rerun, whose results are mostly cached and whose small maps need no worker), a folder or missing."""
    from luckystack.graph.defaults import default_cache, default_jobs
    from luckystack.graph.fingerprint import remembered

    if options.executor not in (None, "local") or options.scheduler or options.workers or not options.input:
        return []
    if (options.jobs or default_jobs()) <= 1 or os.environ.get("LUCKYSTACK_BACKEND", "loky") != "loky":
        return []
    cache = Path(options.cache or default_cache())
    try:
        if any(Path(path).is_dir() for path in options.input):
            return []  # a folder of frames: knowing would cost a look-up per file
        return [path for path in options.input if not remembered(path, cache)]
    except OSError:
        return []  # a missing input: the command says so


if __name__ == "__main__":
    sys.exit(main())
