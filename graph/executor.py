"""Executors run ready nodes; the scheduler decides what is ready. Keep this seam small.

An executor only needs ``submit(fn, *args) -> concurrent.futures.Future`` and ``shutdown()``. The local
executor runs independent branches on threads (node functions spend their time in numpy/OpenCV or in
joblib workers, which release the GIL); frame-parallel work inside a node goes through ``Context.map``.
A Dask executor can implement the same two methods with ``distributed.Client.submit``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol


class Executor(Protocol):
    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future: ...
    def shutdown(self) -> None: ...


class LocalExecutor:
    """Runs up to ``branches`` nodes at once on threads of this process."""

    def __init__(self, branches: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max(1, branches), thread_name_prefix="lsk-node")

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        return self._pool.submit(fn, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
