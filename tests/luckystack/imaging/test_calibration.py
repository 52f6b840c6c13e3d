"""Calibration maths: flat gain, bad pixels, streaming median, pattern noise, debayer quality."""

from __future__ import annotations

import numpy as np
import pytest

from luckystack.imaging.calibration import (
    MedianReducer, fill_nonfinite, fill_nonfinite_planes, fix_pixels, flat_gain, hot_pixels_from_dark,
    neighbour_index, outlier_pixels,
)
from luckystack.imaging.debayer import colour_masks, debayer
from luckystack.imaging.pattern_noise import estimate_offsets, remove_pattern


def test_flat_gain_normalises_per_colour_and_guards_dead_pixels():
    flat = np.full((8, 8), 1000.0, np.float32)
    flat[0::2, 0::2] = 500  # red pixels see half the light: colour balance must not change
    flat[3, 3] = 10  # a dust speck so dark it is dead
    gain, dead = flat_gain(flat + 100, np.full((8, 8), 100.0), pattern="RGGB")
    assert gain[0, 0] == pytest.approx(1.0) and gain[0, 1] == pytest.approx(1.0)
    assert dead[3, 3] and gain[3, 3] == 1.0 and dead.sum() == 1
    with pytest.raises(ValueError, match="no positive signal"):
        flat_gain(np.zeros((4, 4)))


def test_hot_pixels_from_dark_and_outliers_and_repair():
    rng = np.random.default_rng(0)
    dark = rng.normal(100, 2, (40, 40)).astype(np.float32)
    hot = [(5, 7), (20, 30), (39, 0)]
    for y, x in hot:
        dark[y, x] = 400
    assert {tuple(p) for p in hot_pixels_from_dark(dark, 8)} == set(hot)
    y, x = np.mgrid[0:40, 0:40]
    scene = (100 + 50 * np.sin(x / 6.0) + 40 * np.cos(y / 5.0)).astype(np.float32)
    samples = np.stack([scene + rng.normal(0, 1, scene.shape) for _ in range(8)]).astype(np.float32)
    samples[:, 10, 12] += 300  # hot
    samples[:, 25, 25] -= 120  # cold
    found = {tuple(p) for p in outlier_pixels(samples, stride=1, sigma=10)}
    assert found == {(10, 12), (25, 25)}
    coords = np.array(sorted(found), np.int32)
    fixed = fix_pixels(samples[0].copy(), coords, neighbour_index(coords, scene.shape, 1))
    assert np.abs(fixed - scene).max() < 6


def test_median_reducer_is_bounded_and_close_to_the_median():
    rng = np.random.default_rng(1)
    frames = rng.normal(10, 1, (640, 4, 4)).astype(np.float32)
    frames[::50] += 1000  # cosmic-ray frames the median must ignore
    r = MedianReducer(fan_in=4)
    for s in range(0, 640, 32):
        r.add(np.median(frames[s:s + 32], axis=0))
    assert sum(len(level) for level in r.levels) < 8
    np.testing.assert_allclose(r.result(), 10, atol=0.25)


def test_fill_nonfinite_from_neighbours():
    x = np.array([[1.0, np.nan], [np.inf, 3.0]], np.float32)
    assert fill_nonfinite(x) == 2
    np.testing.assert_array_equal(x, [[1, 2], [2, 3]])


def _banded_sky(rng, h=120, w=160, bayer=False):
    """A planet on a noisy sky with known row and column offsets."""
    y, x = np.mgrid[0:h, 0:w]
    planet = 400 * np.clip(1 - ((y - 60) ** 2 + (x - 70) ** 2) / 30.0 ** 2, 0, None) ** 0.5
    clean = 20 + planet
    if bayer:
        clean = clean * np.where((y % 2 == 0) & (x % 2 == 0), 0.6, 1.0)
    rows = rng.normal(0, 3, h)
    cols = rng.normal(0, 2, w)
    noise = rng.normal(0, 1.0, (h, w))
    return (clean + noise + rows[:, None] + cols[None, :]).astype(np.float32), clean + noise, rows, cols


@pytest.mark.parametrize("bayer", [False, True])
def test_pattern_noise_removal_leaves_residual_within_noise(bayer):
    rng = np.random.default_rng(2)
    banded, truth, rows, cols = _banded_sky(rng, bayer=bayer)
    r_est, c_est = estimate_offsets(banded, "both", "RGGB" if bayer else None)
    # offsets are known up to a constant (the background level is kept)
    assert np.std((r_est - rows)) < 0.2 and np.std(c_est - cols) < 0.25
    cleaned = remove_pattern(banded.copy(), "both", "RGGB" if bayer else None)
    resid = cleaned - truth
    resid -= np.median(resid)
    assert np.std(banded - truth) > 3.0  # the banding was strong...
    assert np.std(resid) < 0.3  # ...and what is left is far below the 1.0 pixel noise
    assert np.std(resid.mean(axis=1)) < 0.2  # no visible bands remain


def test_pattern_noise_rows_only_and_off():
    rng = np.random.default_rng(3)
    banded, _, rows, _ = _banded_sky(rng)
    r_est, c_est = estimate_offsets(banded, "rows")
    assert c_est is None and np.corrcoef(r_est, rows)[0, 1] > 0.99
    assert estimate_offsets(banded, "off") == (None, None)


def test_malvar_beats_bilinear_on_detail():
    y, x = np.mgrid[0:96, 0:96]
    detail = np.sin(x / 2.2) * np.cos(y / 2.7)  # fine detail shared by the colours, as in real scenes
    rgb = np.stack([c + 0.3 * detail for c in (0.6, 0.5, 0.3)], -1).astype(np.float32)
    m = colour_masks("GRBG", 96, 96)
    cfa = rgb[..., 0] * m["R"] + rgb[..., 1] * m["G"] + rgb[..., 2] * m["B"]
    err = {meth: np.sqrt(np.mean((debayer(cfa, "GRBG", meth, m) - rgb)[4:-4, 4:-4] ** 2))
           for meth in ("bilinear", "malvar")}
    assert err["malvar"] < 0.7 * err["bilinear"]


def test_fill_nonfinite_planes_fills_each_channel_as_fill_nonfinite_does():
    rng = np.random.default_rng(7)
    rgb = rng.random((12, 14, 3)).astype(np.float32)
    rgb[3:5, 4:7, 0], rgb[9, 2, 2], rgb[0, 0, 2] = np.nan, np.inf, -np.inf
    expected = rgb.copy()
    counts = [fill_nonfinite(expected[..., c]) for c in range(3)]
    assert fill_nonfinite_planes(rgb) == sum(counts) == 8
    np.testing.assert_array_equal(rgb, expected)
    grey = rgb[..., 1].copy()
    grey[6, 6] = np.nan
    assert fill_nonfinite_planes(grey) == 1 and np.isfinite(grey).all()
