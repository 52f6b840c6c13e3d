"""The engine's command line: run, explain, schema, cache — plus the commands the application adds.

The application names itself (:class:`Application`: program name, description, version, examples);
the engine's own help stays generic.

Exit status: 0 success, 1 a node failed on the data (NodeError), a result file could not be written
(WriteFailed), damage found by ``cache verify``, or an internal error; 2 a bad pipeline file, override
or usage; 130 interrupted (Ctrl-C, or SIGTERM, which is handled the same way). Errors print as one line
on stderr; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from luckystack.graph.executor import EXECUTORS
from luckystack.graph.files import WriteFailed, human_size
from luckystack.graph.node import NodeError
from luckystack.graph.spec import PipelineError, json_schema, parse_sets
from luckystack.graph.parallel import stop_workers
from luckystack.graph.versions import record_versions_of

if TYPE_CHECKING:
    from luckystack.graph.executor import Executor
    from luckystack.graph.store import CacheStore

# The engine's runner, cache store (zarr) and reports are imported by the commands that use them, so a
# command that needs none of them (an app's own, --help) starts without them.


@dataclass
class Command:
    """A subcommand: ``add_arguments(parser)`` declares options, ``run(args)`` returns the exit status.

    An application lists its commands by name, help line and ``module``: that module's ``COMMAND`` (a
    full Command) is imported only when the command is chosen, so the others and ``--help`` start
    without it. The engine's own commands are given in full.
    """

    name: str
    help: str
    run: Callable[[argparse.Namespace], int] | None = None
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    description: str = ""
    epilog: str = ""
    module: str | None = None

    def load(self) -> "Command":
        """The full command: this one, or its module's ``COMMAND``."""
        if self.module is None:
            return self
        full = importlib.import_module(self.module).COMMAND
        if full.name != self.name:
            raise ValueError(f"{self.module}.COMMAND is {full.name!r}, listed as {self.name!r}")
        return full


@dataclass(frozen=True)
class Application:
    """What the command line says about the application built on the engine.

    ``name`` is the program name in usage lines and messages (default: argparse's, from
    ``sys.argv[0]``); ``examples`` maps a command's name (the
    engine's or the application's own; ``""`` for the top level) to example lines shown below its help,
    replacing the engine's generic ones. ``libraries``: installed distributions whose versions every
    result's provenance records (see :mod:`~luckystack.graph.versions`).
    """

    name: str | None = None
    description: str = "Runs pipelines as a cached dataflow graph: only what changed is recomputed."
    version: str | None = None
    examples: Mapping[str, str] = field(default_factory=dict)
    libraries: tuple[str, ...] = ()


class UsageError(Exception):
    """Bad command-line usage (exit 2)."""


_FMT = argparse.RawDescriptionHelpFormatter


def _common(p: argparse.ArgumentParser, suppress: bool) -> None:
    d = argparse.SUPPRESS
    p.add_argument("--cache", metavar="DIR", default=d if suppress else None,
                   help="cache directory (default: $LUCKYSTACK_CACHE or ./cache)")
    p.add_argument("--jobs", metavar="N", type=int, default=d if suppress else None,
                   help="processes per node: this one and N − 1 workers (default: all cores)")
    p.add_argument("--debug", action="store_true", default=d if suppress else False,
                   help="show tracebacks on errors")


def _pipeline_args(p: argparse.ArgumentParser, inputs_required: bool) -> None:
    p.add_argument("pipeline", help="pipeline file (JSON)")
    p.add_argument("--input", "-i", action="append", default=[], metavar="FILE", required=inputs_required,
                   help="input file; repeat for a batch processed with the same pipeline")
    p.add_argument("--set", "-s", action="append", default=[], metavar="NODE.PARAM=VALUE",
                   help="override a param (VALUE parsed as JSON, else a string); repeatable")
    p.add_argument("--sweep", action="append", default=[], metavar="NODE.PARAM=V1,V2",
                   help="run once per value; several --sweep form a product (see --zip)")
    p.add_argument("--zip", action="store_true", help="pair --sweep lists element-wise instead of a product")


def _load(args: argparse.Namespace):
    from luckystack.graph import api
    from luckystack.graph.sweep import parse_sweep_args

    p = api.load_pipeline(args.pipeline, parse_sets(args.set))
    sweep = parse_sweep_args(args.sweep)
    mode = "zip" if args.zip else None
    return p, sweep, mode


