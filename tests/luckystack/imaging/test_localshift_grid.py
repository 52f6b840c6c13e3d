"""Local shifts on a grid whose points lie further apart than half the APs' matching window: the
windows keep the matching size (not twice the step), and the interpolated shifts stay accurate."""

import numpy as np
import pytest

import luckystack.imaging.localshift as localshift
from luckystack.graph.context import run_node
from tests.nodes.test_align import _local, data  # noqa: F401  (the module's fixture, used below)

N = 40


@pytest.mark.parametrize("step, window, size", [(32, None, 64), (32, 64, 64), (48, 64, 64),
                                                 (40, 63, 62)])
def test_grid_windows_are_twice_the_step_at_most_the_window(step, window, size):
    centres = np.array([[40, 40], [52, 70], [64, 64], [50, 33], [95, 17], [3, 3], [120, 140]])
    points, win_c, win_s, corners, weights = localshift.grid_points(centres, step, (130, 150), window)
    assert np.all(win_s == size) and np.array_equal(points, win_c)
    assert np.all(win_c - size // 2 >= 0) and np.all(win_c + size // 2 <= [130, 150])  # inside the crop
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    field = lambda yx: 0.01 * yx[..., 0] - 0.02 * yx[..., 1] + 0.3  # noqa: E731
    interpolated = (weights * field(points[corners].astype(float))).sum(axis=1)
    np.testing.assert_allclose(interpolated[:4], field(centres[:4].astype(float)))
    gaps = {int(g) for axis in (0, 1) for g in np.diff(np.unique(points[:, axis]))}
    assert step in gaps  # the points keep the step apart (rows and columns near an edge move in)


def test_points_further_apart_measure_over_the_matching_windows_as_accurately(data):  # noqa: F811
    """24 px APs from points 40 and 48 px apart: the points' windows are the APs' matching windows
    (``match_size``: 64 px by default, not 80 or 96 px), there are fewer points than 32 px apart, and
    the shifts match the true displacement as well."""
    sim, inputs = data
    rms, points = {}, {}
    for step, size in ((32, 64), (40, 64), (48, 64), (40, 48), (48, 48)):
        aps = run_node("align", {"ap_size": [24], "match_step": step, "match_size": size}, inputs)["aps"]
        matching = localshift.ApMatching(
            np.ascontiguousarray(aps.array("reference"), np.float32), aps.array("center").astype(np.int32),
            aps.array("size").astype(np.int32), aps.array("window_center").astype(np.int32),
            aps.array("window_size").astype(np.int32), tuple(inputs["shifts"].meta["crop"][:2]),
            int(aps.meta["search"]), float(aps.meta["min_corr"]), float(aps.meta["max_jump"]), step)
        prepared = matching._prepared()
        assert np.all(prepared.window_sizes == size)
        points[step, size] = len(prepared.window_sizes)
        shift, ok = _local(inputs, aps)
        centre = aps.array("center")
        y0, x0 = inputs["shifts"].meta["crop"][:2]
        measured = inputs["shifts"].array("shift")[:, None, :] + shift
        py, px = y0 + centre[:, 0] - 0.5, x0 + centre[:, 1] - 0.5
        truth = np.stack([sim.shift[i] + sim.displacement(i, py, px) for i in range(N)])
        err = measured - truth
        sharp = (inputs["quality"].array("rank") < N // 2) & (np.arange(N) != 3)
        err -= err[sharp].reshape(-1, 2).mean(axis=0)
        rms[step, size] = float(np.sqrt((err[sharp] ** 2).sum(-1).mean()))
    # Measured (px): 0.094 for 64 px windows 32 px apart (28 points), 0.103 40 px and 0.111 48 px apart
    # (23, 20 points), 0.125 for 48 px windows 40 or 48 px apart: the window's size, not the step, decides
    assert points[48, 64] < points[40, 64] < points[32, 64], points
    assert all(v < 0.13 and v < rms[32, 64] + 0.035 for v in rms.values()), rms
