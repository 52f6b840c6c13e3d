"""A corpus of bad pipelines and --set values, generated from the shipped pipelines and the node types'
own params, through the real command line: each is exit 2 and one line naming the problem, before any
work (nothing in the cache, nothing written).

Every case runs through ``luckystack.cli.main`` in this process (the code the console script calls);
a sample of them also as real ``luckystack`` processes.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import luckystack.nodes  # noqa: F401  (registers the node types)
from luckystack.cli import main
from luckystack.graph.node import registry
from luckystack.io.ser_format import SerHeader, write_ser

REPO = Path(__file__).resolve().parents[1]
PLANET = json.loads((REPO / "pipelines" / "planet.json").read_text())


def _bounds(info) -> tuple[float | None, float | None, bool]:
    """(lowest allowed, highest allowed, whole numbers only) of a numeric params field, or Nones."""
    lo = hi = None
    for m in info.metadata:
        lo = getattr(m, "ge", None) if getattr(m, "ge", None) is not None else (
            getattr(m, "gt", None) if getattr(m, "gt", None) is not None else lo)
        hi = getattr(m, "le", None) if getattr(m, "le", None) is not None else (
            getattr(m, "lt", None) if getattr(m, "lt", None) is not None else hi)
    return lo, hi, int in typing.get_args(info.annotation) or info.annotation is int


def _param_cases() -> list[tuple[str, object]]:
    """(node.param, bad value) for every param of every node in planet.json."""
    cases: list[tuple[str, object]] = []
    for nid, entry in PLANET["nodes"].items():
        params = registry()[entry["type"]].params
        for name, info in params.model_fields.items():
            ann = info.annotation
            args = typing.get_args(ann)
            nullable = type(None) in args
            target = f"{nid}.{name}"
            if ann is bool or bool in args:
                cases += [(target, 2), (target, 0.5), (target, "maybe"), (target, [True])]
                continue
            lo, hi, whole = _bounds(info)
            if lo is not None or hi is not None or ann in (int, float):
                if lo is not None:
                    cases.append((target, lo - 1))
                if hi is not None:
                    cases.append((target, hi + 1))
                cases += [(target, math.nan), (target, True), (target, "abc")]
                others = [math.inf, -math.inf, [1, 2], {"a": 1}] + ([1e300, 2.5] if whole else []) + \
                    ([] if nullable else [None])
                cases.append((target, others[len(cases) % len(others)]))  # one of the rarer kinds, in turn
            elif typing.get_origin(ann) is typing.Literal or any(typing.get_origin(a) is typing.Literal
                                                                   for a in args):
                cases += [(target, "nonsense"), (target, 999), (target, False)]  # 999: above every bound here
            else:  # lists and tuples of numbers
                cases += [(target, "abc"), (target, [True]), (target, [math.nan]), (target, [-5]),
                          (target, [10**9]), (target, {"x": 1})]
    return cases


PARAM_CASES = _param_cases()
# The issue's own examples among them, and a few more --set spellings.
EXTRA_SETS = [("align.ap_size", 1), ("align.ap_size", 0), ("align.ap_size", -8), ("stack.percent", True),
              ("stack.percent", []), ("stack.percent", [10, 0]), ("stack.frames", [0]), ("stack.drizzle", True),
              ("stack.drizzle", 4), ("reader.roi", [0, 0, 10]), ("align.manual", [[1, 2]]),
              ("stack.percent", "twenty"), ("post.formats", []), ("post.wavelet_amounts", [1.0] * 20)]


def _wiring_cases() -> list[tuple[str, dict]]:
    """Every required or optional input of planet.json wired to each node whose output is of another kind."""
    cases = []
    nodes = PLANET["nodes"]
    for nid, entry in nodes.items():
        ports = registry()[entry["type"]].inputs
        for port, spec in ports.items():
            for other, oentry in nodes.items():
                kinds = registry()[oentry["type"]].output_kinds
                if other == nid or spec.kind in kinds.values():
                    continue
                raw = copy.deepcopy(PLANET)
                raw["nodes"][nid].setdefault("inputs", {})[port] = other
                cases.append((f"{nid}.{port}<-{other}", raw))
    return cases


def _structure_cases() -> dict[str, object]:
    def mutate(fn):
        raw = copy.deepcopy(PLANET)
        fn(raw)
        return raw

    return {
        "no nodes": mutate(lambda r: r.update(nodes={})),
        "nodes a list": mutate(lambda r: r.update(nodes=[1, 2])),
        "node entry a string": mutate(lambda r: r["nodes"].update(stack="stack")),
        "node without type": mutate(lambda r: r["nodes"]["merge"].pop("type")),
        "unknown type": mutate(lambda r: r["nodes"]["merge"].update(type="merj")),
        "params a list": mutate(lambda r: r["nodes"]["stack"].update(params=[25])),
        "inputs a list": mutate(lambda r: r["nodes"]["merge"].update(inputs=["stack"])),
        "input a number": mutate(lambda r: r["nodes"]["merge"].update(inputs={"stacks": 5})),
        "unknown node in inputs": mutate(lambda r: r["nodes"]["merge"].update(inputs={"stacks": "stak"})),
        "unknown output port": mutate(lambda r: r["nodes"]["merge"].update(inputs={"stacks": "stack.out"})),
        "unknown input port": mutate(lambda r: r["nodes"]["merge"]["inputs"].update(extra="stack")),
        "required input missing": mutate(lambda r: r["nodes"]["stack"]["inputs"].pop("aps")),
        "cycle": mutate(lambda r: r["nodes"]["reader"].update(type="calibrate", inputs={"frames": "calibrate"})),
        "self loop": mutate(lambda r: r["nodes"]["calibrate"].update(inputs={"frames": "calibrate"})),
        "bad node id": mutate(lambda r: r["nodes"].update({"a.b": {"type": "merge", "inputs": {"stacks": "stack"}}})),
        "no name": mutate(lambda r: r.pop("name")),
        "empty name": mutate(lambda r: r.update(name="")),
        "name a number": mutate(lambda r: r.update(name=5)),
        "unknown top key": mutate(lambda r: r.update(nodez={})),
        "top level a list": [PLANET],
        "top level null": None,
        "nested too deeply": "[" * 100_000 + "]" * 100_000,
        "unknown param": mutate(lambda r: r["nodes"]["stack"]["params"].update(percnt=5)),
        "sweep of a missing node": mutate(lambda r: r.update(sweep={"params": {"stak.percent": [5]}})),
        "sweep value out of range": mutate(lambda r: r.update(sweep={"params": {"stack.percent": [5, 500]}})),
        "sweep zip of unequal lists": mutate(lambda r: r.update(sweep={"mode": "zip", "params": {
            "stack.percent": [5, 10], "stack.weight_power": [1]}})),
    }


BAD_SETS = ["reference.path=\"\"", "reference.path=true", "stack", "=5", ".percent=5", "stack.=5", "stack..percent=5",
            "nonode.percent=5", "stack.percnt=5",
            "stack.percent.deeper=5", "stack.percent=[", "stack.percent=NaN", "stack.percent=-Infinity",
            "stack.percent=1e999", "reader.first=1e300", "align.ap_size=true", "align.ap_size=[16,\"a\"]",
            "stabilize.crop=[0,0,0,0]", "stack.selection=null", "stack.frames=1.5", "post.preview=1"]


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "small.ser"
    write_ser(path, (bytes_frame(i) for i in range(4)), SerHeader(64, 48))
    return path


def bytes_frame(i: int):
    import numpy as np
    return np.full((48, 64), 10 * i, np.uint8)


def _assert_one_line_exit_2(code: int, err: str, tmp: Path, expected: str = "") -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "internal error" not in err and "Traceback" not in err and "Input should" not in err, err
    assert expected in lines[0], (expected, err)
    assert not (tmp / "out").exists()
    assert not [p for p in (tmp / "cache").glob("*") if len(p.name) == 64]


def _run(tmp: Path, pipeline: Path, recording: Path, *sets: str) -> list[str]:
    argv = ["run", str(pipeline), "-i", str(recording), "--cache", str(tmp / "cache"), "--out", str(tmp / "out"),
            "--jobs", "1"]
    for s in sets:
        argv += ["--set", s]
    return argv


@pytest.mark.parametrize("target, value", PARAM_CASES + EXTRA_SETS,
                         ids=[f"{t}={json.dumps(v)}" for t, v in PARAM_CASES + EXTRA_SETS])
def test_bad_param_value_is_one_line_exit_2(target, value, recording, tmp_path, capsys):
    code = main(_run(tmp_path, REPO / "pipelines" / "planet.json", recording, f"{target}={json.dumps(value)}"))
    node, _, param = target.partition(".")
    _assert_one_line_exit_2(code, capsys.readouterr().err, tmp_path, f"node '{node}': params.{param}")


@pytest.mark.parametrize("case, raw", _wiring_cases(), ids=[c for c, _ in _wiring_cases()])
def test_wrong_wiring_is_one_line_exit_2(case, raw, recording, tmp_path, capsys):
    path = tmp_path / "pipe.json"
    path.write_text(json.dumps(raw))
    node, _, rest = case.partition(".")
    port, _, src = rest.partition("<-")
    code = main(_run(tmp_path, path, recording))
    _assert_one_line_exit_2(code, capsys.readouterr().err, tmp_path,
                            f"node '{node}': input '{port}' expects ")


@pytest.mark.parametrize("case", sorted(_structure_cases()))
def test_bad_structure_is_one_line_exit_2(case, recording, tmp_path, capsys):
    path = tmp_path / "pipe.json"
    raw = _structure_cases()[case]
    path.write_text(raw if isinstance(raw, str) and raw.startswith("[") else json.dumps(raw))
    _assert_one_line_exit_2(main(_run(tmp_path, path, recording)), capsys.readouterr().err, tmp_path)


@pytest.mark.parametrize("content", [b"\xff\xfe{}", b"", b"{", b"\x00" * 10, b'{"name": "x", "nodes": {"a": {"type": '
                                     b'"merge"}}}', "{\"name\": \"\u00e9\", \"nodes\": []}".encode("latin-1")])
def test_bad_file_content_is_one_line_exit_2(content, recording, tmp_path, capsys):
    path = tmp_path / "pipe.json"
    path.write_bytes(content)
    _assert_one_line_exit_2(main(_run(tmp_path, path, recording)), capsys.readouterr().err, tmp_path)


def test_a_byte_order_mark_is_fine(recording, tmp_path):
    from luckystack.graph.validate import load_pipeline
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + (REPO / "pipelines" / "planet.json").read_bytes())
    assert load_pipeline(path).name == "planet"


@pytest.mark.parametrize("item", BAD_SETS)
def test_bad_set_is_one_line_exit_2(item, recording, tmp_path, capsys):
    code = main(_run(tmp_path, REPO / "pipelines" / "planet.json", recording, item))
    _assert_one_line_exit_2(code, capsys.readouterr().err, tmp_path)


def test_ap_larger_than_the_frame_fails_before_any_work(recording, tmp_path, capsys):
    code = main(_run(tmp_path, REPO / "pipelines" / "planet.json", recording, "align.ap_size=[32,60]"))
    _assert_one_line_exit_2(code, capsys.readouterr().err, tmp_path,
                            "node 'align': params.ap_size: an AP of 60 px does not fit in the 64×48 frame; "
                            "allowed: a whole number from 16 to 48")


def test_numbers_written_as_text_still_work(recording, tmp_path):
    from luckystack.graph.validate import load_pipeline
    p = load_pipeline(REPO / "pipelines" / "planet.json",
                      ["stack.percent=\"25\"", "stack.drizzle=\"1.5\"", "reader.first=\"2\"", "stack.frames=null"])
    assert p.nodes["stack"].params.percent == [25.0] and p.nodes["stack"].params.drizzle == 1.5
    assert p.nodes["reader"].params.first == 2


def test_a_sample_through_real_processes(recording, tmp_path):
    """The console script itself, several at once: exit 2 and one line each."""
    samples = [("align.ap_size", 1), ("align.ap_size", -8), ("stack.percent", True), ("stack.weight_power", math.nan)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = []
    for k, (target, value) in enumerate(samples):
        tmp = tmp_path / str(k)
        argv = _run(tmp, REPO / "pipelines" / "planet.json", recording, f"{target}={json.dumps(value)}")
        procs.append((tmp, subprocess.Popen([sys.executable, "-m", "luckystack", *argv], stderr=subprocess.PIPE,
                                            stdout=subprocess.PIPE, text=True, env=env)))
    wiring = tmp_path / "wired.json"
    case, raw = next(c for c in _wiring_cases() if c[0] == "stack.aps<-analyse")
    wiring.write_text(json.dumps(raw))
    procs.append((tmp_path / "w", subprocess.Popen(
        [sys.executable, "-m", "luckystack", *_run(tmp_path / "w", wiring, recording)], stderr=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True, env=env)))
    for tmp, proc in procs:
        _, err = proc.communicate(timeout=120)
        _assert_one_line_exit_2(proc.returncode, err, tmp)
    assert "node 'stack': input 'aps' expects aps from an align node, got 'analyse' (analyse)" in err


@pytest.mark.parametrize("sets, line", [
    (["reader.first=9"], "node 'reader': params.first: frame 9 is beyond the recording's 4 frames; allowed: 0 to 3"),
    (["reader.first=2", "reader.last=1"], "node 'reader': params.last: frame 1 comes before first frame 2; "
                                          "allowed: 2 or later, or null"),
    (["reader.drop=[0,1,2,3]"], "node 'reader': params.drop: leaves none of frames 0 to 3"),
    (["reader.roi=[60,0,8,8]"], "node 'reader': params.roi: 60,0 8×8 does not fit in the 64×48 frame; "
                                "allowed: x + width up to 64, y + height up to 48"),
])
def test_a_selection_the_recording_cannot_give_fails_before_any_work(sets, line, recording, tmp_path, capsys):
    code = main(_run(tmp_path, REPO / "pipelines" / "planet.json", recording, *sets))
    _assert_one_line_exit_2(code, capsys.readouterr().err, tmp_path, line + " (input small.ser)")
