"""An ordered parallel map in which the calling thread works alongside ``jobs − 1`` worker processes.

A node waiting on ``joblib.Parallel`` leaves its own core idle while ``jobs`` workers compute, and the
first node that maps waits for every worker's start-up (imports: about 0.7 s each) before any result.
Here the caller computes items itself: alone until a worker has started (a no-op task tells), then
whenever the next result in order is not ready. With ``jobs`` = 2 one worker process does about half
of the work, its start-up overlaps the caller's computing, and the run holds one process less in
memory. Results come in input order, so they never depend on who computed them.

Workers come from loky's reusable executor (the one joblib uses) and stay alive between nodes. Like
joblib's workers they start with the native thread pools (OpenMP, BLAS, OpenCV) limited to
cores // jobs threads each, so ``jobs`` processes never run cores × jobs threads between them.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

IDLE_WORKER_TIMEOUT_S = 300  # as joblib's loky backend: workers survive between the nodes of a run
AHEAD_PER_WORKER = 2  # items queued per worker, so a worker never waits for the caller to submit
WAITING_PER_JOB = 2  # results computed here that may wait for an earlier worker item (bounds memory)
_END = object()
# Thread-pool sizes native libraries read at start-up (joblib's list, plus OpenCV's).
THREAD_LIMIT_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                     "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "OPENCV_FOR_THREADS_NUM")


def worker_env(jobs: int) -> dict[str, str]:
    """Environment of the worker processes: each native thread pool gets cores // jobs threads (at
    least 1); a limit the user has set in the environment is kept."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    per_job = str(max(1, cores // jobs))
    return {name: os.environ.get(name, per_job) for name in THREAD_LIMIT_VARS}


def _ready() -> bool:
    return True


def ordered_map(fn: Callable[[Any], Any], items: Iterable, jobs: int) -> Iterator:
    """Yield ``fn(item)`` for every item, in order, computed by this thread and ``jobs − 1`` processes.

    ``fn`` and the items must pickle (worker processes). An exception from any item is raised here, at
    its place in the order; items not yet started are cancelled when the generator is closed.
    """
    if jobs <= 1:
        yield from map(fn, items)
        return
    from joblib.externals.loky import get_reusable_executor

    pool = get_reusable_executor(max_workers=jobs - 1, timeout=IDLE_WORKER_TIMEOUT_S, env=worker_env(jobs))
    started = pool.submit(_ready)
    source = iter(items)
    slots: deque[tuple[bool, Any]] = deque()  # in input order: (is a future, the future or the result)
    in_flight = 0
    max_in_flight = AHEAD_PER_WORKER * (jobs - 1)
    max_waiting = WAITING_PER_JOB * jobs
    exhausted = False
    try:
        while True:
            while not exhausted and in_flight < max_in_flight and started.done():
                item = next(source, _END)
                if item is _END:
                    exhausted = True
                    break
                slots.append((True, pool.submit(fn, item)))
                in_flight += 1
            if slots:
                is_future, head = slots[0]
                if not is_future or head.done() or exhausted or len(slots) - in_flight >= max_waiting:
                    slots.popleft()
                    if is_future:
                        in_flight -= 1
                        yield head.result()
                    else:
                        yield head
                    continue
            if exhausted:
                return
            item = next(source, _END)  # no result is ready in order: compute the next item here
            if item is _END:
                exhausted = True
                continue
            slots.append((False, fn(item)))
    finally:
        started.cancel()
        for is_future, slot in slots:
            if is_future:
                slot.cancel()
