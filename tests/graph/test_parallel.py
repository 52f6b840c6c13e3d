"""ordered_map: results in input order, shared between the calling thread and worker processes."""

from __future__ import annotations

import os
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
