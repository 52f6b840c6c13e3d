"""The stack measures each AP's local shift only in the frames that AP stacks (align ranks the
frames per AP, from the globally stabilized frames): through the real engine and cache, on a simulated
recording. What is measured is asserted from the result's counts, never from timing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import luckystack.nodes  # noqa: F401  (registers the node types)
from luckystack.graph import api
from luckystack.imaging.stacking import rank_frames
from luckystack.simulate import simulate, write_recording

PLANET = Path(__file__).resolve().parents[2] / "pipelines" / "planet.json"


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rec")
    return write_recording(folder / "jupiter.ser", simulate("jupiter", 60, 256, 192, seed=4))


def _run(recording: Path, cache: Path, sets: dict, jobs: int = 1):
    pipeline = api.load_pipeline(PLANET, sets)
    [run] = api.run(pipeline, [recording], cache=cache, out=cache.parent / "out", jobs=jobs)
    stacks = api.read_result(pipeline, "stack", recording, cache)["stacks"]
    return run.record, stacks, pipeline


def _pairs_below(recording: Path, cache: Path, pipeline, lo: int, hi: int) -> int:
    """(frame, AP) pairs whose rank for the AP lies in [lo, hi)."""
    aps = api.read_result(pipeline, "align", recording, cache)["aps"]
    valid = api.read_result(pipeline, "analyse", recording, cache)["quality"].array("valid")
    q = aps.array("quality").astype(np.float64)
    rank = rank_frames(q, valid[:, None] & np.isfinite(q))
    return int(((rank >= lo) & (rank < hi)).sum())


def test_shifts_are_measured_only_in_the_frames_each_ap_stacks(recording, tmp_path):
    record, stacks, pipeline = _run(recording, tmp_path / "cache", {"stack.percent": [10]})
    counts = stacks.meta["shifts"]
    n_valid = int(api.read_result(pipeline, "analyse", recording, tmp_path / "cache")["quality"]
                  .array("valid").sum())
    assert counts["stacked"] == _pairs_below(recording, tmp_path / "cache", pipeline, 0, round(0.1 * n_valid))
    n_ap = stacks.array("origin").shape[0]
    # Each stacked AP and its neighbours (for the outlier check): far fewer than every AP in every frame.
    assert counts["stacked"] <= counts["measured"] < 0.5 * n_ap * n_valid


def test_a_larger_stack_size_measures_only_the_new_band_and_matches_a_run_from_scratch(recording, tmp_path,
                                                                                        monkeypatch):
    import luckystack.nodes.stack

    monkeypatch.setattr(luckystack.nodes.stack, "SUMS_SHARE", 1e9)  # a tiny recording: lift the sums' budget
    cache = tmp_path / "cache"
    _run(recording, cache, {"stack.percent": [10]})
    changed = api.load_pipeline(PLANET, {"stack.percent": [10, 25]})
    status = api.explain(changed, recording, cache)
    assert [n for n, s in status.items() if not s.cached] == ["stack", "merge", "post"]
    assert any("percent" in r for r in status["stack"].reasons) and status["stack"].earlier == 1
    record, built, pipeline = _run(recording, cache, {"stack.percent": [10, 25]})
    assert record.ran() == ["stack", "merge", "post"]
    n_valid = int(api.read_result(pipeline, "analyse", recording, cache)["quality"].array("valid").sum())
    c10, c25 = round(0.1 * n_valid), round(0.25 * n_valid)  # both on the chain's grid
    assert built.meta["shifts"]["stacked"] == _pairs_below(recording, cache, pipeline, c10, c25)
    _, fresh, _ = _run(recording, tmp_path / "fresh" / "cache", {"stack.percent": [10, 25]}, jobs=2)
    assert fresh.meta["shifts"]["stacked"] == _pairs_below(recording, cache, pipeline, 0, c25)
    for name in ("patch_P10", "patch_P25", "background_P25", "coverage_P25"):
        assert np.array_equal(built.array(name), fresh.array(name)), name


def test_an_ap_size_rerun_stacks_what_a_run_from_scratch_does(recording, tmp_path):
    _run(recording, tmp_path / "cache", {"stack.percent": [10]})
    record, rerun, _ = _run(recording, tmp_path / "cache", {"stack.percent": [10], "align.ap_size": 48})
    assert record.ran() == ["align", "stack", "merge", "post"]
    _, fresh, _ = _run(recording, tmp_path / "fresh" / "cache", {"stack.percent": [10], "align.ap_size": 48})
    assert rerun.meta["ap_size"] == 48
    for name in ("patch_P10", "background_P10", "origin"):
        assert np.array_equal(rerun.array(name), fresh.array(name)), name


def test_a_rerun_within_the_ranks_measured_before_measures_no_shift_and_matches_a_run_from_scratch(
        recording, tmp_path, monkeypatch):
    import luckystack.nodes.stack

    monkeypatch.setattr(luckystack.nodes.stack, "SUMS_SHARE", 1e9)  # a tiny recording: lift the sums' budget
    cache = tmp_path / "cache"
    _, first, pipeline = _run(recording, cache, {"stack.percent": [10, 25]})
    n_valid = int(api.read_result(pipeline, "analyse", recording, cache)["quality"].array("valid").sum())
    assert first.meta["local_shifts"] == _pairs_below(recording, cache, pipeline, 0, round(0.25 * n_valid))
    for sizes in ([7], [20, 12]):  # side bands on the states at 5 and 10 %, a chain state at 20 %
        record, built, _ = _run(recording, cache, {"stack.percent": sizes})
        assert record.ran() == ["stack", "merge", "post"]
        assert built.meta["shifts"]["stacked"] == built.meta["shifts"]["measured"] == 0
        assert built.meta["local_shifts"] == first.meta["local_shifts"]
        _, fresh, _ = _run(recording, tmp_path / f"fresh{sizes[0]}" / "cache", {"stack.percent": sizes})
        assert fresh.meta["shifts"]["measured"] > 0
        for name in fresh.arrays:
            if not name.startswith(("sum_", "local_shift")):
                assert np.array_equal(built.array(name), fresh.array(name)), (sizes, name)
    # Beyond them: the new band is measured, and the result then knows the shifts of both.
    _, beyond, _ = _run(recording, cache, {"stack.percent": [40]})
    c25, c40 = round(0.25 * n_valid), round(0.4 * n_valid)
    assert beyond.meta["shifts"]["stacked"] == _pairs_below(recording, cache, pipeline, c25, c40)
    assert beyond.meta["local_shifts"] == _pairs_below(recording, cache, pipeline, 0, c40)
    known = np.isfinite(beyond.array("local_shift")[..., 0])
    _, again, _ = _run(recording, cache, {"stack.percent": [35]})
    assert again.meta["shifts"]["measured"] == 0 and np.array_equal(known, np.isfinite(again.array("local_shift")[..., 0]))


def test_shifts_beyond_their_size_limit_are_not_kept_and_reruns_measure_again(recording, tmp_path, monkeypatch):
    import luckystack.nodes.stack

    monkeypatch.setattr(luckystack.nodes.stack, "SUMS_SHARE", 1e9)
    monkeypatch.setattr(luckystack.nodes.stack, "SHIFTS_MAX_BYTES", 0)  # a recording of many frames and APs
    cache = tmp_path / "cache"
    _, first, _ = _run(recording, cache, {"stack.percent": [10, 25]})
    assert "local_shift" not in first.arrays and "local_shifts" not in first.meta
    _, built, _ = _run(recording, cache, {"stack.percent": [7]})
    assert built.meta["shifts"]["measured"] > 0 and "local_shift" not in built.arrays


@pytest.mark.parametrize("sets", [{"align.ap_size": 32}, {"align.ap_size": 24, "align.match_step": 32},
                                  {"align.ap_size": 32, "stack.drizzle": 2},
                                  {"align.ap_size": 32, "stack.sigma_clip": 2.5}])
def test_ap_groups_measure_each_shift_once_and_store_a_group_as_one_chunk(recording, tmp_path, monkeypatch, sets):
    """Many APs are stacked in groups (one pass over the frames each); their shifts are measured in one
    pass of their own, each (frame, point) once, so the groups stack the bits of one pass (here in one
    process, the groups with a worker), with its counts, and each group's patches are written as one
    chunk of the stored array."""
    import luckystack.nodes.stack

    sets = {"stack.percent": [10, 25], **sets}
    _, whole, _ = _run(recording, tmp_path / "whole" / "cache", sets)
    monkeypatch.setattr(luckystack.nodes.stack, "ONE_PASS_BYTES", 0)
    monkeypatch.setattr(luckystack.nodes.stack, "GROUP_BYTES", 1 << 20 if "stack.drizzle" not in sets else 4 << 20)
    monkeypatch.setattr(luckystack.nodes.stack, "PARALLEL_PATCHES", 0)  # every pass on the worker too
    _, grouped, _ = _run(recording, tmp_path / "grouped" / "cache", sets, jobs=2)
    n_ap = whole.array("origin").shape[0]
    per_group = grouped.arrays["patch_P25"].chunks[0]
    assert 1 < per_group < n_ap
    assert grouped.meta["shifts"] == whole.meta["shifts"]  # each shift measured once, as in one pass
    assert whole.meta["shifts"]["measured"] > 0
    for name in whole.arrays:  # local_shift: NaN where not stacked
        assert np.array_equal(grouped.array(name), whole.array(name), equal_nan=name == "local_shift"), name
