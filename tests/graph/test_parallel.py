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


_items_here = 0  # items this process ran (in each worker process of its own)


def _free_then_allocate(megabytes: tuple[int, int]) -> tuple[int, int | None]:
    """The heap's free bytes as this item starts, then ``megabytes[0]`` MB in 1 MB blocks (heap, not mmap,
    under the tuned thresholds; below the 64 MB trim threshold, so glibc alone would keep it) if this is
    the third item this process runs, else ``megabytes[1]`` MB, freed again."""
    import numpy as np

    from luckystack.graph.allocator import free_heap_bytes

    global _items_here
    free = free_heap_bytes()
    blocks = [np.ones(1 << 17) for _ in range(megabytes[0] if _items_here == 2 else megabytes[1])]
    del blocks  # every page was touched
    _items_here += 1
    time.sleep(0.05)
    return os.getpid(), free


def _worker_frees(megabytes: tuple[int, int], items: int = 24) -> list[int]:
    """The free heap bytes at the start of each item a fresh worker ran, in order."""
    from luckystack.graph.allocator import free_heap_bytes

    if free_heap_bytes() is None:
        pytest.skip("no mallinfo2 (glibc < 2.33)")
    _no_workers()  # a fresh worker, which has run no item yet
    out = list(ordered_map(_free_then_allocate, [megabytes] * items, jobs=2))
    frees = [free for pid, free in out if pid != os.getpid()]
    assert len(frees) >= 4, "the worker ran fewer than four items"
    return frees


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_worker_hands_back_a_burst_of_freed_heap():
    from luckystack.graph.parallel import FREE_HEAP_LIMIT

    frees = _worker_frees((48, 4))  # 4 MB an item, but 48 MB in the third (a surface's AP templates)
    assert max(frees[3:]) <= FREE_HEAP_LIMIT + (4 << 20)  # the burst went back


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_worker_keeps_the_heap_every_item_frees_alike_until_the_map_ends():
    frees = _worker_frees((40, 40))  # each item uses and frees 40 MB, above FREE_HEAP_LIMIT
    assert min(frees[2:]) >= 36 << 20  # kept for the next item from the second on, not faulted in again
    out = list(ordered_map(_free_then_allocate, [(0, 0)] * 24, jobs=2))  # the next map, on the same worker
    assert max(free for pid, free in out if pid != os.getpid()) < 8 << 20  # handed back when the map ended


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


_CALLER_CODE = """
import os, time
import numpy as np
from luckystack.graph.allocator import tune_allocator, free_heap_bytes
from luckystack.graph.parallel import ordered_map

def item(megabytes):
    free = free_heap_bytes()
    blocks = [np.ones(1 << 17) for _ in range(megabytes)]  # 1 MB heap blocks, freed again
    del blocks
    time.sleep(0.02)
    return os.getpid(), free

assert tune_allocator()
item(48)  # a burst before the map (a node's set-up), below the trim threshold: glibc alone keeps it
before = free_heap_bytes()
first = [free for pid, free in ordered_map(item, [0] * 6, jobs=2) if pid == os.getpid()][0]
here = [pid for pid, _ in ordered_map(item, [40] * 8, jobs=2)].count(os.getpid())
after = [free for pid, free in ordered_map(item, [0] * 6, jobs=2) if pid == os.getpid()][0]
print(before > 40 << 20, first < 8 << 20, here >= 2, after < 8 << 20)
"""


def test_the_caller_hands_back_its_free_heap_as_a_map_starts():
    import subprocess

    if not sys.platform.startswith("linux"):
        pytest.skip("glibc's allocator")
    run = subprocess.run([sys.executable, "-c", _CALLER_CODE], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["True", "True", "True", "True"]  # the last map's 40 MB items' too


def _modules_and_setup(_: int) -> tuple[bool, str | None, int]:
    time.sleep(0.02)
    return "colorsys" in sys.modules, os.environ.get("LSK_TEST_SETUP"), os.getpid()


def _mark_process() -> None:
    os.environ["LSK_TEST_SETUP"] = "ran"


def test_workers_started_ahead_import_their_modules_then_serve_the_maps_with_the_parents_setup():
    from luckystack.graph import process
    from luckystack.graph.parallel import start_workers

    _no_workers()
    process.add_process_setup(_mark_process)  # a node package's set-up, registered after the workers started
    try:
        start_workers(2, preload=("colorsys",))
        time.sleep(0.5)  # (the caller computes items alone while the worker still starts)
        out = list(ordered_map(_modules_and_setup, range(150), jobs=2))
    finally:
        process._registered.remove(_mark_process)
        os.environ.pop("LSK_TEST_SETUP", None)
    on_worker = {(loaded, setup) for loaded, setup, pid in out if pid != os.getpid()}
    assert on_worker == {(True, "ran")}  # the worker started ahead, set up before its first item
