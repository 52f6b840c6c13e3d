"""Run one pipeline on one input: hash, decide cached/run, run ready nodes, export, record.

State machine per node: waiting → ready (all upstream entries committed) → cached | running → done.
A node that is ready is re-checked against the store just before it runs, so a result committed by
another process meanwhile is reused. Results are always handed downstream from the committed zarr
entry (never from memory), so a fresh run and a cached run feed nodes the very same bits; results are
released when their last consumer has finished.
"""

from __future__ import annotations

import functools
import importlib.metadata
import resource
import socket
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path

from luckystack.graph.allocator import release_free_memory
from luckystack.graph.context import CacheContext
from luckystack.graph.executor import Executor, LocalExecutor
from luckystack.graph.explain import NodeStatus, explain, slot_name, write_index
from luckystack.graph.hashing import family_of
from luckystack.graph.node import NodeError, Result
from luckystack.graph import aliases, exports
from luckystack.graph.progress import Reporter
from luckystack.graph.runrecord import NodeRecord, RunRecord
from luckystack.graph.spec import Pipeline
from luckystack.graph.store import CacheStore

_LIBS = ("luckystack", "numpy", "scipy", "opencv-python-headless", "zarr", "joblib", "pydantic")


def versions() -> dict[str, str]:
    """Python and library versions for a result's provenance."""
    return dict(_versions())


@functools.cache
def _versions() -> dict[str, str]:
    # Looked up once per process: each metadata lookup scans the installed distributions (~1 ms).
    out = {"python": sys.version.split()[0]}
    for lib in _LIBS:
        try:
            out[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def _peak_rss_mb() -> dict[str, float]:
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    return {"self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale,
            "workers": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale}


class _Run:
    def __init__(self, pipeline: Pipeline, input_file: Path | None, store: CacheStore, jobs: int,
                 reporter: Reporter, variant: str | None) -> None:
        self.p, self.input_file, self.store, self.jobs = pipeline, input_file, store, jobs
        self.reporter, self.variant = reporter, variant
        self.loaded: dict[str, dict[str, Result]] = {}
        self.leased: list[str] = []  # entries loaded (and leased) by this run, released when it ends

    def load(self, key: str, touch: bool = True) -> dict[str, Result]:
        result = self.store.load(key, touch)
        self.leased.append(key)
        return result

    def inputs_of(self, nid: str) -> dict[str, Result]:
        node = self.p.nodes[nid]
        out = {}
        for port, (src, sport) in node.inputs.items():
            if src not in self.loaded:
                self.loaded[src] = self.load(self.statuses[src].key)
            out[port] = self.loaded[src][sport]
        return out

    def compute(self, nid: str, inputs: dict[str, Result], rec: NodeRecord) -> None:
        """Run the node function into a partial entry and commit it (runs on an executor thread)."""
        node, st = self.p.nodes[nid], self.statuses[nid]
        t0 = time.perf_counter()
        family = family_of(st.preimage, node.type.incremental) if node.type.incremental else None
        pending = self.store.begin(st.key)
        try:
            read: list[str] = []  # earlier results the node was handed
            ctx = CacheContext(node.params, inputs, self.input_file, self.jobs, nid, pending, self.reporter,
                               earlier=functools.partial(self._earlier, family, st.key, read) if family else None)
            results = node.type.run(ctx)
            if not all(self.store.has(k) for k in read):
                # One was evicted while the node read it (a missing zarr chunk reads as zeros): start over
                # without earlier results rather than trust what was read.
                pending.abort()
                pending = self.store.begin(st.key)
                ctx = CacheContext(node.params, inputs, self.input_file, self.jobs, nid, pending, self.reporter)
                results = node.type.run(ctx)
            rec.warnings = list(ctx.messages)
            prov = {"pipeline": self.p.name, "node_id": nid, "node_type": node.type.name,
                    "version": node.type.version, "params": node.params.model_dump(mode="json"),
                    "upstream": {port: self.statuses[src].key for port, (src, _) in node.inputs.items()},
                    "files": st.preimage["files"],
                    "input_file": str(self.input_file) if self.input_file else None,
                    "versions": versions(), "wall_s": time.perf_counter() - t0,
                    "peak_rss_mb": _peak_rss_mb(), "created": time.time(), "host": socket.gethostname(),
                    "warnings": rec.warnings}
            pending.write(results, st.preimage, prov)
            aliases.record(self.store.root, st.preimage, st.key, results)
            if family:
                self.store.remember(family, st.key)
            del results, ctx
            release_free_memory()
        except BaseException as e:
            pending.abort()
            if isinstance(e, NodeError) and not hasattr(e, "node_id"):
                e.node_id = nid  # type: ignore[attr-defined]
            raise

    def _earlier(self, family: str, key: str, read: list[str]) -> Iterator[dict[str, Result]]:
        """Committed results of ``family`` other than ``key``, most recently used first; notes in
        ``read`` the key of each one handed out."""
        for other in self.store.family(family):
            if other == key:
                continue
            try:
                result = self.load(other, touch=False)  # the node may not use it; what it links is touched
            except (OSError, ValueError, KeyError):
                continue  # evicted or being evicted by another process: not there
            read.append(other)
            yield result

    def run(self, executor: Executor, record: RunRecord) -> None:
        self.statuses: dict[str, NodeStatus] = explain(self.p, self.input_file, self.store, self.variant)
        order = list(self.statuses)
        for nid in order:
            st = self.statuses[nid]
            record.nodes[nid] = NodeRecord(nid, st.type, st.key, reasons=list(st.reasons))
        upstream = {nid: {s for s, _ in self.p.nodes[nid].inputs.values()} for nid in order}
        consumers = {nid: sum(nid in srcs for srcs in upstream.values()) for nid in order}
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
                        self._release(nid, upstream, consumers)
                        continue
                    self.reporter.start(nid, "running: " + "; ".join(rec.reasons))
                    fut = executor.submit(self.compute, nid, self.inputs_of(nid), rec)
                    running[fut] = (nid, time.perf_counter())
                if not running:
                    continue
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    nid, t0 = running.pop(fut)
                    fut.result()  # re-raises the node's exception
                    rec = record.nodes[nid]
                    rec.status, rec.seconds = "ran", time.perf_counter() - t0
                    self.reporter.finish(nid, "ran", rec.seconds)
                    done.add(nid)
                    self._release(nid, upstream, consumers)
        finally:
            for fut in running:
                fut.cancel()
            if running:
                wait(list(running))
            completed = {n: s for n, s in self.statuses.items() if n in done}
            if completed:
                write_index(self.store.root, self.p.name, slot_name(self.input_file, self.variant), completed)

    def _release(self, nid: str, upstream: dict[str, set[str]], consumers: dict[str, int]) -> None:
        for src in upstream[nid]:
            consumers[src] -= 1
            if consumers[src] == 0:
                self.loaded.pop(src, None)


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
        before = exports.digests(earlier)
        for nid, node in pipeline.nodes.items():
            if node.type.export is None:
                continue
            results = run.load(run.statuses[nid].key)
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
