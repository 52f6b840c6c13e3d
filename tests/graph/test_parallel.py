"""ordered_map: results in input order, shared between the calling thread and worker processes."""

from __future__ import annotations

import os
import sys
import time

import pytest

from luckystack.graph.parallel import ordered_map, stop_workers, workers_running


def _slow_square_with_pid(x: int) -> tuple[int, int]:
    time.sleep(0.02)
    return x * x, os.getpid()


def _fails_on_five(x: int) -> int:
    if x == 5:
        raise ValueError("item five")
    return x


def test_results_come_in_input_order_and_both_the_caller_and_a_worker_compute():
    out = list(ordered_map(_slow_square_with_pid, range(150), jobs=2))
    assert [v for v, _ in out] == [x * x for x in range(150)]
    pids = {pid for _, pid in out}
    assert os.getpid() in pids  # the caller worked, also while the worker started
    assert len(pids) == 2  # and the worker took its share once it had started


def _slow_thread_limits(_: int) -> tuple[str | None, str | None, int]:
    time.sleep(0.01)
    return os.environ.get("OMP_NUM_THREADS"), os.environ.get("MKL_NUM_THREADS"), os.getpid()


def test_workers_limit_native_thread_pools_to_their_share_of_the_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")  # the user's choice stands
    cores = len(os.sched_getaffinity(0))
    out = list(ordered_map(_slow_thread_limits, range(200), jobs=2))
    worker = {(omp, cv) for omp, cv, pid in out if pid != os.getpid()}
    assert worker == {(str(max(1, cores // 2)), "3")}


def _no_workers() -> None:
    stop_workers()
    deadline = time.monotonic() + 10
    while workers_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not workers_running()


def test_a_map_asked_not_to_go_parallel_starts_no_worker():
    from luckystack.graph.context import LocalContext

    _no_workers()
    ctx = LocalContext(None, {}, jobs=2)
    assert {pid for _, pid in ctx.map(_slow_square_with_pid, range(8), parallel=False)} == {os.getpid()}
    assert not workers_running()
    assert len({pid for _, pid in ctx.map(_slow_square_with_pid, range(150))}) == 2
    assert workers_running()


def test_a_map_asked_not_to_go_parallel_uses_workers_already_running():
    """A long-lived process (the studio) keeps its workers between runs: a small map shares them."""
    from luckystack.graph.context import LocalContext

    _warm_worker()
    ctx = LocalContext(None, {}, jobs=2)
    for _ in range(3):  # a worker answers in about 1 ms; allow for a busy machine
        pids = {pid for _, pid in ctx.map(_slow_square_with_pid, range(12), parallel=False)}
        if len(pids) == 2:
            break
    assert len(pids) == 2
    assert {pid for _, pid in LocalContext(None, {}, jobs=1).map(_slow_square_with_pid, range(12),
                                                                   parallel=False)} == {os.getpid()}


def test_one_job_runs_everything_here():
    out = list(ordered_map(_slow_square_with_pid, range(5), jobs=1))
    assert {pid for _, pid in out} == {os.getpid()}


def _warm_worker() -> None:
    """Leave a started worker behind (it starts while the caller computes the first items alone)."""
    pids = {pid for _, pid in ordered_map(_slow_square_with_pid, range(150), jobs=2)}
    assert len(pids) == 2


def test_a_running_worker_gets_the_first_items_and_the_caller_the_last():
    _warm_worker()
    for _ in range(3):  # a worker answers in about 1 ms; allow for a busy machine
        out = list(ordered_map(_slow_square_with_pid, range(6), jobs=2))
        if out[0][1] != os.getpid():
            break
    assert out[0][1] != os.getpid()
    assert out[-1][1] == os.getpid()  # the last item is never left queued on a worker


def test_an_error_is_raised_at_its_place_in_the_order():
    _warm_worker()  # the caller then computes items after the worker's, item five among them
    seen = []
    with pytest.raises(ValueError, match="item five"):
        for value in ordered_map(_fails_on_five, range(40), jobs=2):
            seen.append(value)
    assert seen == [0, 1, 2, 3, 4]


def test_an_empty_input_gives_nothing():
    assert list(ordered_map(_fails_on_five, [], jobs=2)) == []


def _burst_then_report(_: int) -> tuple[int, int | None]:
    """The heap's free bytes as this item starts, then a burst of 48 MB in 1 MB blocks (heap, not mmap,
    under the tuned thresholds; below the 64 MB trim threshold, so glibc alone would keep it), freed."""
    import numpy as np

    from luckystack.graph.allocator import free_heap_bytes

    free = free_heap_bytes()
    blocks = [np.ones(1 << 17) for _ in range(48)]  # 48 × 1 MB, every page touched
    del blocks
    time.sleep(0.05)
    return os.getpid(), free


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_worker_hands_back_a_burst_of_freed_heap_after_each_item():
    from luckystack.graph.allocator import free_heap_bytes
    from luckystack.graph.parallel import FREE_HEAP_LIMIT

    if free_heap_bytes() is None:
        pytest.skip("no mallinfo2 (glibc < 2.33)")
    stop_workers()  # a fresh worker, tuned by its initializer
    out = list(ordered_map(_burst_then_report, range(24), jobs=2))
    seen: dict[int, list[int]] = {}
    for pid, free in out:
        seen.setdefault(pid, []).append(free)
    on_worker = [free for pid, frees in seen.items() if pid != os.getpid() for free in frees[1:]]
    assert on_worker, "the worker ran fewer than two items"
    assert max(on_worker) <= FREE_HEAP_LIMIT + (4 << 20)  # the earlier item's 48 MB went back


def test_release_free_memory_trims_only_above_its_limit():
    import subprocess

    code = """
import numpy as np
from luckystack.graph.allocator import tune_allocator, release_free_memory, free_heap_bytes
assert tune_allocator()
blocks = [np.ones(1 << 17) for _ in range(48)]
del blocks
before = free_heap_bytes()
kept = release_free_memory(above=64 << 20)
trimmed = release_free_memory(above=16 << 20)
print(before > 40 << 20, kept, trimmed, free_heap_bytes() < 8 << 20)
"""
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc's allocator")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["True", "False", "True", "True"]
