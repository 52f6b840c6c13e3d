"""Progress display: a tqdm bar per node on a terminal, plain log lines otherwise, or nothing.

A bar counts what the node's ``Context.map`` counts: indices when the node maps over ranges of
indices (see :mod:`luckystack.graph.context`), else work items. It is named by the node id, followed by
the map's label only when that says more than the node's name.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Reporter:
    """Silent base: the scheduler calls these hooks; subclasses show them."""

    def start(self, node_id: str, what: str) -> None: ...
    def total(self, node_id: str, total: int, label: str) -> None: ...
    def advance(self, node_id: str, n: int = 1) -> None: ...
    def finish(self, node_id: str, status: str, seconds: float) -> None: ...
    def log(self, message: str) -> None: ...


class LineReporter(Reporter):
    """One line per event, and at most one progress line per node every ``every`` seconds."""

    def __init__(self, stream: TextIO | None = None, every: float = 2.0) -> None:
        self.stream = stream or sys.stderr
        self.every = every
        self._lock = threading.Lock()
        self._state: dict[str, list] = {}  # node → [done, total, label, t0, last]

    def _print(self, text: str) -> None:
        with self._lock:
            print(text, file=self.stream, flush=True)

    def start(self, node_id: str, what: str) -> None:
        self._state[node_id] = [0, 0, "", time.monotonic(), time.monotonic()]
        self._print(f"[{node_id}] {what}")

    def total(self, node_id: str, total: int, label: str) -> None:
        st = self._state.setdefault(node_id, [0, 0, "", time.monotonic(), time.monotonic()])
        st[0], st[1], st[2] = 0, total, label

    def advance(self, node_id: str, n: int = 1) -> None:
        st = self._state.get(node_id)
        if st is None:
            return
        st[0] += n
        now = time.monotonic()
        if now - st[4] >= self.every and st[1]:
            st[4] = now
            rate = st[0] / max(now - st[3], 1e-9)
            left = (st[1] - st[0]) / rate if rate else float("nan")
            self._print(f"[{node_id}] {st[2] or 'progress'} {st[0]}/{st[1]}, ~{left:.0f} s left")

    def finish(self, node_id: str, status: str, seconds: float) -> None:
        self._state.pop(node_id, None)
        self._print(f"[{node_id}] {status} in {seconds:.2f} s")

    def log(self, message: str) -> None:
        self._print(f"warning: {message}")


class BarReporter(LineReporter):
    """A tqdm bar per running node (items done, time left); start/finish lines as LineReporter."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._bars: dict = {}

    def total(self, node_id: str, total: int, label: str) -> None:
        from tqdm import tqdm
        with self._lock:
            old = self._bars.pop(node_id, None)
            if old is not None:
                old.close()
            self._bars[node_id] = tqdm(total=total, desc=f"{node_id} {label}".strip(), leave=False,
                                       file=self.stream, position=len(self._bars),
                                       dynamic_ncols=True)

    def advance(self, node_id: str, n: int = 1) -> None:
        bar = self._bars.get(node_id)
        if bar is not None:
            bar.update(n)

    def finish(self, node_id: str, status: str, seconds: float) -> None:
        with self._lock:
            bar = self._bars.pop(node_id, None)
            if bar is not None:
                bar.close()
        super().finish(node_id, status, seconds)


def auto_reporter(stream: TextIO | None = None) -> Reporter:
    """Bars on a terminal, lines otherwise."""
    stream = stream or sys.stderr
    return BarReporter(stream) if stream.isatty() else LineReporter(stream)
