"""The pipeline loader under random pipelines and --set values: a valid pipeline or one line per problem,
never an internal error; and whatever it accepts holds only finite numbers, never true/false for one."""

from __future__ import annotations

import json
import math
import tempfile
import typing
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import luckystack.nodes  # noqa: F401  (registers the node types)
from luckystack.graph.node import registry
from luckystack.graph.spec import PipelineError
from luckystack.graph.validate import load_pipeline

REPO = Path(__file__).resolve().parents[1]
PLANET = json.loads((REPO / "pipelines" / "planet.json").read_text())
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TYPES = sorted(registry())
IDS = sorted(PLANET["nodes"]) + ["x", "a-b", "a.b", ""]
PARAMS = sorted({name for t in TYPES for name in registry()[t].params.model_fields}) + ["bogus"]
PORTS = sorted({p for t in TYPES for p in registry()[t].inputs}) + ["bogus"]

scalars = (st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.sampled_from([0, 1, 16, 25, 64, 100])
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6) | st.sampled_from(["25", "1.5",
                                                                                                      "true", "NaN"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=4), inner, max_size=3), max_leaves=8)
refs = st.sampled_from(IDS) | st.builds(lambda a, b: f"{a}.{b}", st.sampled_from(IDS),
                                        st.sampled_from(["frames", "shifts", "quality", "aps", "stacks", "x"]))
entries = st.fixed_dictionaries({"type": st.sampled_from(TYPES) | st.text(max_size=6)}, optional={
    "params": st.dictionaries(st.sampled_from(PARAMS), values, max_size=4) | values,
    "inputs": st.dictionaries(st.sampled_from(PORTS), refs, max_size=4) | values,
    "other": values})
pipelines = st.fixed_dictionaries({"nodes": st.dictionaries(st.sampled_from(IDS), entries, max_size=6) | values},
                                  optional={"name": st.text(max_size=5) | values, "description": values,
                                            "sweep": values, "extra": values})


def _planet_with(edits: dict[str, dict]) -> dict:
    raw = json.loads(json.dumps(PLANET))
    for nid, params in edits.items():
        raw["nodes"][nid].setdefault("params", {}).update(params)
    return raw


planet_edits = st.dictionaries(st.sampled_from(sorted(PLANET["nodes"])),
                               st.dictionaries(st.sampled_from(PARAMS), values, max_size=2), max_size=2)
set_items = st.lists(st.builds(lambda t, p, v: f"{t}.{p}={v}", st.sampled_from(IDS), st.sampled_from(PARAMS),
                               values.map(lambda v: json.dumps(v)) | st.text(max_size=6)) | st.text(max_size=12),
                     max_size=3)


def _load(raw: object, sets: list[str]):
    folder = Path(tempfile.mkdtemp())
    path = folder / "pipe.json"
    path.write_text(json.dumps(raw))
    try:
        return load_pipeline(path, sets)
    except PipelineError as err:
        assert err.lines and all(line and "\n" not in line for line in err.lines), err.lines
        assert not any("Input should" in line or "Value error" in line for line in err.lines), err.lines
        return None


def _numbers_are_honest(value: object, annotation: object) -> None:
    if isinstance(value, float):
        assert math.isfinite(value)
    if isinstance(value, bool):
        assert "bool" in str(annotation), (value, annotation)
    if isinstance(value, (list, tuple)):
        for v in value:
            _numbers_are_honest(v, annotation)


def _check(p) -> None:
    if p is None:
        return
    assert p.nodes
    for node in p.nodes.values():
        for name, info in type(node.params).model_fields.items():
            _numbers_are_honest(getattr(node.params, name), info.annotation)
        for port, (src, src_port) in node.inputs.items():
            kind = node.type.inputs[port].kind
            assert not kind or p.nodes[src].type.output_kinds.get(src_port) == kind


@SETTINGS
@given(raw=pipelines, sets=set_items)
def test_random_pipelines_load_or_give_one_line_per_problem(raw, sets):
    _check(_load(raw, sets))


@SETTINGS
@given(edits=planet_edits, sets=set_items)
def test_random_params_and_sets_on_the_planet_pipeline(edits, sets):
    _check(_load(_planet_with(edits), sets))


def test_the_generators_reach_valid_pipelines_too():
    """Not only errors: the strategies above produce loadable pipelines (the property is not vacuous)."""
    assert _load(PLANET, ["stack.percent=\"25\""]) is not None
    assert _load(_planet_with({"stack": {"percent": 25, "drizzle": "2"}}), []) is not None
    assert typing.get_origin(typing.Literal["a"]) is typing.Literal
