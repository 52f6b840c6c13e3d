"""The engine's layout: its modules import one another without cycles (imports inside functions count),
and its code and words name no application (the application passes its name and examples in)."""

from __future__ import annotations

import ast
import re
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


# Words of the application built on the engine (an astronomy stacker): its domain, formats and libraries.
APPLICATION_WORDS = re.compile(
    r"\b(ser|jupiter|planet\w*|lunar|solar|moon|astronom\w*|telescope|opencv|cv2|lucky[- ]imaging|stacker"
    r"|stack(s|ed|ing)?|recordings?|frames?|align\w*|drizzle|bayer|debayer|sharpen\w*|ap_size|aps)\b"
    r"|luckystack(?!\.graph\b)", re.IGNORECASE)
ENV_VARS = re.compile(r"\bLUCKYSTACK_[A-Z]+\b")  # the engine's settings keep the distribution's prefix


def application_words(text: str) -> list[str]:
    return [f"{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1)
            if APPLICATION_WORDS.search(ENV_VARS.sub("", line))]


def test_word_finder_finds_application_words():
    assert application_words('prog="luckystack"\n# 4 GB SER\nok = 1\nn_frames = 2') == \
        ['1: prog="luckystack"', "2: # 4 GB SER"]
    assert application_words("from luckystack.graph.node import Result\nos.environ['LUCKYSTACK_CACHE']") == []


def test_engine_names_no_application():
    found = [f"{p.name}:{hit}" for p in sorted(GRAPH.glob("*.py")) for hit in application_words(p.read_text())]
    assert found == [], "the engine names application things:\n" + "\n".join(found)
