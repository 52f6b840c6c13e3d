"""The shipped pipelines validate, the shipped schema is current, and CI runs the README's commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import luckystack.nodes  # noqa: F401  (registers the node types)
from luckystack.graph import api
from luckystack.graph.node import registry
from luckystack.graph.spec import json_schema

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for p in (REPO / "pipelines").glob("*.json") if p.name != "schema.json")


def test_every_pipeline_is_shipped():
    assert {p.stem for p in SHIPPED} >= {"planet", "planet-colour", "surface"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_pipeline_validates_and_says_when_to_use_it(path):
    pipeline = api.load_pipeline(path)
    assert pipeline.name == path.stem
    assert len(json.loads(path.read_text())["description"]) > 80


def test_one_name_per_step():
    """A step's node type, its module in nodes/ and its id in the shipped pipelines are one name (a type
    used several times in a pipeline, like master for dark and flat, has ids of its own)."""
    builtin = {name: t for name, t in registry().items() if t.func.__module__.startswith("luckystack.nodes.")}
    assert {name: t.func.__module__.rsplit(".", 1)[1] for name, t in builtin.items()} == {n: n for n in builtin}
    for path in SHIPPED:
        types = [entry["type"] for entry in json.loads(path.read_text())["nodes"].values()]
        for nid, entry in json.loads(path.read_text())["nodes"].items():
            assert entry["type"] in builtin, f"{path.name}: {nid} uses {entry['type']!r}"
            assert types.count(entry["type"]) > 1 or nid == entry["type"], f"{path.name}: {nid} is a {entry['type']}"


def test_a_pipeline_file_using_the_former_name_align_aps_still_loads():
    raw = json.loads((REPO / "pipelines" / "planet.json").read_text())
    raw["nodes"]["align"]["type"] = "align-aps"
    old, new = api.pipeline_from_dict(raw), api.load_pipeline(REPO / "pipelines" / "planet.json")
    assert old.nodes["align"].type is new.nodes["align"].type is registry()["align"]
    assert new.nodes["align"].type.cache_name == "align-aps"  # results cached before the rename stay valid


def test_shipped_schema_is_current():
    shipped = json.loads((REPO / "pipelines" / "schema.json").read_text())
    builtin = [name for name, t in registry().items() if t.func.__module__.startswith("luckystack.nodes.")]
    assert shipped == json_schema(builtin, title="luckystack pipeline"), "run: luckystack schema -o pipelines/schema.json"


def test_ci_runs_the_readme_commands():
    readme = (REPO / "README.md").read_text().split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.strip() for line in readme.strip().splitlines()]
    assert len(commands) == 2
    ci = (REPO / ".ci" / "run").read_text()
    for command in commands:
        assert command in ci
