"""The ``after_sweep`` hook: called once after a run of two runs or more (sweep and/or batch), never for one."""

from __future__ import annotations

from pathlib import Path

from luckystack.graph import api
from luckystack.graph.cli import main
from luckystack.graph.progress import Reporter
from tests.graph.conftest import PIPELINE, make_recording


def test_cli_calls_after_sweep_once_with_every_run(tmp_path, pipeline_file, recording, capsys):
    calls = []

    def hook(runs, out_root):
        calls.append(([(r.label, r.input.name, r.record.nodes["stack"].status) for r in runs], out_root))
        print("HOOK-RAN")

    base = ["run", str(pipeline_file), "-i", str(recording), "--cache", str(tmp_path / "c"), "--jobs", "1",
            "--out", str(tmp_path / "o")]
    assert main([*base, "--sweep", "stack.percent=5,10,25"], after_sweep=hook) == 0
    assert calls == [([("percent-5", "jupiter.npy", "ran"), ("percent-10", "jupiter.npy", "ran"),
                       ("percent-25", "jupiter.npy", "ran")], tmp_path / "o")]
    out = capsys.readouterr().out
    assert out.rstrip().endswith("HOOK-RAN")  # after the run summaries
    assert main(base, after_sweep=hook) == 0  # a single run: no comparison
    assert len(calls) == 1


def test_api_calls_after_sweep_for_a_batch(tmp_path):
    recs = [make_recording(tmp_path / "a.npy", seed=1), make_recording(tmp_path / "b.npy", seed=2)]
    seen = []
    runs = api.run(api.pipeline_from_dict(PIPELINE), recs, cache=tmp_path / "c", out=tmp_path / "o", jobs=1,
                   reporter=Reporter(), after_sweep=lambda runs, out: seen.append((list(runs), out)))
    assert len(seen) == 1 and seen[0][1] == Path(tmp_path / "o")
    assert [r.input for r in seen[0][0]] == recs and seen[0][0] == runs
