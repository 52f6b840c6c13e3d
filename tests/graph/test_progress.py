"""Progress bars count frames when a node maps over frame ranges, and name the node once."""

from __future__ import annotations

import io

import luckystack.nodes  # noqa: F401  (registers the node types whose names a label may repeat)
from luckystack.graph.context import CacheContext
from luckystack.graph.progress import BarReporter, Reporter


class Recorder(Reporter):
    def __init__(self) -> None:
        self.totals: list[tuple[str, int, str]] = []
        self.done = 0

    def total(self, node_id: str, total: int, label: str) -> None:
        self.totals.append((node_id, total, label))

    def advance(self, node_id: str, n: int = 1) -> None:
        self.done += n


def _context(reporter: Reporter, node_id: str = "stab") -> CacheContext:
    return CacheContext(None, {}, None, 1, node_id, pending=None, reporter=reporter)


def test_a_map_over_frame_ranges_counts_frames():
    rec = Recorder()
    chunks = [range(0, 32), range(32, 64), range(64, 70)]
    assert list(_context(rec).map(len, chunks, total=len(chunks), label="brightness")) == [32, 32, 6]
    assert rec.totals == [("stab", 70, "brightness")] and rec.done == 70


def test_other_items_count_one_each_and_a_type_name_is_not_repeated():
    rec = Recorder()
    list(_context(rec, "ap_grid").map(str, ["a", "b"], label="align"))  # the registered type of the node
    list(_context(rec, "stack").map(str, ["a"], label="stack"))
    assert rec.totals == [("ap_grid", 2, ""), ("stack", 1, "")] and rec.done == 3


def test_the_bar_names_the_node_once():
    stream = io.StringIO()
    bars = BarReporter(stream)
    bars.start("stabilize", "first run")
    list(_context(bars, "stabilize").map(len, [range(0, 10), range(10, 20)], label="stabilize"))
    bar = bars._bars["stabilize"]
    assert (bar.desc, bar.n, bar.total) == ("stabilize", 20, 20)
    bars.finish("stabilize", "ran", 0.1)
