import numpy as np
import pytest

from luckystack.imaging.stacking import (
    FFT_PRIMES, fft_side, in_bands, patch_geometry, quality_weights, rank_frames, stack_sizes,
)


def test_stack_sizes_labels_and_clamping():
    assert stack_sizes(200, percent=[10, 2.5]) == [("P10", 20), ("P2p5", 5)]
    assert stack_sizes(50, frames=[10, 100]) == [("F10", 10), ("F100", 50)]
    with pytest.raises(ValueError):
        stack_sizes(10, percent=[5], frames=[3])


def test_ranks_skip_invalid_frames_and_bands_may_overlap():
    q = np.array([[0.5, 2.0], [0.9, np.nan], [0.1, 1.0], [0.7, 3.0]])
    valid = np.array([True, True, True, False])[:, None] & np.ones((1, 2), bool)
    rank = rank_frames(q, valid)
    assert rank[:, 0].tolist() == [1, 0, 2, -1]
    assert rank[:, 1].tolist() == [0, -1, 1, -1]
    inside = in_bands(rank, np.array([[0, 1, 0], [0, 1, 0]]), np.array([[1, 2, 2], [1, 2, 2]]))  # (4, 2, 3)
    assert inside[:, 0].tolist() == [[False, True, True], [True, False, True], [False] * 3, [False] * 3]
    assert not inside[1, 1].any()  # invalid for AP 1
    assert in_bands(np.array([0, 3]), np.array([0, 2]), np.array([2, 4])).tolist() == [[True, False], [False, True]]


def test_quality_weights_relative_to_the_best():
    q = np.array([[2.0], [1.0]])
    w = quality_weights(q, np.array([[0], [1]]), 2.0)
    np.testing.assert_allclose(w[:, 0], [1.0, 0.25])
    assert (quality_weights(q, np.array([[0], [1]]), 0) == 1).all()


def test_patch_geometry_is_centred_and_scaled():
    origins, side = patch_geometry(np.array([[50, 60]]), np.array([32]), 2.0)
    assert side == 96
    assert tuple(origins[0] + side // 2) == (101, 121) or tuple(origins[0] + side // 2) == (100, 120)


def _largest_prime(n: int) -> int:
    p, largest = 2, 1
    while n > 1:
        while n % p == 0:
            n, largest = n // p, p
        p += 1
    return largest


def test_fft_side_is_the_smallest_even_side_with_small_prime_factors():
    for n in range(8, 400):
        side = fft_side(n)
        assert side >= n and side % 2 == 0 and _largest_prime(side) <= max(FFT_PRIMES)
        assert all(m % 2 or _largest_prime(m) > max(FFT_PRIMES) for m in range(n, side))
    assert [fft_side(n) for n in (132, 136, 76, 166)] == [132, 140, 78, 168]


def test_spectral_patches_take_an_fft_friendly_side_and_others_keep_theirs():
    """90 px APs: 1.5 × 90 = 135 → 136 px = 8 × 17, whose transform costs a third more than 140's."""
    centres, sizes = np.array([[100, 120], [150, 160]]), np.array([90, 60])
    origins, side = patch_geometry(centres, sizes, 1.0)
    assert side == 136
    grown_origins, grown = patch_geometry(centres, sizes, 1.0, fft=True)
    assert grown == 140
    np.testing.assert_array_equal(grown_origins + grown // 2, origins + side // 2)  # the same centres
    assert patch_geometry(centres, np.array([88, 88]), 1.0, fft=True)[1] == 132  # default sizes: unchanged


@pytest.mark.parametrize("channels", [1, 3])
def test_scale_add_accumulates_strided_patches_like_numpy(channels):
    from luckystack.imaging.stacking import _scale_add

    rng = np.random.default_rng(3)
    acc = rng.random((2, 3, 20, 20, channels)).astype(np.float32)
    block = rng.random((23, 23, channels)).astype(np.float32)
    patch = block[:20, :20]  # a row-strided view, as the FIR resampler returns it
    want = acc.copy()
    want[1, 2] += np.float32(0.37) * patch
    _scale_add(acc[1, 2], patch, 0.37)
    np.testing.assert_allclose(acc, want, rtol=1e-6, atol=1e-7)
    assert np.array_equal(acc[0], want[0])  # other slots untouched


@pytest.mark.parametrize("side", [48, 132])
def test_spectral_sums_do_not_depend_on_the_batches_nor_on_how_bands_are_added(monkeypatch, side):
    import cv2

    from luckystack.imaging import stacking

    rng = np.random.default_rng(11)
    frame = cv2.GaussianBlur(rng.random((400, 420)).astype(np.float32), (0, 0), 1.5)[..., None]
    origins = np.array([(y, x) for y in range(10, 400 - side - 10, side // 2)
                        for x in range(10, 420 - side - 10, side // 2)], np.int32)[:14]
    plan = stacking.StackPlan(stream=None, origins=origins, patch=side, zoom=1.0, method="interpolate",
                              pixfrac=1.0, interpolation="cubic", bands=3, crop_offset=(0, 0),
                              out_shape=frame.shape[:2], channels=1, spectral_power=2.0)
    aps = list(range(len(origins)))
    frames = []
    for f in range(3):  # one band per AP, then some APs in two bands at once (a side state's overlap)
        members = [[int(b)] for b in rng.integers(0, 3, len(aps))]
        if f == 2:
            members[::3] = [[0, 1]] * len(members[::3])
        frames.append((rng.uniform(-2, 2, (len(aps), 2)), members, rng.uniform(0.5, 1, len(aps))))

    def sums(pixels: int, small: int) -> tuple[np.ndarray, np.ndarray]:
        monkeypatch.setattr(stacking, "SPECTRA_PIXELS", pixels)
        monkeypatch.setattr(stacking, "SMALL_PATCH", small)
        num, den, sq = stacking._accumulators(plan, len(aps))
        for offsets, members, weights in frames:
            stacking._add_spectra(num, den, sq, plan, frame, aps, offsets, members, None, weights, 1.2)
        return num, den

    one_by_one = sums(side * side, 0)  # batches of one patch, every add apart
    for pixels, small in ((5 * side * side, 0), (64 * side * side, 1000), (8 * 132 * 132, 96)):
        num, den = sums(pixels, small)
        assert np.array_equal(num, one_by_one[0]) and np.array_equal(den, one_by_one[1])
    assert np.abs(one_by_one[0]).max() > 0 and (one_by_one[1][:, 1] > 0).any()
    assert stacking._members(np.array([[False, True, False], [True, True, False]]), [0, 1]) == [[1], [0, 1]]
    assert stacking._members(np.array([[False, True], [True, False]]), [1, 0]) == [[0], [1]]
