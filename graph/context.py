"""An in-process :class:`~luckystack.graph.node.Context`, and ``run_node`` to call one node directly.

The scheduler builds richer contexts (cache-backed arrays, progress bars, run records); this one is
what tests and notebooks use to run a single node type on in-memory inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from luckystack.graph.executor import Mapper, default_map_backend, local_map
from luckystack.graph.parallel import workers_running
from luckystack.graph.node import Result, find, registry


class _Counter:
    def __init__(self) -> None:
        self.done = 0

    def update(self, n: int = 1) -> None:
        self.done += n


class LocalContext:
    """Runs a node in this process; ``map`` goes to ``mapper`` (an executor's chunk level), by default
    this thread and ``jobs − 1`` local worker processes (:func:`~luckystack.graph.executor.local_map`)."""

    def __init__(self, params: Any, inputs: Mapping[str, Result], input_file: Path | None = None,
                 jobs: int = 1, node_id: str = "node", mapper: Mapper | None = None) -> None:
        self.mapper = mapper
        self.params = params
        self.inputs = dict(inputs)
        self.input_file = input_file
        self.jobs = max(1, int(jobs))
        self.node_id = node_id
        self.messages: list[str] = []

    def map(self, fn: Callable, items: Iterable, *, total: int | None = None,
            label: str = "", parallel: bool = True, sizes: Sequence[int] | None = None) -> Iterator:
        """``fn`` over ``items`` in order. ``parallel``: whether the items are worth starting worker
        processes for (False: computed in this thread, unless workers are running already, as in a
        long-lived process that ran a larger map before). ``total`` (item count) and ``sizes`` (what
        each item counts for on a progress bar, e.g. the indices it covers) only inform progress."""
        if not parallel and not self._workers_warm():
            return (fn(item) for item in items)
        if self.mapper is None:
            return local_map(fn, items, self.jobs)
        return self.mapper.map(fn, items, self.jobs)

    def _workers_warm(self) -> bool:
        if self.jobs <= 1:
            return False
        if self.mapper is None:
            return default_map_backend() == "loky" and workers_running()
        return bool(getattr(self.mapper, "workers_warm", lambda: False)())

    def progress(self, total: int, label: str = "") -> _Counter:
        return _Counter()

    def create_array(self, port: str, name: str, shape: tuple[int, ...], dtype: Any,
                     chunks: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    def log(self, message: str) -> None:
        self.messages.append(message)

    def earlier(self) -> Iterator[Mapping[str, Result]]:
        return iter(())


def run_node(type_name: str, params: Mapping[str, Any] | None = None,
             inputs: Mapping[str, Result] | None = None, input_file: Path | None = None,
             jobs: int = 1) -> dict[str, Result]:
    """Validate ``params`` for node type ``type_name`` and run it in this process."""
    node = find(type_name)
    if node is None:
        raise KeyError(type_name)
    ctx = LocalContext(node.params(**dict(params or {})), inputs or {}, input_file, jobs, type_name)
    return node.run(ctx)


class CacheContext(LocalContext):
    """The scheduler's Context: arrays go into the cache entry being written, progress to a Reporter.

    ``map`` runs ``fn`` on the executor's chunk level and yields results in input order, advancing the
    node's progress bar per item.
    """

    def __init__(self, params: Any, inputs: Mapping[str, Result], input_file: Path | None, jobs: int,
                 node_id: str, pending: Any, reporter: Any,
                 earlier: Callable[[], Iterator[Mapping[str, Result]]] | None = None,
                 mapper: Mapper | None = None) -> None:
        super().__init__(params, inputs, input_file, jobs, node_id, mapper)
        self._pending = pending
        self._reporter = reporter
        self._earlier = earlier

    def map(self, fn: Callable, items: Iterable, *, total: int | None = None,
            label: str = "", parallel: bool = True, sizes: Sequence[int] | None = None) -> Iterator:
        sizes = list(sizes) if sizes is not None else _range_sizes(items)
        shown = total if sizes is None else sum(sizes)
        if shown is None and hasattr(items, "__len__"):
            shown = len(items)  # type: ignore[arg-type]
        if shown:
            self._reporter.total(self.node_id, shown, _bar_label(label, self.node_id))
        for k, out in enumerate(super().map(fn, items, total=total, label=label, parallel=parallel)):
            self._reporter.advance(self.node_id, 1 if sizes is None else sizes[k])
            yield out

    def progress(self, total: int, label: str = "") -> "_ReporterProgress":
        self._reporter.total(self.node_id, total, _bar_label(label, self.node_id))
        return _ReporterProgress(self._reporter, self.node_id)

    def create_array(self, port: str, name: str, shape: tuple[int, ...], dtype: Any,
                     chunks: tuple[int, ...]) -> Any:
        return self._pending.create_array(port, name, shape, dtype, chunks)

    def log(self, message: str) -> None:
        super().log(message)
        self._reporter.log(f"{self.node_id}: {message}")

    def earlier(self) -> Iterator[Mapping[str, Result]]:
        return self._earlier() if self._earlier is not None else iter(())


def _range_sizes(items: Iterable) -> list[int] | None:
    """The lengths of the items when they are all ranges (a node mapping over ranges of indices): the
    progress bar then counts the indices rather than work items."""
    if isinstance(items, (list, tuple)) and items and all(isinstance(i, range) for i in items):
        return [len(i) for i in items]
    return None


def _bar_label(label: str, node_id: str) -> str:
    """A map's label as the bar shows it after the node id: left out when it only repeats the node's
    name or type (``stabilize stabilize``)."""
    return "" if label in (node_id, "") or label in registry() else label


class _ReporterProgress:
    def __init__(self, reporter: Any, node_id: str) -> None:
        self._reporter, self._node_id = reporter, node_id

    def update(self, n: int = 1) -> None:
        self._reporter.advance(self._node_id, n)
