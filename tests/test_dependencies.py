"""The runtime dependencies in pyproject.toml are exactly the third-party modules the installed code imports."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("luckystack", "graph", "nodes")  # the folders installed as luckystack, .graph and .nodes
DISTRIBUTION = {"cv2": "opencv-python-headless"}  # import name → distribution, where they differ


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


def test_dependencies_are_what_the_code_imports():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower() for d in project["dependencies"]}
    assert {DISTRIBUTION.get(m, m).lower() for m in _imported()} == declared
