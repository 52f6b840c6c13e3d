"""The Dask executor: nodes and their chunks of work on a ``dask.distributed`` cluster.

Both levels of :mod:`luckystack.graph.executor` go to the cluster. ``submit`` sends a node's
:class:`~luckystack.graph.task.NodeTask` (a few kB) to a worker, which reopens the cache and reads the
input file from the shared path. Inside that task, ``Context.map`` submits the node's chunks from the
worker (``worker_client``: the node's thread secedes while it waits, so its slot computes chunks too)
and yields their results in chunk order, so the node reduces them as it would locally and the bits
are the same. A chunk's function (often a partial holding a reference image) is sent once per map as
a task of its own, on which every chunk depends, and copied to as many workers as there are chunks (up
to all), so that Dask, which puts a task where its dependencies are, can give each chunk to the least
busy worker; if a copy's worker dies, the others remain, and if all do, Dask computes it again.

A worker that dies mid-task has its tasks run again elsewhere (Dask does this by itself); a killed
writer leaves only an orphaned partial entry, which no reader sees and which the run sweeps at its end
on every worker's host.
"""

from __future__ import annotations

import os
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import CancelledError, Future, InvalidStateError
from typing import Any

from luckystack.graph.process import configure_process

# Retries of a task that raised. A worker that dies is not a raise: Dask reschedules its tasks by itself
# (up to distributed.scheduler.allowed-failures times). A node's errors are its data's, so they stay raised.
RETRIES = 0
WINDOW_PER_THREAD = 2  # chunks in flight per worker thread: no thread waits for the next submit
MAX_RUNS_AT_ONCE = 64  # each run in flight is a waiting thread of the client and its explain's file reads


def _value(x: Any) -> Any:
    return x


def _apply(fn: Callable[[Any], Any], item: Any) -> Any:
    configure_process()  # the node package that defines fn registered its set-up when it was imported
    return fn(item)


def _name(fn: Any) -> str:
    inner = getattr(fn, "func", fn)
    return getattr(inner, "__name__", type(inner).__name__).replace("_", "-").strip("-") or "chunk"


def _total_threads(client: Any) -> int:
    try:
        return max(1, sum(client.nthreads().values()))
    except Exception:  # scheduler unreachable for a moment: the window is only a pacing hint
        return 1


def ordered_dask_map(client: Any, fn: Callable[[Any], Any], items: Iterable, window: int,
                     retries: int = RETRIES) -> Iterator:
    """``fn(item)`` for every item on ``client``'s cluster, yielded in input order, at most ``window``
    in flight; unconsumed chunks are cancelled when the generator is closed."""
    name = _name(fn)
    fn_ref = client.submit(_value, fn, pure=False, key=f"fn-{name}-{uuid.uuid4().hex}")
    items = items if isinstance(items, Sequence) else list(items)
    workers = len(client.nthreads())
    if min(workers, len(items)) > 1:
        # Every chunk depends on the function, and Dask puts a task where its dependencies are: a copy on
        # each worker that may take a chunk lets the least busy one take it.
        from distributed import wait

        wait([fn_ref])
        client.replicate([fn_ref], n=min(workers, len(items)))
    pending: deque = deque()
    try:
        for item in items:
            pending.append(client.submit(_apply, fn_ref, item, pure=False, retries=retries,
                                         key=f"chunk-{name}-{uuid.uuid4().hex}"))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()
        fn_ref.release()


class DaskTaskMapper:
    """The in-task side of :class:`DaskExecutor` (picklable): maps a node's chunks over the cluster
    from the worker that runs the node."""

    def __init__(self, retries: int = RETRIES) -> None:
        self.retries = retries

    def map(self, fn: Callable[[Any], Any], items: Iterable, jobs: int) -> Iterator:
        from distributed import worker_client

        with worker_client() as client:  # secedes: this thread's slot computes chunks meanwhile
            yield from ordered_dask_map(client, fn, items, WINDOW_PER_THREAD * _total_threads(client),
                                        self.retries)


def _sweep_orphans(location: str) -> int:
    from luckystack.graph.storage import open_store

    return len(open_store(location).sweep_orphans())


class DaskExecutor:
    """Runs nodes and chunks on a Dask cluster: the one at ``scheduler`` (``tcp://host:8786``), a
    given ``client``'s, or a new local cluster of ``workers`` processes (default: one per core) with
    ``threads_per_worker`` threads each."""

    in_process = False

    def __init__(self, scheduler: str | None = None, workers: int | None = None, threads_per_worker: int = 1,
                 client: Any = None, retries: int = RETRIES) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ValueError("the dask executor needs Dask: pip install 'dask[distributed]'") from None
        self.retries = retries
        self._cluster = None
        if client is not None:
            self.client, self._own_client = client, False
        elif scheduler:
            try:
                self.client = Client(scheduler, timeout="20s")
            except OSError as exc:
                raise ValueError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
            self._own_client = True
        else:
            self._cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=threads_per_worker,
                                         processes=True, dashboard_address=":0")
            self.client, self._own_client = Client(self._cluster), True

    @property
    def runs_at_once(self) -> int:
        """Runs of a batch to keep in flight: enough that every worker thread has a node to compute."""
        return min(MAX_RUNS_AT_ONCE, 2 * _total_threads(self.client))

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        key = f"{getattr(args[0], 'node_type', _name(fn))}-{uuid.uuid4().hex}"
        return _concurrent(self.client.submit(fn, *args, pure=False, retries=self.retries, key=key))

    def map(self, fn: Callable[[Any], Any], items: Iterable, jobs: int) -> Iterator:
        return ordered_dask_map(self.client, fn, items, WINDOW_PER_THREAD * _total_threads(self.client),
                                self.retries)

    def in_task(self) -> DaskTaskMapper:
        return DaskTaskMapper(self.retries)

    def sweep_orphans(self, location: str) -> None:
        """Remove the partial entries of dead writers, on every worker's host (a writer's liveness can
        only be checked on its own host)."""
        self.client.run(_sweep_orphans, location)

    def shutdown(self) -> None:
        if self._own_client:
            self.client.close()
            if self._cluster is not None:
                self._cluster.close()


class _DaskBacked(Future):
    """A ``concurrent.futures.Future`` mirroring a Dask future; cancelling it cancels the task."""

    def __init__(self, dask_future: Any) -> None:
        super().__init__()
        self.dask_future = dask_future  # keeps the task (and its result) alive

    def cancel(self) -> bool:
        if self.dask_future is not None:
            self.dask_future.cancel()
        return super().cancel()


def _concurrent(dask_future: Any) -> Future:
    """A ``concurrent.futures.Future`` settled when ``dask_future`` is."""
    out = _DaskBacked(dask_future)

    def settle(f: Any) -> None:
        try:
            if f.status == "finished":
                out.set_result(f.result())
            elif f.status == "cancelled":
                out.set_exception(CancelledError(f"{f.key} was cancelled"))
            else:
                out.set_exception(f.exception())
        except InvalidStateError:
            pass  # cancelled here first
        except BaseException as exc:  # the result could not be fetched (a lost worker, a closed client)
            try:
                out.set_exception(exc)
            except InvalidStateError:
                pass
        # Received: forget the task, or Dask would compute it again if the worker holding its (already
        # received) outcome died, rewriting an entry the run has moved past.
        out.dask_future = None
        f.release()

    dask_future.add_done_callback(settle)
    return out
