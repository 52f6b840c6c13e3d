"""The pipeline graph's order and cycle check."""

import pytest

from luckystack.graph.dag import find_cycle, topological_order


def test_order_puts_sources_first_and_breaks_ties_by_name():
    nodes = ["stack", "reader", "analyse", "stabilize", "calibrate", "align", "reference"]
    edges = [("reader", "calibrate"), ("calibrate", "stabilize"), ("calibrate", "analyse"),
             ("stabilize", "analyse"), ("analyse", "reference"), ("stabilize", "reference"),
             ("reference", "align"), ("analyse", "align"), ("align", "stack"), ("calibrate", "stack")]
    assert topological_order(nodes, edges) == ["reader", "calibrate", "stabilize", "analyse", "reference",
                                               "align", "stack"]
    assert topological_order(["c", "b", "a"], []) == ["a", "b", "c"]
    assert topological_order(["z", "y", "a"], [("z", "a")]) == ["y", "z", "a"]
    with pytest.raises(ValueError):
        topological_order(["a", "b"], [("a", "b"), ("b", "a")])


def test_cycles_are_found_with_their_nodes_in_edge_order():
    assert find_cycle(["r", "a", "b"], [("r", "a"), ("a", "b")]) is None
    assert find_cycle(["r", "a", "b"], [("r", "a"), ("b", "a"), ("a", "b")]) == ["a", "b"]
    assert find_cycle(["x", "p", "q", "s"], [("p", "q"), ("q", "s"), ("s", "p"), ("x", "p")]) == ["p", "q", "s"]
    assert find_cycle(["a"], [("a", "a")]) == ["a"]
    diamond = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    assert find_cycle(["a", "b", "c", "d"], diamond) is None
