import numpy as np
import pytest

import luckystack.imaging.localshift as localshift
import luckystack.nodes.align  # noqa: F401
import luckystack.nodes.analyse  # noqa: F401
import luckystack.nodes.reference  # noqa: F401
import luckystack.nodes.stabilize  # noqa: F401
from luckystack.graph.context import run_node
from luckystack.graph.node import NodeError, Result
from luckystack.imaging.quality import cell_sums
from luckystack.nodes.align import CellBoxes, _box_sums, local_shifts, matching_of
from luckystack.io.frames import ArrayFrameStream
from luckystack.nodes.frames import memory_frames, open_frames
from tests.nodes.synthetic_planet import make_recording

N = 40


@pytest.fixture(scope="module")
def data():
    sim = make_recording(n=N, h=200, w=260, radius=70, field=0.8, noise=0.01, seed=8)
    frames = sim.frames.copy()
    frames[3, 60:140, 60:140] = np.random.default_rng(1).random((80, 80))  # a burst of garbage
    clean = memory_frames(ArrayFrameStream(sim.frames))
    fr = memory_frames(ArrayFrameStream(frames))
    # Stabilize and reference see clean frames; align sees the garbage burst in frame 3.
    shifts = run_node("stabilize", {}, {"frames": clean})["shifts"]
    quality = run_node("analyse", {"detail_maps": True}, {"frames": clean, "shifts": shifts})["quality"]
    ref = run_node("reference", {}, {"frames": clean, "shifts": shifts, "quality": quality})["reference"]
    return sim, {"frames": fr, "shifts": shifts, "quality": quality, "reference": ref}


def _local(inputs, aps):
    shifts = inputs["shifts"]
    return local_shifts(open_frames(inputs["frames"], None), shifts.array("shift"),
                        inputs["quality"].array("valid"), matching_of(aps, shifts.meta["crop"]))


GRID = {"ap_size": [24], "match_step": 32}  # small APs, their shifts interpolated from points 32 px apart


