"""The Python API, mirroring the command line (usable from a notebook)::

    from luckystack.graph import api
    p = api.load_pipeline("pipeline.json", {"scale.factor": [10]})
    print(api.render(api.explain(p, "input.dat")))
    records = api.run(p, ["input.dat"], out="out")
    values = api.read_result(p, "scale", "input.dat")["values"].array("scaled")

Output layout: ``<out>/<input stem>/`` holds a plain run's exported files and ``run.json``; a sweep
variant's go to ``<out>/<input stem>/<variant label>/`` so settings never overwrite each other.
Without an input (pipelines that read no input file) the pipeline name replaces the stem.

Where it runs: ``api.run(..., executor="dask")`` starts a local Dask cluster, ``executor="tcp://host:8786"``
uses an existing one, and an :class:`~luckystack.graph.executor.Executor` instance is used as it is (the
default: this machine's threads and processes). On a cluster the runs of a batch go on at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from luckystack.graph.defaults import default_cache, default_jobs  # noqa: F401  (re-exported)
from luckystack.graph.executor import Executor, make_executor
from luckystack.graph.explain import NodeStatus, render  # noqa: F401  (re-exported)
from luckystack.graph.explain import explain as _explain
from luckystack.graph.fingerprint import fingerprint
from luckystack.graph.node import Result
from luckystack.graph.process import configure_process
from luckystack.graph.progress import Reporter
from luckystack.graph.storage import location_of
from luckystack.graph.runrecord import RunRecord, executions
from luckystack.graph.scheduler import run_one
from luckystack.graph.spec import Pipeline, PipelineError  # noqa: F401
from luckystack.graph.store import CacheStore
from luckystack.graph.sweep import Variant, variants
from luckystack.graph.validate import (check_against_input, load_pipeline,  # noqa: F401  (re-exported)
                                       pipeline_from_dict, with_overrides)

PathLike = str | os.PathLike


def _store(cache: PathLike | CacheStore | None) -> CacheStore:
    return cache if isinstance(cache, CacheStore) else CacheStore(cache or default_cache())


def _inputs(inputs: PathLike | Iterable[PathLike] | None) -> list[Path | None]:
    if inputs is None:
        return [None]
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out = [Path(i) for i in inputs] or [None]
    for p in out:
        if p is not None and not p.exists():
            raise PipelineError(f"input {p}: not found")
    return out


def explain(pipeline: Pipeline, input: PathLike | None = None,
            cache: PathLike | CacheStore | None = None, variant: str | None = None) -> dict[str, NodeStatus]:
    """Each node's key and status (cached, or why it will run); computes nothing."""
    [inp] = _inputs(input)
    check_against_input(pipeline, inp)
    return _explain(pipeline, inp, _store(cache), variant)


@dataclass
class SweepPlan:
    """Per node: executions a sweep needs (deduplicated by key) vs running each setting alone."""

    variants: list[str]
    needed: dict[str, int] = field(default_factory=dict)
    alone: dict[str, int] = field(default_factory=dict)

    def render(self) -> str:
        w = max([len(n) for n in self.needed] + [4])
        lines = [f"{len(self.variants)} variants: " + " | ".join(self.variants),
                 f"{'node'.ljust(w)}  runs (sweep)  runs (each setting alone)"]
        lines += [f"{n.ljust(w)}  {self.needed[n]:>12}  {self.alone[n]:>25}" for n in self.needed]
        return "\n".join(lines)


def explain_sweep(pipeline: Pipeline, inputs: PathLike | Iterable[PathLike] | None = None,
                  cache: PathLike | CacheStore | None = None,
                  sweep: Mapping[str, list[Any]] | None = None, mode: str | None = None) -> SweepPlan:
    store = _store(cache)
    vs = variants(pipeline, sweep, mode)
    plan = SweepPlan([v.label for v in vs])
    keys: dict[str, set[str]] = {}
    for inp in _inputs(inputs):
        for v in vs:
            for nid, st in _explain(v.pipeline, inp, store, v.label or None).items():
                plan.alone.setdefault(nid, 0)
                keys.setdefault(nid, set())
                if not st.cached:
                    plan.alone[nid] += 1
                    keys[nid].add(st.key)
    plan.needed = {nid: len(k) for nid, k in keys.items()}
    return plan


@dataclass
class VariantRun:
    label: str
    overrides: dict[str, Any]
    input: Path | None
    record: RunRecord
    pipeline: Pipeline = field(repr=False)

    @property
    def failed(self) -> bool:
        return self.record.error is not None


