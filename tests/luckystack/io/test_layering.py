"""The io package stands on its own: no module under luckystack/io imports the engine (luckystack.graph)
or the stacking steps (luckystack.nodes); it takes plain metadata and arrays."""

from __future__ import annotations

import ast
from pathlib import Path

IO = Path(__file__).resolve().parents[3] / "luckystack" / "io"
FORBIDDEN = ("luckystack.graph", "luckystack.nodes")


def imported_modules(source: str, package: str) -> set[str]:
    """Every module a source file imports, at any depth (inside functions too), relative imports
    resolved against ``package``; ``from a import b`` counts as both ``a`` and ``a.b``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def forbidden(modules: set[str]) -> set[str]:
    return {m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)}


def test_the_scan_sees_every_way_of_importing_the_engine():
    assert forbidden(imported_modules("from luckystack.graph.node import Result", "luckystack.io"))
    assert forbidden(imported_modules("def f():\n    import luckystack.graph.node\n", "luckystack.io"))
    assert forbidden(imported_modules("from .. import graph", "luckystack.io"))
    assert forbidden(imported_modules("from ..nodes.frames import open_frames", "luckystack.io"))
    assert not forbidden(imported_modules("from .sources import RawReader\nfrom luckystack.imaging import colour",
                                          "luckystack.io"))


def test_no_io_module_imports_the_engine_or_the_nodes():
    files = sorted(IO.rglob("*.py"))
    assert any(p.name == "stream.py" for p in files) and any(p.name == "frames.py" for p in files)
    offenders = {}
    for path in files:
        package = ".".join(("luckystack", "io", *path.relative_to(IO).parent.parts))
        bad = forbidden(imported_modules(path.read_text(), package))
        if bad:
            offenders[str(path.relative_to(IO))] = sorted(bad)
    assert not offenders, f"luckystack/io imports the engine or the nodes: {offenders}"
