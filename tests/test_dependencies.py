"""The runtime dependencies in pyproject.toml are exactly the third-party modules the installed code imports."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("luckystack", "graph", "nodes")  # the folders installed as luckystack, .graph and .nodes
DISTRIBUTION = {"cv2": "opencv-python-headless", "pydantic_core": "pydantic"}  # import → distribution, where they differ


def _imported() -> set[str]:
    found = set()
    for folder in PACKAGES:
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in ("luckystack", "__future__")}


def _names(requirements: list[str]) -> set[str]:
    return {d.split(">")[0].split("=")[0].split("[")[0].strip().lower() for d in requirements}


def test_dependencies_are_what_the_code_imports():
    """Every runtime dependency is imported; every import is a runtime dependency or belongs to an
    optional feature's extra (the studio's web stack, Dask), not to the test extra alone."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = _names(project["dependencies"])
    extras = set().union(*(_names(reqs) for name, reqs in project["optional-dependencies"].items()
                           if name != "test"))
    imported = {DISTRIBUTION.get(m, m).lower() for m in _imported()}
    assert declared <= imported, f"declared but never imported: {sorted(declared - imported)}"
    assert imported <= declared | extras, f"imported but not declared: {sorted(imported - declared - extras)}"
