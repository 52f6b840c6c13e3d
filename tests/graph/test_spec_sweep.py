"""JSON Schema of pipeline files, and sweeps (expansion, dedup by key, output folders, explain)."""

from __future__ import annotations

import json

from luckystack.graph import api
from luckystack.graph.cli import main
from luckystack.graph.node import registry
from luckystack.graph.progress import Reporter
from luckystack.graph.spec import json_schema
from luckystack.graph.sweep import variants
from tests.graph.conftest import PIPELINE


def _type_name(variant: dict) -> str:
    """A node variant's type: its constant, or the first of the names it accepts (a renamed type's)."""
    accepts = variant["properties"]["type"]
    return accepts["const"] if "const" in accepts else accepts["enum"][0]


def test_schema_covers_every_node_type(capsys):
    schema = json_schema()
    one_of = schema["properties"]["nodes"]["additionalProperties"]["oneOf"]
    names = [_type_name(v) for v in one_of]
    assert names == sorted(registry())
    stack = next(v for v in one_of if _type_name(v) == "t-stack")
    params = schema["$defs"][stack["properties"]["params"]["$ref"].split("/")[-1]]
    assert params["properties"]["percent"]["maximum"] == 100 and params["additionalProperties"] is False
    assert stack["properties"]["inputs"]["required"] == ["aps", "frames", "quality"]
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(schema))


def _sweep_pipe():
    raw = json.loads(json.dumps(PIPELINE))
    raw["sweep"] = {"mode": "product", "params": {"stack.percent": [5, 10, 25], "aps.size": [2, 4]}}
    return api.pipeline_from_dict(raw)


def test_sweep_runs_shared_nodes_once(tmp_path, recording):
    p = _sweep_pipe()
    assert [v.label for v in variants(p)][:2] == ["percent-5_size-2", "percent-5_size-4"]
    plan = api.explain_sweep(p, [recording], tmp_path / "c")
    assert plan.needed == {"read": 1, "aps": 2, "score": 1, "stack": 6}
    assert plan.alone == {"read": 6, "aps": 6, "score": 6, "stack": 6}
    runs = api.run(p, [recording], cache=tmp_path / "c", out=tmp_path / "o", jobs=1, reporter=Reporter())
    assert api.sweep_executions(runs) == {"read": 1, "aps": 2, "score": 1, "stack": 6}
    assert (tmp_path / "o/jupiter/percent-25_size-4/jupiter_stack.npy").is_file()
    assert len({r.record.nodes["stack"].key for r in runs}) == 6
    zipped = variants(p, mode="zip", sweep={"stack.percent": [5, 10], "aps.size": [2, 4]})
    assert [v.overrides for v in zipped] == [{"stack.percent": 5, "aps.size": 2}, {"stack.percent": 10, "aps.size": 4}]


def test_sweep_cli_and_bad_sweep(tmp_path, pipeline_file, recording, capsys):
    base = [str(pipeline_file), "-i", str(recording), "--cache", str(tmp_path / "c")]
    assert main(["explain", *base, "--sweep", "stack.percent=5,10"]) == 0
    assert "stack  " in capsys.readouterr().out
    assert main(["run", *base, "--sweep", "stack.percent=5,10", "--out", str(tmp_path / "o"), "--jobs", "1"]) == 0
    assert "node executions over all runs: read 1, aps 1, score 1, stack 2" in capsys.readouterr().out
    assert main(["explain", *base, "--sweep", "stack.percent=5,500"]) == 2
    assert "params.percent: is too large (got 500); allowed: a number above 0 up to 100 (sweep variant percent-500)" \
        in capsys.readouterr().err
