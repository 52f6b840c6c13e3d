"""The report's AP pictures: the local-quality count, the coverage map, the PNGs and their colours."""

from __future__ import annotations

import cv2
import numpy as np

from luckystack.report import figures


def test_good_frames_counts_frames_near_each_aps_best():
    quality = np.array([[1.0, 5.0], [0.9, 1.0], [0.5, 4.5], [0.85, 4.0]])
    ok = np.ones_like(quality, bool)
    ok[3, 0] = False  # a replaced shift does not count
    valid = np.array([True, True, True, False])  # nor does a rejected frame
    assert figures.good_frames(quality, ok, valid).tolist() == [2, 2]
    assert figures.good_frames(np.full((3, 1), np.nan), None, None).tolist() == [0]


def test_coverage_map_averages_overlapping_boxes():
    cov = figures.coverage_map((10, 12), np.array([[4, 4], [4, 6]]), np.array([4, 4]), np.array([2.0, 6.0]))
    assert cov[4, 3] == 2.0 and cov[4, 5] == 4.0 and cov[4, 7] == 6.0 and np.isnan(cov[0, 0])


def test_ap_pictures_are_pngs_of_the_reference_at_full_size_with_boxes_numbers_and_a_colour_bar(tmp_path):
    ref = np.random.default_rng(0).random((300, 500, 1)).astype(np.float32) * 0.2  # dark: boxes stand out
    centres, sizes = np.array([[100, 100], [150, 300]]), np.array([64, 64])
    overlay = cv2.imread(str(figures.ap_figure(tmp_path / "a.png", ref, centres, sizes)))[..., ::-1]
    assert overlay.shape[:2] == (300, 500)  # 1:1: the crop is wide enough not to be magnified
    assert (overlay[68:132, 68] == (0, 255, 0)).all() and (overlay[118:182, 331] == (0, 255, 0)).all()  # box edges
    assert (overlay[100, 100] == overlay[100, 100, 0]).all() and overlay[95:106, 96:105].max() > 200  # number "1"
    small = cv2.imread(str(figures.ap_figure(tmp_path / "b.png", ref[:100, :200], centres // 3, sizes // 3)))
    assert small.shape[:2] == (300, 600)  # magnified 3× to be at least 480 px wide
    assert (small[::3, ::3][40:60, 5] == small[1::3, 1::3][40:60, 5]).all()  # each pixel a 3 × 3 block
    local = cv2.imread(str(figures.local_quality_figure(tmp_path / "c.png", ref, centres, sizes,
                                                        np.array([3, 9]))))[..., ::-1].astype(int)
    assert local.shape[0] == 300 and local.shape[1] == 500 + figures.BAR_WIDTH  # the colour bar beside it
    few, many = local[90, 80], local[160, 320]  # inside AP 1 alone (3 good frames), AP 2 alone (9)
    assert few[0] > few[1] and many[1] > many[0]  # red where few frames were good, green where many
    bar = local[30:270, 500 + 12]
    assert bar[0, 1] > bar[0, 0] and bar[-1, 0] > bar[-1, 1]  # the bar: green at the top, red at the bottom
    assert (local[5, 5] > 100).all()  # outside every AP the dimmed reference, washed towards white


def test_colour_of_runs_red_yellow_green():
    red, yellow, green = figures.colour_of(np.array([0.0, 0.5, 1.0]))
    assert red[0] > 150 > red[1] and yellow[0] > 250 and yellow[1] > 250 and green[1] > green[0]
