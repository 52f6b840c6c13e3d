"""A renamed node type: pipeline files that use its former name still load, and its results cached
under the former name stay cached (``node_type(aliases=..., key_name=...)``)."""

from __future__ import annotations

import pytest

from luckystack.graph import api
from luckystack.graph.node import Params, Port, find, node_type, registry
from luckystack.graph.progress import Reporter
from luckystack.graph.spec import PipelineError, json_schema
from tests.graph.conftest import PIPELINE
from tests.graph.testnodes import BlocksParams, blocks

# t-blocks renamed to t-grid: the same function, its former name kept in the key.
node_type("t-grid", params=BlocksParams, inputs={"frames": Port()}, outputs=("aps",), version="1",
          aliases=("t-blocks-before",), key_name="t-blocks")(blocks)


def _with_aps_type(type_name: str) -> dict:
    nodes = {**PIPELINE["nodes"], "aps": {**PIPELINE["nodes"]["aps"], "type": type_name}}
    return {**PIPELINE, "nodes": nodes}


def test_the_former_name_finds_the_type_and_the_registry_lists_it_once():
    assert find("t-blocks-before") is find("t-grid") is registry()["t-grid"]
    assert "t-blocks-before" not in registry() and find("t-nothing") is None
    p = api.pipeline_from_dict(_with_aps_type("t-blocks-before"))
    assert p.nodes["aps"].type.name == "t-grid"


def test_results_cached_under_the_former_name_stay_cached(tmp_path, recording, cache):
    before = api.pipeline_from_dict(PIPELINE)  # t-blocks: what the type was called when it computed
    [r] = api.run(before, [recording], cache=cache, out=tmp_path / "out", reporter=Reporter())
    assert r.record.ran() == ["read", "aps", "score", "stack"]
    for name in ("t-grid", "t-blocks-before"):
        st = api.explain(api.pipeline_from_dict(_with_aps_type(name)), recording, cache)
        assert all(s.cached for s in st.values()), name
        assert st["aps"].type == "t-grid" and st["aps"].preimage["type"] == "t-blocks"
    after = api.pipeline_from_dict(_with_aps_type("t-grid"))
    [r] = api.run(after, [recording], cache=cache, out=tmp_path / "out", reporter=Reporter())
    assert r.record.ran() == []


def test_a_former_name_taken_by_another_type_is_refused():
    class P(Params):
        pass

    def other(ctx):
        raise AssertionError

    with pytest.raises(ValueError, match="alias 't-blocks-before' already names node type 't-grid'"):
        node_type("t-other", params=P, version="1", aliases=("t-blocks-before",))(other)
    with pytest.raises(ValueError, match="already a former name of node type 't-grid'"):
        node_type("t-blocks-before", params=P, version="1")(other)
    assert "t-other" not in registry() and "t-blocks-before" not in registry()


def test_unknown_types_are_still_errors_and_the_schema_accepts_the_former_name():
    with pytest.raises(PipelineError, match="unknown node type 't-grd'"):
        api.pipeline_from_dict(_with_aps_type("t-grd"))
    [variant] = json_schema(["t-grid"])["properties"]["nodes"]["additionalProperties"]["oneOf"]
    assert variant["properties"]["type"] == {"enum": ["t-grid", "t-blocks-before"]}
