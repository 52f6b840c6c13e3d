"""The report's figures: the local-quality count, the coverage map, and PNGs of the expected size."""

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


def test_figures_are_pngs_with_the_reference_at_full_size(tmp_path):
    ref = np.random.default_rng(0).random((300, 500, 1)).astype(np.float32)
    centres, sizes = np.array([[100, 100], [150, 300]]), np.array([64, 64])
    overlay = cv2.imread(str(figures.ap_figure(tmp_path / "a.png", ref, centres, sizes)))
    assert overlay.shape[:2] == (300, 500)  # 1:1: the crop is wide enough not to be magnified
    small = cv2.imread(str(figures.ap_figure(tmp_path / "b.png", ref[:100, :200], centres // 3, sizes // 3)))
    assert small.shape[:2] == (300, 600)  # magnified 3× to be at least 480 px wide
    local = cv2.imread(str(figures.local_quality_figure(tmp_path / "c.png", ref, centres, sizes, np.array([3, 9]))))
    assert local.shape[0] == 300 and local.shape[1] > 500  # the colour bar beside the image
    score = np.random.default_rng(1).random(200)
    valid = score > 0.05
    plot = cv2.imread(str(figures.quality_figure(tmp_path / "q.png", score, valid, [("P10", 18), ("P50", 95)])))
    assert plot.shape[1] > 900 and plot.shape[0] < 400
