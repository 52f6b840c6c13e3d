import numpy as np
import pytest

from luckystack.imaging.stacking import in_bands, patch_geometry, quality_weights, rank_frames, stack_sizes


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