@pytest.mark.parametrize("params", [{}, GRID])
def test_ap_shifts_match_the_true_local_displacement(data, params):
    sim, inputs = data
    aps = run_node("align", params, inputs)["aps"]
    centre = aps.array("center")
    a = len(centre)
    assert (10 <= a <= 40 if not params else a > 100) and "shift" not in aps.arrays  # align ranks; the stack measures
    assert aps.array("quality").shape == (N, a) and aps.array("window_size").shape == (a,)
    shift, ok = _local(inputs, aps)
    assert shift.shape == (N, a, 2) and ok.dtype == bool
    y0, x0 = inputs["shifts"].meta["crop"][:2]
    g = inputs["shifts"].array("shift")
    measured = g[:, None, :] + shift
    # The box centre of an even box lies half a pixel before its integer centre.
    py, px = y0 + centre[:, 0] - 0.5, x0 + centre[:, 1] - 0.5
    truth = np.stack([sim.shift[i] + sim.displacement(i, py, px) for i in range(N)])
    err = measured - truth
    sharp = (inputs["quality"].array("rank") < N // 2) & (np.arange(N) != 3)
    err -= err[sharp].reshape(-1, 2).mean(axis=0)  # reference coordinates differ by a constant
    rms = float(np.sqrt((err[sharp] ** 2).sum(-1).mean()))
    # Measured 0.096 px here (64 px matching windows; 0.153 px matching over the AP boxes themselves);
    # 24 px APs interpolated from 64 px windows 32 px apart: 0.094 px (0.095 for the default APs).
    # The 0.15 px target on the project simulator: tests/nodes/test_alignment_accuracy.py.
    assert rms < 0.13, rms


def test_lost_tracking_is_replaced_from_neighbours(data):
    _, inputs = data
    aps = run_node("align", {}, inputs)["aps"]
    shift, ok = _local(inputs, aps)
    assert (~ok[3]).sum() >= 1 and ok[[i for i in range(N) if i != 3]].mean() > 0.95
    lost = np.flatnonzero(~ok[3])
    assert np.all(np.abs(shift[3, lost]) <= aps.meta["search"])  # a neighbour's median, not the garbage


@pytest.mark.parametrize("params", [{}, GRID])
def test_an_aps_shift_does_not_depend_on_the_aps_measured_with_it(data, params):
    """The stack measures in each frame only the APs that stack it: every AP's shift (and its
    replacement when lost) must be the same bits whichever others are measured."""
    _, inputs = data
    aps = run_node("align", params, inputs)["aps"]
    shifts = inputs["shifts"]
    matching = matching_of(aps, shifts.meta["crop"])
    stream = open_frames(inputs["frames"], None)
    every, every_ok = _local(inputs, aps)
    rng = np.random.default_rng(5)
    for i in (0, 3, 7, 21):
        g = shifts.array("shift")[i]
        for share in (0.1, 0.5):
            want = rng.random(matching.count) < share
            want[0] = True
            a, b, c, d = matching.region(g, (stream.height, stream.width), want)  # their rows only
            local, ok, measured = matching.shifts(stream.read_mono(i, (a, b, c, d)), (a, c), g, want)
            points = len(matching._prepared().window_sizes)
            assert (want.sum() <= measured <= matching.count if not params else
                    measured <= points < matching.count / 3)
            assert np.array_equal(local[want], every[i, want]) and np.array_equal(ok[want], every_ok[i, want])
            assert not local[~want].any() and not ok[~want].any()


def test_results_do_not_depend_on_jobs_and_manual_aps(data):
    _, inputs = data
    a = run_node("align", {"ap_size": [48], "manual": [(100, 80, 32)]}, inputs, jobs=1)["aps"]
    b = run_node("align", {"ap_size": [48], "manual": [(100, 80, 32)]}, inputs, jobs=2)["aps"]
    for k in ("center", "size", "quality", "window_center", "window_size", "reference"):
        assert np.array_equal(a.array(k), b.array(k), equal_nan=True)
    assert a.array("center")[-1].tolist() == [80, 100] and a.meta["ap_sizes"] == [32, 48]
    with pytest.raises(NodeError):
        run_node("align", {"min_brightness": 1.0}, inputs)


@pytest.mark.parametrize("ap_size", [None, 32])  # 32: the 64 px matching windows reach beyond the boxes
def test_measuring_only_the_aps_region_of_each_frame_changes_nothing(monkeypatch, ap_size):
    sim = make_recording(n=12, h=300, w=420, radius=60, field=0.8, noise=0.01, seed=3)
    frames = memory_frames(ArrayFrameStream(sim.frames))
    shifts = run_node("stabilize", {}, {"frames": frames})["shifts"]
    quality = run_node("analyse", {}, {"frames": frames, "shifts": shifts})["quality"]
    inputs = {"frames": frames, "shifts": shifts, "quality": quality,
              "reference": run_node("reference", {}, {"frames": frames, "shifts": shifts,
                                                      "quality": quality})["reference"]}
    regions = []
    real = localshift.work_region
    monkeypatch.setattr(localshift, "work_region", lambda *a: regions.append(real(*a)) or regions[-1])
    part = run_node("align", {"ap_size": ap_size}, inputs)["aps"]
    part_shift, part_ok = _local(inputs, part)
    a, b, c, d = regions[0]
    assert (b - a) * (d - c) < 0.6 * 300 * 420  # the planet's part of the frame, not all of it
    monkeypatch.setattr(localshift, "work_region", lambda extent, dy, dx, margin, shape: (0, shape[0], 0,
                                                                                          shape[1]))
    whole = run_node("align", {"ap_size": ap_size}, inputs)["aps"]
    whole_shift, whole_ok = _local(inputs, whole)
    np.testing.assert_array_equal(part.array("quality"), whole.array("quality"))
    np.testing.assert_array_equal(part_ok, whole_ok)
    # The same samples; positions relative to the region round differently in float32, which can tip an
    # AP's strided iterations (remap's 1/32 px table, the 0.05 px stop) one way or the other: ≤ 2e-3 px.
    np.testing.assert_allclose(part_shift, whole_shift, atol=2e-3)


class _CountingStream(ArrayFrameStream):
    """An in-memory stream that counts the frames read."""

    reads = 0

    def read_mono(self, i, box=None):
        type(self).reads += 1
        return super().read_mono(i, box)


def test_local_quality_comes_from_analyse_cells_and_ranks_as_measuring_the_frames(data):
    sim, inputs = data
    quality = inputs["quality"]
    assert quality.meta["cells"]["bin"] == 2 and "cell_energy" in quality.arrays
    stream = _CountingStream(sim.frames)
    counted = dict(inputs, frames=memory_frames(stream))
    from_cells = run_node("align", {}, counted)["aps"]
    assert _CountingStream.reads == 0  # analyse's detail maps: no frame read again
    bare = Result(arrays={k: v for k, v in quality.arrays.items() if not k.startswith("cell_")},
                  meta={k: v for k, v in quality.meta.items() if k != "cells"})
    measured = run_node("align", {}, dict(counted, quality=bare))["aps"]
    assert _CountingStream.reads > 0
    a, b = from_cells.array("quality"), measured.array("quality")
    assert np.array_equal(np.isnan(a), np.isnan(b))
    good = ~np.isnan(a).any(axis=1)
    for j in range(a.shape[1]):  # the same ranking per AP (binned and summed over cells, or measured)
        rank_a, rank_b = np.argsort(np.argsort(a[good, j])), np.argsort(np.argsort(b[good, j]))
        assert np.corrcoef(rank_a, rank_b)[0, 1] > 0.97
    np.testing.assert_allclose(np.nanmedian(a / b, axis=0), 1.0, atol=0.1)
    # Another estimator than analyse's, or APs beyond its maps, or asked to: align measures the frames.
    before = _CountingStream.reads
    run_node("align", {"method": "laplacian"}, counted)
    assert _CountingStream.reads > before
    full = run_node("align", {"from_analyse": False}, counted)["aps"]
    np.testing.assert_array_equal(full.array("quality"), b)


def test_box_sums_over_cells_are_exact_on_cell_edges_and_for_even_cells():
    rng = np.random.default_rng(5)
    image = rng.random((3, 37, 45)).astype(np.float32)  # last cells 1 and 1 px
    cells = np.stack([cell_sums(f, 4) for f in image])
    assert cells.shape == (3, 10, 12)
    top, left, size = np.array([0, 4, 8, 36]), np.array([0, 12, 40, 40]), np.array([8, 12, 5, 5])
    bottom = np.minimum(top + size, 37)
    boxes = CellBoxes(top.astype(float), bottom.astype(float), left.astype(float),
                      np.minimum(left + size, 45).astype(float), 37, 45)
    sums = _box_sums(cells.astype(np.float64), boxes, 4)
    brute = np.array([[f[t:b, l:r].sum() for t, b, l, r in zip(top, bottom, left, boxes.right.astype(int))]
                      for f in image])
    np.testing.assert_allclose(sums[:, :2], brute[:, :2], rtol=1e-6)  # on cell edges
    np.testing.assert_allclose(sums[:, 3], brute[:, 3], rtol=1e-6)  # the last, narrower cells
    even = np.repeat(np.repeat(rng.random((3, 10, 12)), 4, axis=1), 4, axis=2)[:, :37, :45].astype(np.float32)
    cells = np.stack([cell_sums(f, 4) for f in even]).astype(np.float64)
    boxes = CellBoxes(np.array([1.5, 6.25]), np.array([9.0, 30.5]), np.array([2.0, 13.75]),
                      np.array([7.5, 44.0]), 37, 45)
    exact = [[f[int(t * 4):int(b * 4), int(l * 4):int(r * 4)].sum() / 16 for t, b, l, r in zip(*boxes[:4])]
             for f in np.repeat(np.repeat(even, 4, axis=1), 4, axis=2)]
    np.testing.assert_allclose(_box_sums(cells, boxes, 4), exact, rtol=1e-6)


def test_grid_points_interpolate_a_linear_field_exactly_and_cover_every_ap():
    centres = np.array([[40, 40], [52, 70], [64, 64], [50, 33], [95, 17], [3, 3]])
    points, window, size, corners, weights = localshift.grid_points(centres, 32, (130, 150))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    field = lambda yx: 0.01 * yx[..., 0] - 0.02 * yx[..., 1] + 0.3  # noqa: E731
    interpolated = (weights * field(points[corners].astype(float))).sum(axis=1)
    np.testing.assert_allclose(interpolated[:4], field(centres[:4].astype(float)))  # inside the points
    # [64, 64] lies on a point: that point alone; unused corners are not points
    assert weights[2].max() == 1.0 and len(points) == len(np.unique(points, axis=0))
    # near the crop's edge the windows move in: the points are where they measure, the AP takes the nearest
    assert np.array_equal(points[corners[5, 0]], [32, 32]) and weights[5, 0] == 1.0
    assert np.all(size == 64) and np.array_equal(points, window)
    assert np.all(window - 32 >= 0) and np.all(window + 32 <= [130, 150])


@pytest.mark.parametrize("normalize", [True, False])
def test_local_quality_of_stored_samples_is_each_boxes_rms_gradient_read_over_the_boxes_only(tmp_path, normalize):
    """8-bit frames from a SER file are smoothed as stored, over the APs' boxes and the smoothing's reach
    only; each AP's quality is the RMS gradient of the smoothed 0…1 frame over its box (over its mean)."""
    from luckystack.imaging.quality import detail_energy, smooth, smooth_radius
    from luckystack.io.ser_format import SerHeader, write_ser
    from luckystack.nodes.align import quality_chunk

    sim = make_recording(n=6, h=180, w=240, radius=60, field=0.5, noise=0.01, seed=2)
    path = tmp_path / "planet.ser"
    write_ser(path, np.round(np.clip(sim.frames, 0, 1) * 255).astype(np.uint8), SerHeader(240, 180))
    frames = run_node("reader", {}, {}, path)["frames"]
    shifts = run_node("stabilize", {}, {"frames": frames}, path)["shifts"]
    quality = run_node("analyse", {}, {"frames": frames, "shifts": shifts}, path)["quality"]
    ref = run_node("reference", {}, {"frames": frames, "shifts": shifts, "quality": quality}, path)["reference"]
    aps = run_node("align", {"ap_size": [40]},
                   {"frames": frames, "shifts": shifts, "quality": quality, "reference": ref}, path)["aps"]
    stream, crop = open_frames(frames, path), shifts.meta["crop"]
    matching, shift = matching_of(aps, crop), shifts.array("shift")
    boxes = []
    read = stream.read_samples
    stream.read_samples = lambda i, box=None: boxes.append(box) or read(i, box)
    got = quality_chunk(stream, range(stream.count), shift, np.ones(stream.count, bool), matching, "gradient", 4.0,
                        normalize)
    centres, sizes = matching.centres, matching.sizes
    reach = smooth_radius(4.0) + 1
    for i in range(stream.count):
        whole = smooth(stream.read_mono(i), 4.0)
        energy = detail_energy(whole)
        top = centres[:, 0] - sizes // 2 + crop[0] + int(round(shift[i, 0]))
        left = centres[:, 1] - sizes // 2 + crop[1] + int(round(shift[i, 1]))
        assert boxes[i] == (max(0, top.min() - reach), min(180, (top + sizes).max() + reach),
                            max(0, left.min() - reach), min(240, (left + sizes).max() + reach))
        for a in range(len(sizes)):
            box = np.s_[top[a]:top[a] + sizes[a], left[a]:left[a] + sizes[a]]
            want = np.sqrt(energy[box].astype(np.float64).mean())
            if normalize:
                want /= whole[box].astype(np.float64).mean()
            assert got[i, a] == pytest.approx(want, rel=1e-4)
