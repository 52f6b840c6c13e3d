"""Order and cycle checks of a pipeline's node graph (a few dozen nodes: plain Python, no graph library
to import at every start)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence


def topological_order(nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> list[str]:
    """Every node after the sources of its edges (``(source, target)``); among the nodes ready at once,
    the smallest name first, so the order depends only on the graph. ValueError on a cycle."""
    targets: dict[str, list[str]] = {n: [] for n in nodes}
    waiting = dict.fromkeys(nodes, 0)
    for src, dst in edges:
        targets[src].append(dst)
        waiting[dst] += 1
    ready = [n for n, k in waiting.items() if k == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        n = heapq.heappop(ready)
        order.append(n)
        for t in targets[n]:
            waiting[t] -= 1
            if waiting[t] == 0:
                heapq.heappush(ready, t)
    if len(order) != len(waiting):
        raise ValueError("the graph has a cycle")
    return order


def find_cycle(nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> list[str] | None:
    """The nodes of a cycle in edge order (depth first from the nodes in their order), or None."""
    targets: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in edges:
        targets[src].append(dst)
    done: set[str] = set()
    for start in nodes:
        if start in done:
            continue
        path, on_path = [start], {start}
        branches = [iter(targets[start])]
        while branches:
            nxt = next(branches[-1], None)
            if nxt is None:
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                branches.pop()
                continue
            if nxt in on_path:
                return path[path.index(nxt):]
            if nxt not in done:
                path.append(nxt)
                on_path.add(nxt)
                branches.append(iter(targets[nxt]))
    return None
