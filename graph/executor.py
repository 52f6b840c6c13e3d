"""Executors: where work runs. The scheduler decides what is ready; an executor runs it. One interface
serves both levels of parallel work:

* ``submit(fn, *args)``: a node of a run (the scheduler submits :func:`~luckystack.graph.task.run_task`
  with a :class:`~luckystack.graph.task.NodeTask`), returning a ``concurrent.futures.Future``;
* ``map(fn, items, jobs)``: the chunks of work inside a node (``Context.map``), results in input order,
  so a node reduces them in a fixed order and its bits never depend on who computed what.

``sweep_orphans(location)`` removes, where the executor's processes run, what killed writers left in
the store. ``in_task()`` is the executor a task uses for its own ``map`` where it runs: the local executor is
itself (the task runs in this process); the Dask one is a small picklable handle that reaches the
cluster from the worker. ``runs_at_once`` says how many runs of a batch the caller should keep in
flight (1 locally: a run already uses every core; many on a cluster).

:class:`LocalExecutor` (the default; no Dask import) runs independent branches on threads and a node's
chunks on this thread plus ``jobs − 1`` loky worker processes (:mod:`luckystack.graph.parallel`).
:class:`~luckystack.graph.dask_executor.DaskExecutor` runs both on a ``distributed`` cluster.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from luckystack.graph.parallel import ordered_map, workers_running

MAP_BACKENDS = ("loky", "threading")


class Mapper(Protocol):
    """The chunk level alone: what ``Context.map`` needs."""

    def map(self, fn: Callable[[Any], Any], items: Iterable, jobs: int) -> Iterator: ...


class Executor(Mapper, Protocol):
    in_process: bool  # tasks run in this process: they may be handed live objects (a progress reporter)
    runs_at_once: int

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future: ...

    def in_task(self) -> Mapper: ...

    def sweep_orphans(self, location: str) -> None: ...

    def shutdown(self) -> None: ...


def default_map_backend() -> str:
    """$LUCKYSTACK_BACKEND, else "loky": how a local executor maps a node's chunks."""
    return os.environ.get("LUCKYSTACK_BACKEND", "loky")


def local_map(fn: Callable[[Any], Any], items: Iterable, jobs: int, backend: str | None = None) -> Iterator:
    """``fn`` over ``items`` in order: in this thread alone when ``jobs`` is 1, else with this thread
    and ``jobs − 1`` loky processes ("loky") or on ``jobs`` threads ("threading": no worker start-up
    or pickling, for work in native code that releases the GIL)."""
    if jobs <= 1:
        return map(fn, items)
    backend = backend or default_map_backend()
    if backend == "loky":
        return ordered_map(fn, items, jobs)
    from joblib import Parallel, delayed

    return iter(Parallel(n_jobs=jobs, backend=backend, return_as="generator")(delayed(fn)(i) for i in items))


class LocalExecutor:
    """Up to ``branches`` nodes at once on threads of this process; chunks as :func:`local_map`.

    ``map_backend``: "loky" (default) or "threading"; $LUCKYSTACK_BACKEND sets the default.
    """

    in_process = True
    runs_at_once = 1

    def __init__(self, branches: int = 2, map_backend: str | None = None) -> None:
        self.map_backend = map_backend or default_map_backend()
        if self.map_backend not in MAP_BACKENDS:
            raise ValueError(f"map backend {self.map_backend!r}: expected one of {', '.join(MAP_BACKENDS)}")
        self._pool = ThreadPoolExecutor(max_workers=max(1, branches), thread_name_prefix="lsk-node")

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        return self._pool.submit(fn, *args)

    def map(self, fn: Callable[[Any], Any], items: Iterable, jobs: int) -> Iterator:
        return local_map(fn, items, jobs, self.map_backend)

    def in_task(self) -> "LocalExecutor":
        return self

    def workers_warm(self) -> bool:
        """Whether worker processes are running already (see :func:`workers_running`)."""
        return self.map_backend == "loky" and workers_running()

    def sweep_orphans(self, location: str) -> None:
        """Remove partial entries left by dead writers (this machine's: their liveness is checked here)."""
        from luckystack.graph.storage import open_store

        open_store(location).sweep_orphans()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


EXECUTORS = ("local", "dask")


def make_executor(name: str = "local", *, scheduler: str | None = None, workers: int | None = None,
                  threads_per_worker: int = 1) -> Executor:
    """The executor ``name``: "local", or "dask" on the cluster at ``scheduler`` (tcp://host:8786) or,
    without one, on a new local cluster of ``workers`` processes. ValueError on a bad choice."""
    if scheduler and name == "local":
        name = "dask"
    if name == "local":
        if workers is not None:
            raise ValueError("--workers needs --executor dask")
        return LocalExecutor()
    if name != "dask":
        raise ValueError(f"executor {name!r}: expected one of {', '.join(EXECUTORS)}")
    from luckystack.graph.dask_executor import DaskExecutor

    return DaskExecutor(scheduler=scheduler, workers=workers, threads_per_worker=threads_per_worker)
