"""Command line: every bad pipeline file is one line on stderr with exit 2; --set; run/explain output."""

from __future__ import annotations

import copy
import json
import subprocess

import pytest

from luckystack.graph.cli import main
from tests.graph.conftest import CLI, PIPELINE, REPO, cli_env


def _write(tmp_path, raw, text=None):
    path = tmp_path / "bad.json"
    path.write_text(text if text is not None else json.dumps(raw))
    return path


def _mutate(fn):
    raw = copy.deepcopy(PIPELINE)
    fn(raw)
    return raw


BAD = {
    "invalid json": (None, '{"name": "x",\n "nodes": {,}}', "invalid JSON at line 2 column 12"),
    "unknown top key": (_mutate(lambda r: r.update(nodez={})), None, "unknown key 'nodez' (did you mean 'nodes'?)"),
    "unknown node type": (_mutate(lambda r: r["nodes"]["aps"].update(type="t-blokcs")), None,
                          "node 'aps': unknown node type 't-blokcs' (did you mean 't-blocks'?)"),
    "unknown param": (_mutate(lambda r: r["nodes"]["stack"]["params"].update(percnt=5)), None,
                      "node 'stack': params.percnt: unknown parameter 'percnt' (did you mean 'percent'?)"),
    "wrong type": (_mutate(lambda r: r["nodes"]["aps"]["params"].update(size="big")), None,
                   "node 'aps': params.size: must be a whole number (got \"big\"); allowed: a whole number from 1 to 64"),
    "out of range": (_mutate(lambda r: r["nodes"]["stack"]["params"].update(percent=150)), None,
                     "node 'stack': params.percent: is too large (got 150); allowed: a number above 0 up to 100"),
    "missing node": (_mutate(lambda r: r["nodes"]["stack"]["inputs"].update(aps="apz")), None,
                     "node 'stack': inputs.aps: no node 'apz' (did you mean 'aps'?)"),
    "missing port": (_mutate(lambda r: r["nodes"]["stack"]["inputs"].update(quality="score.qualty")), None,
                     "node 'stack': inputs.quality: node 'score' has no output port 'qualty' (did you mean 'quality'?)"),
    "unknown input port": (_mutate(lambda r: r["nodes"]["aps"]["inputs"].update(framez="read")), None,
                           "node 'aps': inputs.framez: 't-blocks' has no input port 'framez'"),
    "unconnected input": (_mutate(lambda r: r["nodes"]["stack"]["inputs"].pop("aps")), None,
                          "node 'stack': required input 'aps' is not connected"),
    "cycle": (_mutate(lambda r: r["nodes"].update(
        a={"type": "t-slow", "inputs": {"frames": "b"}}, b={"type": "t-slow", "inputs": {"frames": "a"}})),
        None, "cycle between nodes: a → b → a"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_pipeline_file_is_one_line_exit_2(case, tmp_path, capsys):
    raw, text, expected = BAD[case]
    path = _write(tmp_path, raw, text)
    assert main(["explain", str(path), "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {path}: ") and expected in err, err


def test_bad_set_override(pipeline_file, tmp_path, capsys):
    args = ["explain", str(pipeline_file), "--cache", str(tmp_path / "c")]
    assert main(args + ["--set", "stack.percent=0"]) == 2
    assert "node 'stack': params.percent: is too small (got 0); allowed: a number above 0 up to 100" in capsys.readouterr().err
    assert main(args + ["--set", "stak.percent=5"]) == 2
    assert "override 'stak.percent': no node 'stak' (did you mean 'stack'?)" in capsys.readouterr().err
    assert main(args + ["--set", "nonsense"]) == 2
    assert "expected NODE.PARAM=VALUE" in capsys.readouterr().err


def test_set_overrides_parse_json_and_nested(pipeline_file, recording, tmp_path, capsys):
    base = ["explain", str(pipeline_file), "-i", str(recording), "--cache", str(tmp_path / "c"), "--json"]
    assert main(["run", str(pipeline_file), "-i", str(recording), "--cache", str(tmp_path / "c"),
                 "--out", str(tmp_path / "o"), "--jobs", "1"]) == 0
    capsys.readouterr()
    assert main(base + ["--set", "stack.percent=25", "--set", "stack.weights.r=0.5"]) == 0
    nodes = {n["node"]: n for n in json.loads(capsys.readouterr().out)["nodes"]}
    assert nodes["stack"]["reasons"] == ["param percent changed 50.0→25.0", 'param weights.r added (0.5)']
    assert [n for n in nodes if nodes[n]["status"] == "run"] == ["stack"]


def test_run_subprocess_summary_and_node_error(pipeline_file, recording, tmp_path):
    env = cli_env()
    cmd = CLI + ["run", str(pipeline_file), "-i", str(recording), "--cache", str(tmp_path / "c"),
                 "--out", str(tmp_path / "o"), "--jobs", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "stack  t-stack   ran" in r.stdout and "[stack] ran in" in r.stderr
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert "stack  t-stack   cached" in r.stdout
    bad = json.loads(pipeline_file.read_text())
    bad["nodes"]["fail"] = {"type": "t-fail", "inputs": {"frames": "read"}}
    pipeline_file.write_text(json.dumps(bad))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1] == \
        "error: fail: the frames are too dark to measure" and "Traceback" not in r.stderr


def test_missing_input_file_is_usage_error(pipeline_file, tmp_path, capsys):
    assert main(["run", str(pipeline_file), "-i", str(tmp_path / "nope.npy"), "--cache", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: input {tmp_path / 'nope.npy'}: not found\n"
    assert main(["run", str(pipeline_file), "--cache", str(tmp_path)]) == 2
    assert "reads the input file; give one with --input FILE" in capsys.readouterr().err


def test_help_texts_have_examples(capsys):
    for cmd in ("run", "explain", "schema", "cache"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        out = capsys.readouterr().out
        assert "example" in out and "--cache" in out and "default" in out


def test_the_application_names_itself_and_gives_the_examples():
    from luckystack.graph.cli import Application, build_parser

    app = Application(name="tool", description="Does things.", version="tool 9",
                      examples={"": "example:\n  tool run a.json", "run": "example:\n  tool run a.json -i x.dat"})
    parser = build_parser((), app)
    top = parser.format_help()
    assert top.startswith("usage: tool ") and "Does things." in top and "tool run a.json" in top
    run = parser._subparsers._group_actions[0].choices["run"].format_help()
    assert "tool run a.json -i x.dat" in run and "PIPELINE.json" not in run
    cache = parser._subparsers._group_actions[0].choices["cache"].format_help()
    assert "tool cache ls" in cache  # the engine's own examples, in the application's name



def test_the_chosen_command_skips_options_and_their_values():
    from luckystack.graph.cli import chosen_command

    assert chosen_command(["--cache", "run", "--jobs", "2", "explain", "p.json"]) == "explain"
    assert chosen_command(["--debug", "--cache=c", "run", "p.json"]) == "run"
    assert chosen_command(["--help"]) is None