class _Prefixed(Reporter):
    """Progress of one run among several at once: node ids prefixed with the run's name."""

    def __init__(self, base: Reporter, prefix: str) -> None:
        self.base, self.prefix = base, prefix

    def start(self, node_id: str, what: str) -> None:
        self.base.start(self.prefix + node_id, what)

    def total(self, node_id: str, total: int, label: str) -> None:
        self.base.total(self.prefix + node_id, total, label)

    def advance(self, node_id: str, n: int = 1) -> None:
        self.base.advance(self.prefix + node_id, n)

    def finish(self, node_id: str, status: str, seconds: float) -> None:
        self.base.finish(self.prefix + node_id, status, seconds)

    def log(self, message: str) -> None:
        self.base.log(self.prefix + message)


def executor_of(executor: Executor | str | None) -> tuple[Executor, bool]:
    """``executor`` as an Executor, and whether the caller made it (and so shuts it down): None or
    "local" is this machine, "dask" a new local Dask cluster, "tcp://host:port" an existing one."""
    if executor is None or isinstance(executor, str):
        name = executor or "local"
        if "://" in name:
            return make_executor("dask", scheduler=name), True
        return make_executor(name), True
    return executor, False


def run(pipeline: Pipeline, inputs: PathLike | Iterable[PathLike] | None = None, *,
        cache: PathLike | CacheStore | None = None, out: PathLike = "out", jobs: int | None = None,
        sweep: Mapping[str, list[Any]] | None = None, mode: str | None = None,
        reporter: Reporter | None = None, executor: Executor | str | None = None,
        after_run: Callable[[RunRecord, Path], None] | None = None,
        after_sweep: Callable[[list[VariantRun], Path], None] | None = None) -> list[VariantRun]:
    """Run the pipeline on every input (a batch), once per sweep variant; return what happened.

    Orphaned partial cache entries of dead processes are swept first. ``executor``: where nodes run
    (see the module docstring); an executor that runs several runs at once gets the whole batch.
    A single run raises its error (NodeError, with ``.record``); in a batch a failed run is returned
    with ``failed`` set and its ``record.error``, and the others go on. ``after_run(record, out_dir)``
    is called after each successful run (the app writes its report there; a damaged cache entry it
    meets is computed again, any other error of it fails the run); ``after_sweep(runs, out)``
    once at the end with the successful runs when there were two or more (a sweep or a batch: the app
    compares the results).
    """
    configure_process()
    store = _store(cache)
    store.sweep_orphans()
    jobs = jobs or default_jobs()
    vs: list[Variant] = variants(pipeline, sweep, mode)
    plan = [(inp, v) for inp in _inputs(inputs) for v in vs]
    for inp, v in plan:  # every input and variant, before any work
        check_against_input(v.pipeline, inp)
    base = reporter or Reporter()
    runner, own = executor_of(executor)
    at_once = min(len(plan), max(1, runner.runs_at_once))

    def one(inp: Path | None, v: Variant) -> VariantRun:
        stem = inp.stem if inp is not None else pipeline.name
        out_dir = Path(out) / stem / v.label if v.label else Path(out) / stem
        name = "/".join(x for x in (stem, v.label) if x)
        try:
            record = run_one(v.pipeline, inp, store, out_dir, jobs=jobs,
                             reporter=_Prefixed(base, name + ": ") if at_once > 1 else base,
                             variant=v.label or None, executor=runner, after_run=after_run)
        except Exception as e:
            if len(plan) == 1 or not hasattr(e, "record"):
                raise
            record = e.record  # type: ignore[attr-defined]
        return VariantRun(v.label, v.overrides, inp, record, v.pipeline)

    try:
        if at_once > 1:
            for inp in {inp for inp, _ in plan if inp is not None}:
                fingerprint(inp, store.root)  # once, before runs of the same input explain at once
            with ThreadPoolExecutor(at_once, thread_name_prefix="lsk-run") as pool:
                done = list(pool.map(lambda job: one(*job), plan))
        else:
            done = [one(inp, v) for inp, v in plan]
        runner.sweep_orphans(location_of(store))
    finally:
        if own:
            runner.shutdown()
    ok = [r for r in done if not r.failed]
    if after_sweep is not None and len(ok) >= 2:
        after_sweep(ok, Path(out))
    return done


def sweep_executions(runs: Sequence[VariantRun]) -> dict[str, int]:
    """How many times each node was computed over a sweep/batch (from the run records)."""
    return executions([r.record for r in runs])


def read_result(pipeline: Pipeline, node_id: str, input: PathLike | None = None,
                cache: PathLike | CacheStore | None = None) -> dict[str, Result]:
    """A node's cached results by port (read-only zarr arrays); KeyError if it was not computed."""
    store = _store(cache)
    if node_id not in pipeline.nodes:
        raise KeyError(f"pipeline {pipeline.name!r} has no node {node_id!r}")
    [inp] = _inputs(input)
    st = _explain(pipeline, inp, store)[node_id]
    if not st.cached:
        raise KeyError(f"node {node_id!r} is not in the cache ({'; '.join(st.reasons)}); run the pipeline first")
    return store.load(st.key)
