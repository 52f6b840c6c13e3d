"""The AP size from the local shift field: structure function, strain, detail frequency, size."""

import numpy as np
import pytest

from luckystack.imaging.apscale import PATCH_SPREAD, PHASE, detail_frequency, field_scale, rigid_size, structure


def grid(step: int, n: int = 8) -> np.ndarray:
    return np.array([(y * step, x * step) for y in range(n) for x in range(n)], np.float64)


def test_a_linear_field_with_noise_gives_back_its_strain():
    rng = np.random.default_rng(0)
    points = grid(32)
    frames, strain = 40, 0.01
    # Each frame: a random linear field (gradient rms `strain` per axis and component) plus 0.1 px noise.
    g = rng.normal(0, strain, (frames, 2, 2))
    shifts = np.einsum("fij,pj->fpi", g, points) + rng.normal(0, 0.1, (frames, len(points), 2))
    ok = np.ones((frames, len(points)), bool)
    lags, values, pairs = structure(points, shifts, ok, 32)
    assert lags == [32, 64, 96] and pairs[0] == frames * 2 * 8 * 7
    scale = field_scale(lags, values, pairs, 0.05)
    assert scale.strain == pytest.approx(strain, rel=0.15)
    assert scale.noise == pytest.approx(2 * 0.1**2, rel=0.3)  # a difference of two measurements
    assert scale.size == pytest.approx(PHASE / (2 * np.pi * 0.05 * PATCH_SPREAD * scale.strain))


def test_badly_measured_points_are_left_out():
    points = grid(32, 4)
    shifts = np.zeros((3, len(points), 2))
    ok = np.ones((3, len(points)), bool)
    shifts[:, 5] = 50.0  # a lost match, flagged as such
    ok[:, 5] = False
    _, values, _ = structure(points, shifts, ok, 32)
    assert values == [0.0, 0.0, 0.0]


def test_a_rigid_field_or_no_detail_sets_no_limit_and_the_size_stays_within_bounds():
    rigid = field_scale([32, 64], [0.02, 0.02], [100, 100], 0.05)
    assert rigid.strain == 0.0 and rigid.size is None and rigid_size(rigid, 96) == 96
    assert field_scale([32, 64], [0.02, 0.2], [100, 100], 0.0).size is None
    assert rigid_size(field_scale([32, 64], [0.02, 5.0], [100, 100], 0.1), 96) == 24  # never below 24
    mid = field_scale([32, 64], [0.05, 0.05 + 0.0001 * (64**2 - 32**2)], [100, 100], 0.04)
    assert mid.size == pytest.approx(PHASE / (2 * np.pi * 0.04 * PATCH_SPREAD * 0.01))
    assert rigid_size(mid, 96) == 8 * int(mid.size // 8) and rigid_size(mid, 24) == 24


def test_detail_frequency_of_a_sine_is_its_frequency():
    y, x = np.mgrid[0:128, 0:128]
    for f in (0.02, 0.05, 0.1):
        img = 0.5 + 0.2 * np.sin(2 * np.pi * f * x)
        assert detail_frequency(img, np.array([[64, 64], [40, 80]]), 64) == pytest.approx(f, rel=0.08)
    assert detail_frequency(np.ones((64, 64)), np.array([[32, 32]]), 32) == 0.0
