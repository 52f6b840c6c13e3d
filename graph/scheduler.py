"""Run one pipeline on one input: hash, decide cached/run, run ready nodes, export, record.

State machine per node: waiting → ready (all upstream entries committed) → cached | running → done.
A node that is ready is re-checked against the store just before it runs, so a result committed by
another process meanwhile is reused. Results are always handed downstream from the committed zarr
entry (never from memory), so a fresh run and a cached run feed nodes the very same bits.

A node runs as a :class:`~luckystack.graph.task.NodeTask` on the executor (threads of this process by
default, or a Dask cluster): the task names its upstream entries by key and opens them itself, holding
their leases only while it runs, so nothing but the task and its small outcome crosses processes.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path

from luckystack.graph.executor import Executor, LocalExecutor
from luckystack.graph.explain import NodeStatus, explain, slot_name, write_index
from luckystack.graph.hashing import family_of
from luckystack.graph.node import Result
from luckystack.graph.progress import Reporter
from luckystack.graph.runrecord import NodeRecord, RunRecord
from luckystack.graph.spec import Pipeline
from luckystack.graph.storage import location_of
from luckystack.graph.store import CacheStore
from luckystack.graph.task import NodeTask, TaskOutcome, absolute_files, load_committed, run_task
from luckystack.graph.task import versions  # noqa: F401  (re-exported)

_INDEX_LOCK = threading.Lock()  # runs of a batch in flight at once share the pipeline's index file


class _Run:
    def __init__(self, pipeline: Pipeline, input_file: Path | None, store: CacheStore, jobs: int,
                 reporter: Reporter, variant: str | None) -> None:
        self.p, self.input_file, self.store, self.jobs = pipeline, input_file, store, jobs
        self.reporter, self.variant = reporter, variant
        self.leased: list[str] = []  # entries loaded (and leased) by this run, released when it ends

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
            family=family_of(st.preimage, node.type.incremental) if node.type.incremental else None)

    def submit(self, executor: Executor, nid: str) -> Future:
        task = self.task_of(nid)
        # A task in this process may report its progress; one elsewhere reports when it is done.
        return executor.submit(run_task, task, self.reporter if executor.in_process else None, executor.in_task())

    def run(self, executor: Executor, record: RunRecord) -> None:
        self.statuses: dict[str, NodeStatus] = explain(self.p, self.input_file, self.store, self.variant)
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
                    if self.store.has(self.statuses[nid].key):
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
                    except BaseException:
                        rec.status, rec.seconds = "failed", time.perf_counter() - t0
                        raise
                    rec.status, rec.seconds = "ran", time.perf_counter() - t0
                    rec.warnings = outcome.warnings
                    if not executor.in_process:
                        for w in outcome.warnings:
                            self.reporter.log(f"{nid}: {w}")
                    self.reporter.finish(nid, "ran", rec.seconds)
                    done.add(nid)
        finally:
            for fut in running:
                fut.cancel()
            if running:
                wait(list(running))
            completed = {n: s for n, s in self.statuses.items() if n in done}
            if completed:
                with _INDEX_LOCK:
                    write_index(self.store.root, self.p.name, slot_name(self.input_file, self.variant), completed)


def _earlier_exports(run_json: Path) -> dict[str, str]:
    """File → key of the node that wrote it, from the previous run record in the same output folder."""
    try:
        earlier = RunRecord.load(run_json)
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {path: node.key for node in earlier.nodes.values() for path in node.exports}


def run_one(pipeline: Pipeline, input_file: Path | None, store: CacheStore, out_dir: Path, *,
            jobs: int = 1, reporter: Reporter | None = None, variant: str | None = None,
            executor: Executor | None = None) -> RunRecord:
    """Run ``pipeline`` on ``input_file``; export files into ``out_dir``; return the run record.

    Raises NodeError (and PipelineError) unchanged; the record so far is attached as ``.record``.
    """
    reporter = reporter or Reporter()
    record = RunRecord(pipeline=pipeline.name, input=str(input_file) if input_file else None,
                       variant=variant, overrides=dict(pipeline.overrides), out_dir=str(out_dir),
                       cache=str(store.root), jobs=jobs, started=time.time())
    t0 = time.perf_counter()
    own = executor is None
    executor = executor or LocalExecutor()
    run = _Run(pipeline, input_file, store, jobs, reporter, variant)
    try:
        run.run(executor, record)
        stem = Path(input_file).stem if input_file else pipeline.name
        earlier = _earlier_exports(out_dir / "run.json")
        for nid, node in pipeline.nodes.items():
            if node.type.export is None:
                continue
            results = load_committed(run.load, run.statuses[nid].key)  # perhaps written on another host
            out_dir.mkdir(parents=True, exist_ok=True)
            paths = node.type.export(results, node.params, out_dir, stem) or []
            record.nodes[nid].exports = [str(p) for p in paths]
            replaced = [str(p) for p in paths if earlier.get(str(p), record.nodes[nid].key) != record.nodes[nid].key]
            if replaced:
                note = (f"replaced {len(replaced)} file(s) written earlier with other settings, e.g. {replaced[0]} "
                        "(use --out, or a sweep, to keep both)")
                record.nodes[nid].warnings.append(note)
    except Exception as e:
        record.error = f"{type(e).__name__}: {e}"
        e.record = record  # type: ignore[attr-defined]
        raise
    finally:
        if own:
            executor.shutdown()
        store.release(run.leased)
        record.seconds = time.perf_counter() - t0
        if record.error is None:
            record.save(out_dir / "run.json")
    return record