def _check_folder(option: str, path: Path) -> None:
    """A folder option must name a folder (or nothing yet): a file there is a usage error."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: is a file, not a folder")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{option} {path}: {parent} is a file, not a folder")
            break


def _executor(args: argparse.Namespace) -> Executor:
    from luckystack.graph.executor import make_executor

    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.scheduler and args.workers is not None:
        raise UsageError("--workers starts a local cluster; leave it out with --scheduler (the cluster has its own)")
    name = args.executor or ("dask" if args.scheduler or args.workers is not None else "local")
    try:
        return make_executor(name, scheduler=args.scheduler, workers=args.workers)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _cmd_run(args: argparse.Namespace) -> int:
    from luckystack.graph import api
    from luckystack.graph.progress import auto_reporter
    from luckystack.graph.runrecord import executions, summary_table

    _check_folder("--out", Path(args.out))
    for inp in args.input:
        _check_folder("--out", Path(args.out) / Path(inp).stem)
    p, sweep, mode = _load(args)
    reporter = auto_reporter(sys.stderr)
    executor = _executor(args)
    try:
        runs = api.run(p, args.input or None, cache=args.cache, out=args.out, jobs=args.jobs, sweep=sweep,
                       mode=mode, reporter=reporter, executor=executor, after_run=args.after_run)
    finally:
        executor.shutdown()
    for r in runs:
        title = " ".join(x for x in (r.record.input or p.name, r.label) if x)
        if r.failed:
            print(f"\n{title}: FAILED after {r.record.seconds:.2f} s: {r.record.error}")
            print(summary_table(r.record))
            continue
        print(f"\n{title}: {r.record.seconds:.2f} s → {r.record.out_dir}")
        print(summary_table(r.record))
        for path in r.record.exports():
            print(f"  wrote {path}")
        for w in r.record.warnings():
            print(f"  warning: {w}")
    if len(runs) > 1:
        counts = executions([r.record for r in runs])
        print("\nnode executions over all runs: " + ", ".join(f"{n} {c}" for n, c in counts.items()))
        ok = [r for r in runs if not r.failed]
        if args.after_sweep is not None and len(ok) > 1:  # after the summaries, so its output comes last
            args.after_sweep(ok, Path(args.out))
    failed = [r for r in runs if r.failed]
    for r in failed:
        title = " ".join(x for x in (r.record.input or p.name, r.label) if x)
        print(f"error: {title}: {_failure(r.record)}", file=sys.stderr)
    if failed:
        print(f"error: {len(failed)} of {len(runs)} runs failed; the others completed", file=sys.stderr)
        return 1
    return 0


def _failure(record: Any) -> str:
    """A failed run's error as one line: the failed node (if one did) and its message."""
    node = next((n.id for n in record.nodes.values() if n.status == "failed"), None)
    message = record.error or "failed"
    if message.startswith("NodeError: "):
        message = message.removeprefix("NodeError: ")
    return f"{node}: {message}" if node else message


def _cmd_explain(args: argparse.Namespace) -> int:
    from luckystack.graph import api

    p, sweep, mode = _load(args)
    inputs = args.input or [None]
    if sweep or p.sweep:
        plan = api.explain_sweep(p, args.input or None, args.cache, sweep, mode)
        print(json.dumps({"variants": plan.variants, "needed": plan.needed, "alone": plan.alone}, indent=1)
              if args.json else plan.render())
        return 0
    for inp in inputs:
        statuses = api.explain(p, inp, args.cache)
        if args.json:
            print(json.dumps({"input": str(inp) if inp else None,
                              "nodes": [s.to_dict() for s in statuses.values()]}, indent=1))
        else:
            if len(inputs) > 1:
                print(f"{inp}:")
            print(api.render(statuses))
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    schema = json_schema(title=f"{args.app_name} pipeline") if args.app_name else json_schema()
    text = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


