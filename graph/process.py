"""Set-up of a process that runs nodes: an explicit step, never a side effect of importing a module.

Importing a module for its functions changes nothing in the process. The engine calls
:func:`configure_process` where nodes are about to run: :func:`luckystack.graph.api.run`, every task
(:func:`~luckystack.graph.task.run_task`, in this process or on a cluster worker), every worker process
of :func:`~luckystack.graph.parallel.ordered_map` as it starts, and every chunk mapped on a cluster. It
tunes glibc's allocator (:mod:`~luckystack.graph.allocator`) and runs the set-up functions a node
package registered with :func:`add_process_setup` (registering changes nothing until then). Each
set-up function runs once per process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from luckystack.graph.allocator import tune_allocator

Setup = Callable[[], object]

_registered: list[Setup] = []
_done: set[tuple[str, str]] = set()
_lock = threading.Lock()


def add_process_setup(fn: Setup) -> None:
    """Have ``fn()`` run in every process before it runs nodes. ``fn`` must be a module-level function
    (it travels to worker processes by reference) and safe to call once per process."""
    if fn not in _registered:
        _registered.append(fn)


def process_setups() -> tuple[Setup, ...]:
    """The engine's set-up and the registered ones, in order (what a worker process is given)."""
    return (tune_allocator, *_registered)


def configure_process(setups: Iterable[Setup] | None = None) -> None:
    """Run every set-up function (default :func:`process_setups`) not yet run in this process."""
    with _lock:
        for fn in process_setups() if setups is None else setups:
            name = (fn.__module__, fn.__qualname__)
            if name not in _done:
                _done.add(name)
                fn()
