"""An ordered parallel map in which the calling thread works alongside ``jobs − 1`` worker processes.

A node waiting on ``joblib.Parallel`` leaves its own core idle while ``jobs`` workers compute, and the
first node that maps waits for every worker's start-up (imports: about 0.7 s each) before any result.
Here the caller computes items itself: alone until a worker has started (a no-op task tells; a worker
that answered an earlier map answers within :data:`WARM_WORKER_WAIT_S`, so it gets the first items),
then whenever the next result in order is not ready. :func:`start_workers` starts the workers ahead of
the first map (a command that is about to compute, before its own imports), so their start-up runs
on cores that would otherwise wait. With ``jobs`` = 2 one worker process does about half
of the work, its start-up overlaps the caller's computing, and the run holds one process less in
memory. Results come in input order, so they never depend on who computed them. The last item is
never queued on a worker but computed here, so the caller does not sit idle at the end while a worker
still holds a queued item.

Workers come from loky's reusable executor (the one joblib uses) and stay alive between nodes. Like
joblib's workers they start with the native thread pools (OpenMP, BLAS) limited to
cores // jobs threads each, so ``jobs`` processes never run cores × jobs threads between them.

Workers never outlive the process that started them: a worker's initializer starts a watchdog thread
that ends it within :data:`PARENT_POLL_S` once its parent is gone (SIGKILL, a crash); loky's resource
trackers then see their last client go and exit too. The initializer is given the parent's pid, so a
worker whose parent died while it was still starting exits at once. Every item carries the process
set-up (:func:`~luckystack.graph.process.configure_process`) the parent's node packages registered,
which the worker runs, once each, before its first item (the workers, started before those packages
were imported, are the same for every map).
(``prctl(PR_SET_PDEATHSIG)`` would fire when the parent *thread* that started the worker ends, and
workers are started from node threads that end with each run.) :func:`stop_workers` ends them at once
when a run is interrupted.

After each item, a process whose heap holds more than :data:`FREE_HEAP_LIMIT` bytes free, and more than
:data:`BURST_FACTOR` times what it held free after each of its two items before, hands it back to the
kernel (:func:`~luckystack.graph.allocator.release_free_memory`): a burst of temporaries in one item
(a surface's AP templates, built once per process) would otherwise stay resident in that process
through every later item and node, in the caller and in every worker. What every item frees alike (its
own buffers) is kept for the next item (handing it back made every item fault those pages in afresh)
until the map ends: the workers then hand back all they hold free, and the caller does so as the next
map starts (a node that maps once per group of its work would otherwise hold the last map's buffers,
or a burst of its own between maps, beside the workers' items).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, wait
from importlib import import_module
from typing import Any

from luckystack.graph.allocator import free_heap_bytes, release_free_memory
from luckystack.graph.process import Setup, configure_process, process_setups
from luckystack.graph.tracker import use_light_tracker

IDLE_WORKER_TIMEOUT_S = 300  # as joblib's loky backend: workers survive between the nodes of a run
AHEAD_PER_WORKER = 2  # items queued per worker, so a worker never waits for the caller to submit
WAITING_PER_JOB = 2  # results computed here that may wait for an earlier worker item (bounds memory)
PARENT_POLL_S = 0.25  # how often a worker checks that the process that started it is still there
FREE_HEAP_LIMIT = 32 << 20  # free heap a process keeps after an item in any case (per-item buffers reused)
BURST_FACTOR = 1.25  # … and more when its items leave as much free, one after another
WARM_WORKER_WAIT_S = 0.05  # a running worker answers a no-op in about 1 ms; a starting one takes ~0.7 s
_END = object()
# Thread-pool sizes native libraries read at start-up (joblib's list). A library with its own setting
# limits it in a process set-up function (see luckystack.graph.process), which workers run as they start.
THREAD_LIMIT_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                     "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def worker_env(jobs: int) -> dict[str, str]:
    """Environment of the worker processes: each native thread pool gets cores // jobs threads (at
    least 1); a limit the user has set in the environment is kept."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    per_job = str(max(1, cores // jobs))
    return {name: os.environ.get(name, per_job) for name in THREAD_LIMIT_VARS}


_watchdog: threading.Thread | None = None


def _watch_parent(parent: int) -> None:
    """A worker's initializer: exit if ``parent`` is gone already, else start (once) a daemon thread that exits
    this process when it is."""
    global _watchdog
    if os.getppid() != parent:
        os._exit(1)
    if _watchdog is not None:
        return

    def watch() -> None:
        while os.getppid() == parent:  # a dead parent's children are handed to init (or a subreaper)
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    _watchdog = threading.Thread(target=watch, name="lsk-parent-watchdog", daemon=True)
    _watchdog.start()


def _ready() -> bool:
    return True


def _preload(modules: tuple[str, ...]) -> int:
    """In a worker: import ``modules`` (what the first items would import); returns the worker's pid."""
    for name in modules:
        import_module(name)
    return os.getpid()


_recent_free: deque[int] = deque(maxlen=2)  # free heap bytes after this process's last items


def _item(fn: Callable[[Any], Any], item: Any, setups: tuple[Setup, ...] = ()) -> Any:
    """``fn(item)`` in a process set up by ``setups`` (those not yet run here), then a burst of freed
    heap handed back (see the module docstring; in a worker or in the caller)."""
    configure_process(setups)
    try:
        return fn(item)
    finally:
        _release_burst()