_UNITS = {"": 1, "B": 1, "K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9, "T": 1e12, "TB": 1e12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


DEFAULT_MAX_SIZE = "20GB"


def parse_size(text: str) -> int:
    """'20GB' → 20e9 bytes; also B, K/M/G/T(B) and KiB/MiB/GiB/TiB. A number without a unit is refused:
    ``50`` is far more likely to mean 50 GB than 50 bytes, and reading it as bytes empties the cache."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).upper() not in _UNITS:
        raise UsageError(f"--max-size {text!r}: expected a size with its unit, such as 500MB or 20GB")
    if not m.group(2):
        raise UsageError(f"--max-size {text!r}: give the unit, e.g. {m.group(1)}GB or {m.group(1)}MB")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def _age(t: float) -> str:
    s = max(0.0, time.time() - t)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s / size:.0f}{unit} ago"
    return f"{s:.0f}s ago"


def _cmd_verify(store: CacheStore, repair: bool) -> int:
    """Check every file of every entry against its checksums; ``repair``: move damaged ones aside."""
    from luckystack.graph.quarantine import key_folders

    keys = key_folders(store.root)
    damaged = 0
    for key in keys:
        problem = store.verify(key)
        if problem is None or problem == "not in the cache":
            continue
        damaged += 1
        try:
            node = json.loads((store.path(key) / "provenance.json").read_text()).get("node_id", "?")
        except (OSError, ValueError, AttributeError):
            node = "?"
        print(f"damaged {key[:12]} (node {node}): {problem}"
              + (" — moved aside" if repair and store.repair(key, problem) else ""))
    quarantined = len(store.quarantined())
    print(f"checked {len(keys)} entries in {store.root}: {damaged} damaged"
          + (", repaired (they will be computed again)" if repair and damaged else "")
          + (f"; {quarantined} damaged entries in {store.root / 'quarantine'} (`cache gc` deletes them)"
             if quarantined else ""))
    return 1 if damaged and not repair else 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from luckystack.graph import api
    from luckystack.graph.store import CacheStore, EntryInUse

    store = CacheStore(args.cache or api.default_cache())
    if args.action == "verify":
        return _cmd_verify(store, args.repair)
    if args.action == "ls":
        entries = store.entries()
        print(f"{'key':<14}{'node':<16}{'type':<12}{'size':>10}  {'age':<10}last use")
        for e in entries:
            print(f"{e.key[:12]:<14}{e.node:<16}{e.type:<12}{human_size(e.size):>10}  {_age(e.created):<10}"
                  f"{_age(e.last_use)}")
        print(f"{len(entries)} entries, {human_size(sum(e.size for e in entries))} in {store.root}")
    elif args.action == "rm":
        if not args.keys:
            raise UsageError(f"cache rm: give one or more KEYs (or prefixes) from `{args.prog} cache ls`")
        for k in args.keys:
            try:
                key = store.resolve(k)
            except KeyError as e:
                raise UsageError(str(e.args[0])) from None
            try:
                store.remove(key)
            except EntryInUse as e:
                raise UsageError(f"{e}; try again when it has finished") from None
            print(f"removed {key[:12]}")
    else:
        limit = parse_size(args.max_size or DEFAULT_MAX_SIZE)
        removed = store.sweep_orphans()
        broken, quarantined = store.clean_damaged()
        in_use: list[str] = []
        evicted = store.gc(limit, in_use=in_use)
        print(f"evicted {len(evicted)} entries ({human_size(sum(e.size for e in evicted))}), "
              f"removed {len(removed)} orphaned partial entries"
              + (f", {len(broken) + len(quarantined)} damaged or incomplete entries" if broken or quarantined
                 else "")
              + (f", kept {len(in_use)} in use by a running process" if in_use else ""))
    return 0


def _builtin_commands(prog: str) -> list[Command]:
    def run_args(p: argparse.ArgumentParser) -> None:
        _pipeline_args(p, inputs_required=False)
        p.add_argument("--out", "-o", default="out", metavar="DIR",
                       help="output root; files go to DIR/<input stem>/[<variant>/] (default: ./out)")
        p.add_argument("--executor", choices=EXECUTORS, default=None,
                       help="where nodes run: local (this machine, the default) or dask (a cluster: "
                            "--scheduler, or a local one of --workers processes)")
        p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="run on the Dask cluster of this scheduler, e.g. tcp://host:8786 (implies "
                            "--executor dask); the cache, inputs and --out must be on paths every worker sees")
        p.add_argument("--workers", metavar="N", type=int, default=None,
                       help="--executor dask without --scheduler: start a local cluster of N worker "
                            "processes of one thread (default: one per core)")

    def explain_args(p: argparse.ArgumentParser) -> None:
        _pipeline_args(p, inputs_required=False)
        p.add_argument("--json", action="store_true", help="print the statuses as JSON")

    def cache_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("action", choices=("ls", "gc", "rm", "verify"),
                       help="ls: list; gc: evict LRU; rm: delete; verify: check every entry's checksums")
        p.add_argument("keys", nargs="*", metavar="KEY", help="keys or unique key prefixes (rm)")
        p.add_argument("--max-size", metavar="SIZE",
                       help=f"gc: evict least recently used entries until the cache holds at most SIZE, "
                            f"with its unit: 500MB, 20GB, 1.5TiB (default: {DEFAULT_MAX_SIZE})")
        p.add_argument("--repair", action="store_true",
                       help="verify: move damaged entries aside (into quarantine/) so they are computed again")

    def schema_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")

    return [
        Command("run", "run a pipeline on input files, reusing cached results", _cmd_run, run_args,
                "Runs every node that is not already cached, exports result files and prints a summary.\n"
                "Several --input files form a batch (on a Dask cluster its runs go on at once); a run that\n"
                "fails is reported and the others complete. --sweep runs one variant per value.",
                f"example:\n  {prog} run PIPELINE.json -i INPUT --set NODE.PARAM=VALUE\n"
                f"  {prog} run PIPELINE.json -i A -i B --sweep NODE.PARAM=V1,V2,V3\n"
                f"  {prog} run PIPELINE.json -i A -i B --scheduler tcp://host:8786"),
        Command("explain", "show which nodes are cached and why the others will run", _cmd_explain,
                explain_args, "Hashes the pipeline (fingerprinting input files) and computes nothing.",
                f"example:\n  {prog} explain PIPELINE.json -i INPUT --set NODE.PARAM=VALUE"),
        Command("schema", "print the JSON Schema of pipeline files (all node types)", _cmd_schema,
                schema_args, "Point an editor at it to validate and complete pipeline files.",
                f"example:\n  {prog} schema -o schema.json"),
        Command("cache", "list, evict, remove or verify cached results", _cmd_cache, cache_args,
                "Entries are zarr groups under the cache directory, one per node result, every file\n"
                "checksummed. verify reads them all and exits 1 when it finds damage (0 with --repair).",
                f"examples:\n  {prog} cache ls\n  {prog} cache gc --max-size 20GB\n"
                f"  {prog} cache rm 3fa9c1\n  {prog} cache verify --repair"),
    ]


_VALUED = ("--cache", "--jobs")  # options before the command that take a value


def chosen_command(argv: Sequence[str]) -> str | None:
    """The command named in ``argv``: the first word that is not an option or an option's value."""
    words = iter(argv)
    for word in words:
        if word in _VALUED:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(commands: Sequence[Command] = (), app: Application = Application(),
                 argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of the engine's commands and ``commands``, in the application's words.

    With ``argv``, only the command it names is loaded and given its options (see :class:`Command`);
    the others are listed by name and help line."""
    chosen = chosen_command(argv) if argv is not None else None
    parser = argparse.ArgumentParser(prog=app.name, formatter_class=_FMT, description=app.description)
    prog = parser.prog
    top = app.examples.get("", f"example:\n  {prog} run PIPELINE.json --input INPUT")
    parser.epilog = f"{top}\n\nRun `{prog} COMMAND --help` for a command's options."
    _common(parser, suppress=False)
    if app.version:
        parser.add_argument("--version", action="version", version=app.version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for listed in [*_builtin_commands(prog), *commands]:
        cmd = listed.load() if argv is None or listed.name == chosen else listed
        p = sub.add_parser(cmd.name, help=listed.help, description=cmd.description or cmd.help,
                           epilog=app.examples.get(cmd.name, cmd.epilog), formatter_class=_FMT)
        cmd.add_arguments(p)
        _common(p, suppress=True)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None, *, app: Application = Application(),
         commands: Sequence[Command] = (), after_run: Callable[[Any, Path], None] | None = None,
         after_sweep: Callable[[list[Any], Path], None] | None = None,
         hint: Callable[[Exception, argparse.Namespace], str | None] | None = None) -> int:
    """Parse ``argv`` and run the command; returns the exit status (see the module docstring).

    ``app`` names the application and its examples. ``after_run(record, out_dir)`` follows every run;
    ``after_sweep(runs, out_root)`` follows a ``run`` of two runs or more (sweep variants × inputs), with
    the :class:`api.VariantRun` list. ``hint(error, args)`` may return advice appended to a node error's
    line.
    """
    record_versions_of(*app.libraries)
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(commands, app, argv)
    args = parser.parse_args(argv)  # exits 2 itself on usage errors
    args.after_run = after_run
    args.after_sweep = after_sweep
    args.prog, args.app_name = parser.prog, app.name
    if args.jobs is not None and args.jobs < 1:
        print(f"{parser.prog}: error: --jobs must be at least 1", file=sys.stderr)
        return 2
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        if args.cache is not None or args.command in ("run", "explain", "cache"):
            from luckystack.graph.defaults import default_cache

            _check_folder("--cache", Path(args.cache or default_cache()))
        return int(args._run(args) or 0)
    except (PipelineError, UsageError) as e:
        if args.debug:
            raise
        for line in getattr(e, "lines", [str(e)]):
            print(f"error: {line}", file=sys.stderr)
        return 2
    except NodeError as e:
        if args.debug:
            raise
        node = getattr(e, "node_id", None)
        advice = hint(e, args) if hint is not None else None
        print(f"error: {node + ': ' if node else ''}{e}{' — ' + advice if advice else ''}", file=sys.stderr)
        return 1
    except WriteFailed as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        stop_workers()
        print("interrupted" + (" by SIGTERM" if isinstance(e, Terminated) else "")
              + "; results computed so far are cached", file=sys.stderr)
        return 130
    except Exception as e:  # an engine or node bug: still one line unless --debug
        if args.debug:
            raise
        checksum = sys.modules.get("luckystack.graph.checksum")  # imported by whatever read the cache
        if checksum is not None and isinstance(e, checksum.EntryDamaged):
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the run stops cleanly and records "interrupted"."""


def _terminated(signum: int, _frame: Any) -> None:
    raise Terminated()


if __name__ == "__main__":
    sys.exit(main())
