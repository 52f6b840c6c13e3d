"""The engine's layout: its modules import one another without cycles (imports inside functions count)."""

from __future__ import annotations

import ast
from pathlib import Path

GRAPH = Path(__file__).resolve().parents[2] / "graph"


def _engine_imports() -> dict[str, set[str]]:
    """Module → the engine modules it imports anywhere in its code (top level or inside functions)."""
    modules = {p.stem for p in GRAPH.glob("*.py") if p.stem != "__init__"}
    edges: dict[str, set[str]] = {}
    for name in modules:
        found: set[str] = set()
        for node in ast.walk(ast.parse((GRAPH / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "luckystack.graph":
                found.update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("luckystack.graph."):
                found.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[2] for a in node.names if a.name.startswith("luckystack.graph."))
        edges[name] = found - {name}
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        for nxt in sorted(edges.get(name, ())):
            if nxt in path:
                return path[path.index(nxt):] + [nxt]
            if nxt not in done:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        done.add(name)
        return None

    for name in sorted(edges):
        if name not in done and (found := visit(name, [name])):
            return found
    return None


def test_cycle_finder_finds_one():
    assert _cycle({"spec": {"node", "validate"}, "validate": {"spec"}, "node": set()}) == \
        ["spec", "validate", "spec"]


def test_engine_modules_import_without_cycles():
    cycle = _cycle(_engine_imports())
    assert cycle is None, "engine modules import each other: " + " → ".join(cycle)
