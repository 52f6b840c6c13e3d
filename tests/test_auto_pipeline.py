"""The auto pipelines: every candidate stack size, the best kept by the no-truth score, explained in
the run's report (table and contact sheet)."""

from __future__ import annotations

import re
from pathlib import Path

import luckystack.nodes  # noqa: F401  (registers the node types)
from luckystack.graph import api
from luckystack.report.build import write_run_report
from luckystack.simulate import simulate, write_recording

REPO = Path(__file__).resolve().parents[1]


def test_planet_auto_exports_the_chosen_stack_and_the_report_says_why(tmp_path):
    ser = write_recording(tmp_path / "saturn.ser", simulate("saturn", 40, 256, 192, seed=2))
    pipeline = api.load_pipeline(REPO / "pipelines" / "planet-auto.json")
    [run] = api.run(pipeline, [ser], cache=tmp_path / "cache", out=tmp_path / "out", jobs=1)
    choice = api.read_result(pipeline, "choose", ser, tmp_path / "cache")["images"].meta["choice"]
    assert [c["label"] for c in choice["candidates"]] == ["P5", "P10", "P25"]
    assert choice["chosen"] == max(choice["candidates"], key=lambda c: c["score"])["label"]
    exported = [Path(p) for p in run.record.exports()]
    assert [p.parent.name for p in exported] == [choice["chosen"]]
    page = write_run_report(run.record, tmp_path / "report").read_text()
    assert "candidates.png" in page and (tmp_path / "report" / "candidates.png").is_file()
    assert "no-truth score" in page and ">chosen<" in page
    # an explicit stack size still wins
    [run] = api.run(api.load_pipeline(REPO / "pipelines" / "planet-auto.json", {"choose.pick": "P25"}), [ser],
                    cache=tmp_path / "cache", out=tmp_path / "out2", jobs=1)
    assert [Path(p).parent.name for p in run.record.exports()] == ["P25"]


def test_several_fourier_powers_are_candidates_scored_by_their_own_noise(tmp_path):
    """stack.spectral_weight auto stacks every size at powers 0, 2 and 4 in one pass; with halves the
    choose node's half score measures each candidate's noise; the report and explain show the powers."""
    ser = write_recording(tmp_path / "jupiter.ser", simulate("jupiter", 40, 256, 192, seed=3))
    sets = {"stack.spectral_weight": "auto", "stack.halves": True, "stack.percent": [10, 25], "choose.score": "half"}
    pipeline = api.load_pipeline(REPO / "pipelines" / "planet-auto.json", sets)
    [run] = api.run(pipeline, [ser], cache=tmp_path / "cache", out=tmp_path / "out", jobs=1)
    choice = api.read_result(pipeline, "choose", ser, tmp_path / "cache")["images"].meta["choice"]
    assert [(c["label"], c["power"]) for c in choice["candidates"]] == [
        ("P10w0", 0.0), ("P10w2", 2.0), ("P10w4", 4.0), ("P25w0", 0.0), ("P25w2", 2.0), ("P25w4", 4.0)]
    assert choice["score"] == "half" and len({round(c["score"], 6) for c in choice["candidates"]}) == 6
    assert choice["chosen"] == max(choice["candidates"], key=lambda c: c["score"])["label"]
    assert [Path(p).parent.name for p in run.record.exports()] == [choice["chosen"]]  # no noise image exported
    page = write_run_report(run.record, tmp_path / "report").read_text()
    assert "Fourier power" in page and "no-truth score (half)" in page
    cuts = re.findall(r"(P\w+): \d+ frames", (tmp_path / "report" / "quality.svg").read_text())
    assert cuts == ["P10", "P25"]  # one cut per size stacked, not one per candidate power nor the chosen alone
    [status] = [s for s in api.explain(pipeline, ser, tmp_path / "cache").values() if s.id == "choose"]
    assert status.chose["pick"].startswith(f'"{choice["chosen"]}" (no-truth score {choice["chosen"]} ')
    # the half score needs the halves: one clear error without them
    sets["stack.halves"] = False
    from luckystack.graph.node import NodeError
    try:
        api.run(api.load_pipeline(REPO / "pipelines" / "planet-auto.json", sets), [ser], cache=tmp_path / "cache",
                out=tmp_path / "out3", jobs=1)
    except NodeError as exc:
        assert "stack.halves" in str(exc)
    else:
        raise AssertionError("the half score ran without half stacks")


def test_auto_ap_size_follows_the_local_shift_field_and_an_explicit_size_wins(tmp_path):
    """A field that varies a lot (poor seeing) gets small APs; a rigid one keeps the object's default size;
    the report and explain say what was chosen and why."""
    pipeline = api.load_pipeline(REPO / "pipelines" / "surface-auto.json", {"stack.percent": [10]})
    chosen = {}
    for name, local_px in (("distorted", 1.5), ("rigid", 0.0)):
        ser = write_recording(tmp_path / f"{name}.ser", simulate("moon", 30, 256, 192, seed=4, local_px=local_px))
        [run] = api.run(pipeline, [ser], cache=tmp_path / "cache", out=tmp_path / "out", jobs=1)
        aps = api.read_result(pipeline, "align", ser, tmp_path / "cache")["aps"]
        chosen[name] = aps.meta["ap_choice"]
        assert aps.meta["ap_sizes"] == [chosen[name]["chosen"]]
    assert chosen["distorted"]["chosen"] <= 32 < chosen["distorted"]["largest"]
    assert chosen["rigid"]["chosen"] == chosen["rigid"]["largest"]
    assert chosen["distorted"]["strain"] > 3 * chosen["rigid"]["strain"]
    page = write_run_report(run.record, tmp_path / "report").read_text()
    assert f"AP size auto: {chosen['rigid']['chosen']} px" in page
    [status] = [s for s in api.explain(pipeline, ser, tmp_path / "cache").values() if s.id == "align"]
    assert status.cached and status.chose["ap_size"].startswith(f"[{chosen['rigid']['chosen']}] (local shift field")
    fixed = api.load_pipeline(REPO / "pipelines" / "surface-auto.json", {"stack.percent": [10], "align.ap_size": 48})
    api.run(fixed, [ser], cache=tmp_path / "cache", out=tmp_path / "out", jobs=1)
    meta = api.read_result(fixed, "align", ser, tmp_path / "cache")["aps"].meta
    assert meta["ap_sizes"] == [48] and "ap_choice" not in meta


def test_a_wrong_ap_size_word_is_one_clear_error_naming_auto():
    from luckystack.graph.spec import PipelineError

    try:
        api.load_pipeline(REPO / "pipelines" / "planet-auto.json", {"align.ap_size": "big"})
    except PipelineError as exc:
        assert 'got "big"' in str(exc) and '"auto"' in str(exc) and "\n" not in str(exc).strip()
    else:
        raise AssertionError("ap_size 'big' was accepted")
