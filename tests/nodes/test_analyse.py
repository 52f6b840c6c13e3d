import numpy as np
import pytest

import luckystack.nodes.analyse  # noqa: F401
import luckystack.nodes.stabilize  # noqa: F401
from luckystack.graph.context import run_node
from luckystack.io.frames import ArrayFrameStream
from luckystack.nodes.frames import memory_frames
from tests.nodes.synthetic_planet import make_recording


@pytest.fixture(scope="module")
def data():
    sim = make_recording(n=36, h=160, w=200, radius=50, field=0.5, seed=4)
    frames = sim.frames.copy()
    frames[7, 80] = 0.0  # a dropped row through the disc
    frames[9] = np.roll(frames[9], 95, axis=1)  # disc cut by the frame edge
    fr = memory_frames(ArrayFrameStream(frames))
    shifts = run_node("stabilize", {}, {"frames": fr})["shifts"]
    return sim, fr, shifts


def test_ranking_follows_the_true_blur_and_bad_frames_are_disabled(data):
    sim, fr, shifts = data
    q = run_node("analyse", {}, {"frames": fr, "shifts": shifts})["quality"]
    valid, score, rank, reason = q.array("valid"), q.array("score"), q.array("rank"), q.array("reason")
    assert not valid[7] and q.meta["reasons"][str(reason[7])].startswith("dropped row")
    assert not valid[9] and q.meta["reasons"][str(reason[9])] == "stabilize: object touches the frame edge"
    assert np.isnan(score[~valid]).all() and (rank[~valid] >= valid.sum()).all()
    good = valid.nonzero()[0]
    assert np.corrcoef(score[good], -sim.blur[good])[0, 1] > 0.95
    assert sorted(rank.tolist()) == list(range(len(rank)))
    assert rank[good[np.argmax(score[good])]] == 0


def test_methods_normalize_and_jobs_give_identical_results(data):
    _, fr, shifts = data
    for method in ("laplacian", "edge"):
        q = run_node("analyse", {"method": method, "scale": 3, "normalize": True}, {"frames": fr, "shifts": shifts})
        assert q["quality"].meta["method"] == method
    a = run_node("analyse", {"detail_maps": True}, {"frames": fr, "shifts": shifts}, jobs=1)["quality"]
    b = run_node("analyse", {"detail_maps": True}, {"frames": fr, "shifts": shifts}, jobs=2)["quality"]
    assert "cell_energy" not in run_node("analyse", {}, {"frames": fr, "shifts": shifts}, jobs=1)["quality"].arrays
    for k in ("score", "rank", "valid", "reason"):
        assert np.array_equal(a.array(k), b.array(k), equal_nan=True)


def test_a_planet_is_scored_on_its_box_with_the_same_ranking_as_on_the_crop(data):
    sim, fr, shifts = data
    q = run_node("analyse", {}, {"frames": fr, "shifts": shifts})["quality"]
    whole = run_node("analyse", {"region": "crop"}, {"frames": fr, "shifts": shifts})["quality"]
    crop, region = shifts.meta["crop"], q.meta["region"]
    assert whole.meta["region"] == crop
    y, x, h, w = shifts.meta["object"]
    pad = 16 + 8  # OBJECT_MARGIN and the default edge margin (2 × scale)
    assert region == [max(crop[0], y - pad), max(crop[1], x - pad),
                      min(crop[0] + crop[2], y + h + pad) - max(crop[0], y - pad),
                      min(crop[1] + crop[3], x + w + pad) - max(crop[1], x - pad)]
    assert region[2] * region[3] < crop[2] * crop[3]
    assert np.array_equal(q.array("valid"), whole.array("valid"))
    good = q.array("valid").nonzero()[0]
    assert np.corrcoef(q.array("score")[good], -sim.blur[good])[0, 1] > 0.95
    assert np.corrcoef(q.array("score")[good], whole.array("score")[good])[0, 1] > 0.99


def test_object_region_stays_inside_the_crop_and_falls_back_to_it():
    from luckystack.nodes.analyse import object_region
    assert object_region([0, 0, 100, 200], [40, 50, 20, 30], 10, 12) == [30, 40, 40, 50]
    assert object_region([0, 0, 100, 200], [5, 180, 50, 30], 10, 12) == [0, 170, 65, 30]
    assert object_region([0, 0, 100, 200], [98, 50, 20, 30], 0, 12) == [0, 0, 100, 200]  # 2 rows left


def test_detail_maps_hold_the_scored_region_binned_and_do_not_depend_on_jobs(data):
    from luckystack.imaging.quality import binned_smooth, detail_energy
    from luckystack.imaging.registration import aligned_box
    from luckystack.nodes.frames import open_frames

    _, fr, shifts = data
    a = run_node("analyse", {"detail_maps": True}, {"frames": fr, "shifts": shifts}, jobs=1)["quality"]
    b = run_node("analyse", {"detail_maps": True}, {"frames": fr, "shifts": shifts}, jobs=2)["quality"]
    assert "cell_energy" not in run_node("analyse", {}, {"frames": fr, "shifts": shifts}, jobs=1)["quality"].arrays
    cells = a.meta["cells"]
    region = cells["region"]
    assert region == a.meta["region"] and cells["bin"] == 2
    energy, bright = a.array("cell_energy"), a.array("cell_brightness")
    rows, cols = -(-(region[2] // 2) // cells["cell"]), -(-(region[3] // 2) // cells["cell"])
    assert energy.shape == bright.shape == (36, rows, cols) and energy.dtype == np.float32
    for k in ("cell_energy", "cell_brightness"):
        assert np.array_equal(a.array(k), b.array(k), equal_nan=True)
    valid = a.array("valid")
    assert np.isnan(energy[~valid]).all() and np.isfinite(energy[valid]).all()
    stream = open_frames(fr, None)
    i = int(np.flatnonzero(valid)[0])
    box = aligned_box((stream.height, stream.width), region, *shifts.array("shift")[i])
    smoothed = binned_smooth(stream.read_mono(i, box), 4.0)
    detail = detail_energy(smoothed)
    np.testing.assert_allclose(energy[i].sum(), detail.sum() / 4, rtol=1e-4)  # per full-resolution px
    np.testing.assert_allclose(bright[i].sum(), smoothed.sum(), rtol=1e-4)
    assert "cells" not in run_node("analyse", {"method": "laplacian"}, {"frames": fr, "shifts": shifts})[
        "quality"].meta
