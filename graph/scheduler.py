"""The scheduler: runs a pipeline's nodes in dependency order, each at most once, through the cache.

State machine per node: waiting → ready (all upstream entries committed) → cached | running → done.
A node that is ready is re-checked against the store just before it runs, so a result committed by
another process meanwhile is reused. Results are always handed downstream from the committed zarr
entry (never from memory), so a fresh run and a cached run feed nodes the very same bits.

A node runs as a :class:`~luckystack.graph.task.NodeTask` on the executor (threads of this process by
default, or a Dask cluster): the task names its upstream entries by key and opens them itself, holding
their leases only while it runs, so nothing but the task and its small outcome crosses processes.

Faults: a cache entry found damaged while it is read (:class:`EntryDamaged`, anywhere: loading, a node,
an export) is moved aside and the run starts over, so the node that made it is computed again; each
such entry is named in a warning. An input file that changed while it was read fails the run (see
:mod:`inputwatch`) and the entries this run computed are removed again. An interrupted run (Ctrl-C,
SIGTERM) stops its running nodes at their next item and records "interrupted".
"""

from __future__ import annotations

import json
from dataclasses import replace
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path

from luckystack.graph.checksum import EntryDamaged
from luckystack.graph.executor import Executor, LocalExecutor
from luckystack.graph.explain import NodeStatus, explain, slot_name, write_index
from luckystack.graph.hashing import family_of
from luckystack.graph.inputwatch import InputChanged, Watched, watched_files
from luckystack.graph.node import Result
from luckystack.graph import exports
from luckystack.graph.progress import Reporter
from luckystack.graph.runrecord import NodeRecord, RunRecord
from luckystack.graph.spec import Pipeline
from luckystack.graph.storage import location_of
from luckystack.graph.store import CacheStore, EntryInUse
from luckystack.graph.task import NodeTask, TaskOutcome, absolute_files, load_committed, run_task
from luckystack.graph.versions import versions  # noqa: F401  (re-exported)

_INDEX_LOCK = threading.Lock()  # runs of a batch in flight at once share the pipeline's index file


class RunCancelled(KeyboardInterrupt):
    """Raised in a running node when the run was interrupted: it stops at its next item."""


class _CancellableReporter:
    """Passes progress on, and stops the node reporting it once the run is cancelled."""

    def __init__(self, inner: Reporter, cancelled: threading.Event) -> None:
        self._inner, self._cancelled = inner, cancelled

    def total(self, node_id: str, total: int, label: str) -> None:
        if self._cancelled.is_set():
            raise RunCancelled()
        self._inner.total(node_id, total, label)

    def advance(self, node_id: str, n: int = 1) -> None:
        if self._cancelled.is_set():
            raise RunCancelled()
        self._inner.advance(node_id, n)

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