def _release_burst() -> None:
    free = free_heap_bytes()
    if free is None:
        release_free_memory(FREE_HEAP_LIMIT)
        return
    usual = min(_recent_free, default=0)
    _recent_free.append(free)
    if free > FREE_HEAP_LIMIT and free > BURST_FACTOR * usual:
        release_free_memory()


def stop_workers(wait: bool = False) -> None:
    """Kill the worker processes now (an interrupted run must not wait for their items; a process about
    to exit need not wait for its idle workers to tear their interpreters down); ``wait``: return once
    they are gone and loky's manager thread has ended. Imports nothing when no worker was ever started."""
    module = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(module, "_executor", None)  # loky's singleton; None: never started
    if executor is not None:
        executor.shutdown(wait=wait, kill_workers=True)


_probe: tuple[Any, Future] | None = None  # the pool and the latest no-op submitted to it


def _pool(jobs: int) -> Any:
    """loky's reusable executor with ``jobs − 1`` workers (started, or reused as they run)."""
    from joblib.externals.loky import get_reusable_executor

    use_light_tracker()
    return get_reusable_executor(max_workers=jobs - 1, timeout=IDLE_WORKER_TIMEOUT_S, env=worker_env(jobs),
                                 initializer=_watch_parent, initargs=(os.getpid(),))


def start_workers(jobs: int, preload: Sequence[str] = ()) -> None:
    """Start the ``jobs − 1`` worker processes of later maps now, without waiting for them, each then
    importing the modules ``preload`` names (the node packages whose functions the maps will run)."""
    global _probe
    if jobs <= 1:
        return
    pool = _pool(jobs)
    for _ in range(jobs - 1):
        _probe = (pool, pool.submit(_preload, tuple(preload)))


def workers_running() -> bool:
    """Whether worker processes of an earlier map are alive and idle-waiting (a long-lived process, such
    as a server that runs one pipeline edit after another), so a map may use them at no start-up cost; never starts or imports anything."""
    module = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(module, "_executor", None)
    if executor is None:
        return False
    flags = getattr(executor, "_flags", None)
    if flags is None or flags.broken is not None or flags.shutdown:
        return False
    processes = dict(getattr(executor, "_processes", None) or {})
    return bool(processes) and all(p.is_alive() for p in processes.values())


def ordered_map(fn: Callable[[Any], Any], items: Iterable, jobs: int) -> Iterator:
    """Yield ``fn(item)`` for every item, in order, computed by this thread and ``jobs − 1`` processes.

    ``fn`` and the items must pickle (worker processes). An exception from any item is raised here, at
    its place in the order; items not yet started are cancelled when the generator is closed.
    """
    global _probe
    if jobs <= 1:
        yield from map(fn, items)
        return
    pool = _pool(jobs)
    answered = _probe is not None and _probe[0] is pool and _probe[1].done()
    started = pool.submit(_ready)
    _probe = (pool, started)
    if answered:  # a worker is up: it gets the first items; a starting one would take far longer
        wait([started], timeout=WARM_WORKER_WAIT_S)
    setups = process_setups()
    _between_maps()  # what the node freed before this map (the last map's buffers, a burst of set-up)
    source = iter(items)
    upcoming = next(source, _END)  # one item of lookahead: the last one is kept for this thread
    slots: deque[tuple[bool, Future]] = deque()  # in input order: (on a worker, its outcome)
    in_flight = 0
    shared = False  # whether a worker was given items
    max_in_flight = AHEAD_PER_WORKER * (jobs - 1)
    max_waiting = WAITING_PER_JOB * jobs
    try:
        while True:
            while upcoming is not _END and in_flight < max_in_flight and started.done():
                following = next(source, _END)
                if following is _END:
                    break
                slots.append((True, pool.submit(_item, fn, upcoming, setups)))
                in_flight += 1
                shared = True
                upcoming = following
            exhausted = upcoming is _END
            if slots:
                on_worker, head = slots[0]
                if head.done() or exhausted or len(slots) - in_flight >= max_waiting:
                    slots.popleft()
                    in_flight -= on_worker
                    yield head.result()  # a failed item raises here, at its place in the order
                    continue
            if exhausted:
                return
            item, upcoming = upcoming, next(source, _END)  # no result is ready in order: compute one here
            slots.append((False, _computed_here(fn, item)))
    finally:
        started.cancel()
        for on_worker, slot in slots:
            if on_worker:
                slot.cancel()
        if shared:
            _rest(pool, jobs)


def _rest(pool: Any, jobs: int) -> None:
    """Have the workers hand back what their heaps hold free once the items queued before are done: the
    next map's items need buffers of their own (this process does so as its next map starts, and
    between nodes, see run_task)."""
    try:
        for _ in range(jobs - 1):
            pool.submit(_between_maps)
    except RuntimeError:
        pass  # the workers were stopped (an interrupted run)


def _between_maps() -> None:
    _recent_free.clear()
    release_free_memory()


def _computed_here(fn: Callable[[Any], Any], item: Any) -> Future:
    """``fn(item)`` computed in this thread, as a finished future (its result or its exception)."""
    outcome: Future = Future()
    try:
        outcome.set_result(_item(fn, item))
    except Exception as exc:
        outcome.set_exception(exc)
    return outcome
