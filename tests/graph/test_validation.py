"""Load-time validation in the engine: typed ports, strict params (true/false is not a number, no NaN),
plain-words errors with the allowed range, empty pipelines, and params checked against the input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from pydantic import Field

from luckystack.graph import api
from luckystack.graph.node import Params, Port, Result, node_type
from luckystack.graph.spec import PipelineError, describe
from luckystack.graph.validate import pipeline_from_dict


class KindParams(Params):
    size: int = Field(8, ge=4, le=64, description="a bounded whole number")
    level: float = Field(0.5, gt=0, le=1, description="a bounded number")
    sizes: list[int] | None = Field(None, description="optional list")
    switch: bool = Field(False, description="a flag")
    step: Literal[1, 1.5, 2] = Field(1, description="numeric choices")


def _check_size(params: KindParams, input_file: Path) -> None:
    side = min(np.load(input_file, mmap_mode="r").shape[1:])
    if params.size > side:
        raise ValueError(f"params.size: {params.size} is larger than the frame; allowed: 4 to {side}")


@node_type("t-kind-src", params=KindParams, outputs={"frames": "t-frames", "extra": "t-extra"}, version="1",
           reads_input=True, check_input=_check_size)
def _src(ctx) -> dict[str, Result]:
    return {"frames": Result(meta={"n": 1}), "extra": Result()}


@node_type("t-kind-plain", params=KindParams, outputs=("out",), version="1")
def _plain(ctx) -> Result:
    return Result()


@node_type("t-kind-sink", params=KindParams, outputs={"done": "t-done"}, version="1",
           inputs={"frames": Port(kind="t-frames"), "any": Port(required=False)})
def _sink(ctx) -> Result:
    return Result()


def _pipe(**inputs: str) -> dict:
    return {"name": "kinds", "nodes": {"src": {"type": "t-kind-src"}, "plain": {"type": "t-kind-plain"},
                                       "sink": {"type": "t-kind-sink", "inputs": inputs}}}


def _errors(raw: dict) -> list[str]:
    with pytest.raises(PipelineError) as err:
        pipeline_from_dict(raw, "p.json")
    return err.value.lines


def test_ports_of_the_declared_kind_connect():
    p = pipeline_from_dict(_pipe(frames="src.frames", any="src.extra"))
    assert p.nodes["sink"].inputs == {"frames": ("src", "frames"), "any": ("src", "extra")}


def test_an_output_of_another_kind_is_a_pipeline_error():
    assert _errors(_pipe(frames="src.extra")) == [
        "p.json: node 'sink': input 'frames' expects t-frames from a t-kind-src node, got 'src' (t-kind-src), "
        "which gives t-extra"]
    [line] = _errors(_pipe(frames="plain"))
    assert "got 'plain' (t-kind-plain), which gives output 'out' of no declared kind" in line


def test_an_empty_pipeline_is_an_error():
    assert _errors({"name": "x", "nodes": {}}) == ["p.json: the pipeline has no nodes; 'nodes' must name at least one"]


@pytest.mark.parametrize("params, line", [
    ({"size": True}, "params.size: is true/false, not a number (got true); allowed: a whole number from 4 to 64"),
    ({"level": float("nan")}, "params.level: must be a finite number (not NaN or infinity) (got NaN); "
                              "allowed: a number above 0 up to 1"),
    ({"level": 0}, "params.level: is too small (got 0); allowed: a number above 0 up to 1"),
    ({"size": 3}, "params.size: is too small (got 3); allowed: a whole number from 4 to 64"),
    ({"size": 2.5}, "params.size: must be a whole number (got 2.5); allowed: a whole number from 4 to 64"),
    ({"sizes": [4, False]}, "params.sizes: is true/false, not a number (got [4, false]); allowed: a list of "
                            "whole numbers or null"),
    ({"switch": 1}, "params.switch: is a number, not true/false (got 1); allowed: true or false"),
    ({"step": True}, "params.step: is true/false, not a number (got true); allowed: one of 1, 1.5, 2"),
    ({"step": "3"}, "params.step: is not one of the allowed values (got 3); allowed: one of 1, 1.5, 2"),
])
def test_params_errors_say_what_is_allowed(params, line):
    raw = _pipe(frames="src.frames")
    raw["nodes"]["plain"]["params"] = params
    assert _errors(raw) == [f"p.json: node 'plain': {line}"]


def test_numbers_written_as_text_convert():
    raw = _pipe(frames="src.frames")
    raw["nodes"]["plain"]["params"] = {"size": "16", "level": "0.25", "step": "1.5", "switch": "true"}
    params = pipeline_from_dict(raw).nodes["plain"].params
    assert (params.size, params.level, params.step, params.switch) == (16, 0.25, 1.5, True)


def test_describe_reads_types_and_bounds():
    fields = KindParams.model_fields
    assert describe(fields["size"].annotation, fields["size"].metadata) == "a whole number from 4 to 64"
    assert describe(tuple[int, int]) == "a list of 2 whole numbers"
    assert describe(list[Literal["a", "b"]]) == 'a list of values among "a", "b"'


def test_params_the_input_rules_out_fail_before_any_node_runs(tmp_path):
    rec = tmp_path / "rec.npy"
    np.save(rec, np.zeros((2, 6, 10), np.float32))
    raw = _pipe(frames="src.frames")
    raw["nodes"]["src"]["params"] = {"size": 12}
    with pytest.raises(PipelineError) as err:
        api.run(pipeline_from_dict(raw, "p.json"), [rec], cache=tmp_path / "cache", out=tmp_path / "out")
    assert err.value.lines == ["p.json: node 'src': params.size: 12 is larger than the frame; allowed: 4 to 6 "
                               "(input rec.npy)"]
    assert not (tmp_path / "out").exists()
    assert not [p for p in (tmp_path / "cache").glob("*") if len(p.name) == 64]
    raw["nodes"]["src"]["params"] = {"size": 6}
    [run] = api.run(pipeline_from_dict(raw, "p.json"), [rec], cache=tmp_path / "cache", out=tmp_path / "out")
    assert run.record.error is None


def test_set_into_a_params_that_is_not_an_object_is_one_line(tmp_path):
    path = tmp_path / "p.json"
    raw = _pipe(frames="src.frames")
    raw["nodes"]["plain"]["params"] = [1]
    path.write_text(json.dumps(raw))
    with pytest.raises(PipelineError) as err:
        api.load_pipeline(path, ["plain.size=5"])
    assert err.value.lines == [f"{path}: nodes.plain.params: must be an object (got [1])"]