def damage_in(exc: BaseException | None) -> EntryDamaged | None:
    """The EntryDamaged that caused ``exc`` (itself, or in its cause/context chain), if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, EntryDamaged):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


class _Run:
    def __init__(self, pipeline: Pipeline, input_file: Path | None, store: CacheStore, jobs: int,
                 reporter: Reporter, variant: str | None) -> None:
        self.p, self.input_file, self.store, self.jobs = pipeline, input_file, store, jobs
        self.cancelled = threading.Event()
        self.reporter, self.variant = _CancellableReporter(reporter, self.cancelled), variant
        self.leased: list[str] = []  # entries loaded (and leased) by this run, released when it ends
        self.watched: list[Watched] = []  # input files whose content the keys of this run hold
        self.committed: list[str] = []  # entries this run computed
        self.input_changed = False

    def load(self, key: str, touch: bool = True) -> dict[str, Result]:
        result = self.store.load(key, touch)
        self.leased.append(key)
        return result

    def task_of(self, nid: str) -> NodeTask:
        """Node ``nid`` as a task that can run anywhere the store and the input file can be reached."""
        node, st = self.p.nodes[nid], self.statuses[nid]
        return NodeTask(
            node_id=nid, node_type=node.type.name, node_module=node.type.func.__module__,
            params=absolute_files(node.params), key=st.key, preimage=st.preimage,
            upstream={port: (self.statuses[src].key, sport) for port, (src, sport) in node.inputs.items()},
            store=location_of(self.store),
            input_file=str(Path(self.input_file).absolute()) if self.input_file else None,
            jobs=self.jobs, pipeline=self.p.name,
            family=family_of(st.preimage, node.type.incremental) if node.type.incremental else None,
            watched=tuple(replace(w, path=Path(w.path).absolute()) for w in self.watched))

    def submit(self, executor: Executor, nid: str) -> Future:
        task = self.task_of(nid)
        # A task in this process may report its progress; one elsewhere reports when it is done.
        if executor.in_process:  # the run's own store: what it moves aside is named in this run's record
            return executor.submit(run_task, task, self.reporter, executor.in_task(), self.store)
        return executor.submit(run_task, task, None, executor.in_task())

    def run(self, executor: Executor, record: RunRecord) -> None:
        self.statuses: dict[str, NodeStatus] = explain(self.p, self.input_file, self.store, self.variant)
        self.watched = watched_files(self.p, self.statuses, self.input_file)
        order = list(self.statuses)
        for nid in order:
            st = self.statuses[nid]
            record.nodes[nid] = NodeRecord(nid, st.type, st.key, reasons=list(st.reasons))
        upstream = {nid: {s for s, _ in self.p.nodes[nid].inputs.values()} for nid in order}
        done: set[str] = set()
        running: dict[Future, tuple[str, float]] = {}
        try:
            while len(done) < len(order):
                for nid in order:
                    if nid in done or any(nid == r for r, _ in running.values()):
                        continue
                    if not upstream[nid] <= done:
                        continue
                    rec = record.nodes[nid]
                    if self._sound(nid, self.statuses[nid].key):
                        rec.status, rec.reasons = "cached", []
                        self.reporter.finish(nid, "cached", 0.0)
                        done.add(nid)
                        continue
                    self.reporter.start(nid, "running: " + "; ".join(rec.reasons))
                    running[self.submit(executor, nid)] = (nid, time.perf_counter())
                if not running:
                    continue
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    nid, t0 = running.pop(fut)
                    rec = record.nodes[nid]
                    try:
                        outcome: TaskOutcome = fut.result()  # re-raises the node's exception
                    except BaseException as e:
                        rec.status, rec.seconds = "failed", time.perf_counter() - t0
                        if isinstance(e, InputChanged):
                            self.input_changed = True
                        raise
                    self.committed.append(outcome.key)
                    rec.status, rec.seconds = "ran", time.perf_counter() - t0
                    rec.warnings = outcome.warnings
                    if not executor.in_process:
                        for w in outcome.warnings:
                            self.reporter.log(f"{nid}: {w}")
                    self.reporter.finish(nid, "ran", rec.seconds)
                    done.add(nid)
        finally:
            self.cancelled.set()  # nodes still running stop at their next item
            for fut in running:
                fut.cancel()
            if running:
                wait(list(running))
            completed = {n: s for n, s in self.statuses.items() if n in done}
            if completed and not self.input_changed:
                try:
                    with _INDEX_LOCK:
                        write_index(self.store.root, self.p.name, slot_name(self.input_file, self.variant),
                                    completed)
                except OSError:
                    pass  # a read-only cache: the index only explains the next run's reasons

    def forget_computed(self) -> None:
        """Remove the entries this run committed (its input changed while it read it)."""
        for key in self.committed:
            try:
                self.store.remove(key)
            except (EntryInUse, OSError):
                pass  # another process reads it: it committed the same recipe from a whole file

    def _sound(self, nid: str, key: str) -> bool:
        """Committed and every file it holds or links to matches its checksum (the whole entry is read:
        a fully cached run reads every result it stands on once, tens of MB at GB/s). A damaged entry is
        moved aside, so the node that made it runs again."""
        for _attempt in range(3):
            if not self.store.has(key):
                return False
            try:
                self.store.check(key, full=True)
                return True
            except FileNotFoundError:
                return False
            except EntryDamaged as e:
                self.store.quarantine(e.key, e.what, e.seal)  # it, or an entry it links to
                self.reporter.log(f"{nid}: cache entry {e.key[:12]} is damaged ({e.what}): moved aside, "
                                  "computing it again")
        return False


def _earlier_exports(run_json: Path) -> dict[str, str]:
    """File → key of the node that wrote it, from the previous run record in the same output folder."""
    try:
        earlier = RunRecord.load(run_json)
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {path: node.key for node in earlier.nodes.values() for path in node.exports}


def run_one(pipeline: Pipeline, input_file: Path | None, store: CacheStore, out_dir: Path, *,
            jobs: int = 1, reporter: Reporter | None = None, variant: str | None = None,
            executor: Executor | None = None,
            after_run: Callable[[RunRecord, Path], None] | None = None) -> RunRecord:
    """Run ``pipeline`` on ``input_file``; export files into ``out_dir``; save the run record there, then
    call ``after_run(record, out_dir)`` (the app writes its report); return the record.

    Raises NodeError (and PipelineError) unchanged; the record so far is attached as ``.record``.
    A damaged cache entry met on the way, ``after_run``'s reads included (a report reads results no
    export needed), is moved aside and the run starts over (see the module docstring); an interrupted
    run saves its record with error "interrupted" and re-raises.
    """
    reporter = reporter or Reporter()
    record = RunRecord(pipeline=pipeline.name, input=str(input_file) if input_file else None,
                       variant=variant, overrides=dict(pipeline.overrides), out_dir=str(out_dir),
                       cache=str(store.root), jobs=jobs, started=time.time())
    t0 = time.perf_counter()
    own = executor is None
    executor = executor or LocalExecutor()
    ran: dict[str, float] = {}  # nodes computed by earlier attempts (their results are committed)
    run = None
    saved = False  # the run is done and its record saved: only after_run is left
    try:
        for attempt in range(2 * len(pipeline.nodes) + 2):
            run = _Run(pipeline, input_file, store, jobs, reporter, variant)
            try:
                _run_and_export(run, executor, record, pipeline, input_file, out_dir)
                for nid, seconds in ran.items():
                    if record.nodes[nid].status == "cached":
                        record.nodes[nid].status, record.nodes[nid].seconds = "ran", seconds
                _note_damage(store, record, run.statuses)
                record.seconds = time.perf_counter() - t0
                record.save(out_dir / "run.json")
                saved = True
                if after_run is not None:
                    after_run(record, out_dir)
                break
            except Exception as e:
                damage = damage_in(e)
                if damage is None or attempt == 2 * len(pipeline.nodes) + 1:
                    raise
                saved = False
                ran.update({n.id: n.seconds for n in record.nodes.values() if n.status == "ran"})
                store.quarantine(damage.key, damage.what, damage.seal)
                reporter.log(f"cache entry {damage.key[:12]} is damaged ({damage.what}): moved aside, "
                             "computing it again")
            finally:
                store.release(run.leased)
    except KeyboardInterrupt:
        record.error = "interrupted"
        raise
    except Exception as e:
        record.error = f"{type(e).__name__}: {e}"
        if isinstance(e, InputChanged) and run is not None:
            run.forget_computed()
        e.record = record  # type: ignore[attr-defined]
        raise
    finally:
        if own:
            executor.shutdown()
        if not saved:
            record.seconds = time.perf_counter() - t0
            if record.error is None or record.error == "interrupted":
                record.save(out_dir / "run.json")
    return record


def _run_and_export(run: _Run, executor: Executor, record: RunRecord, pipeline: Pipeline,
                    input_file: Path | None, out_dir: Path) -> None:
    run.run(executor, record)
    stem = Path(input_file).stem if input_file else pipeline.name
    earlier = _earlier_exports(out_dir / "run.json")
    before = exports.digests(exports.from_other_results(
        earlier, (run.statuses[nid].key for nid, node in pipeline.nodes.items() if node.type.export is not None)))
    for nid, node in pipeline.nodes.items():
        if node.type.export is None:
            continue
        results = load_committed(run.load, run.statuses[nid].key)  # perhaps written on another host
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = node.type.export(results, node.params, out_dir, stem) or []
        record.nodes[nid].exports = [str(p) for p in paths]
        replaced = exports.replaced(paths, record.nodes[nid].key, earlier, before)
        if replaced:
            note = (f"replaced {len(replaced)} file(s) written earlier with other settings, e.g. {replaced[0]} "
                    "(use --out, or a sweep, to keep both)")
            record.nodes[nid].warnings.append(note)
    stale = exports.remove_stale(earlier, record.exports(), out_dir)
    exporters = [nid for nid, node in pipeline.nodes.items() if node.type.export is not None]
    if stale and exporters:
        record.nodes[exporters[-1]].warnings.append(
            f"removed {len(stale)} file(s) an earlier run wrote here that these settings do not make, "
            f"e.g. {stale[0]}")


def _note_damage(store: CacheStore, record: RunRecord, statuses: dict[str, NodeStatus]) -> None:
    """A warning per damaged entry this store moved aside, on the node whose result it was."""
    by_key = {st.key: nid for nid, st in statuses.items()}
    while store.damaged:
        key, problem, dest = store.damaged.pop(0)
        nid = by_key.get(key)
        if nid is None:
            try:
                nid = json.loads((dest / "provenance.json").read_text()).get("node_id")
            except (OSError, ValueError, AttributeError):
                nid = None
        text = (f"cache entry {key[:12]}{'' if nid in record.nodes else f' (node {nid})' if nid else ''} "
                f"was damaged ({problem}): moved to {dest}, computed again")
        target = record.nodes.get(nid) if nid else None
        target = target or next(iter(record.nodes.values()), None)
        if target is not None:
            target.warnings.append(text)
