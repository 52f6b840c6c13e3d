import numpy as np

from luckystack.imaging.blend import blend_patches, cosine_window


def test_window_peaks_at_centre_and_vanishes_at_extent():
    w = cosine_window(48, 48)
    assert w.argmax() in (23, 24) and w[0] < 0.01 and w[-1] < 0.01


def test_constant_patches_and_background_give_a_constant_image_without_holes():
    bg = np.full((60, 80, 1), 0.3, np.float32)
    patches = np.full((3, 24, 24, 1), 0.3, np.float32)
    cov = np.ones_like(patches)
    origins = np.array([[-6, -6], [10, 30], [40, 70]])  # one sticks out of the image
    out = blend_patches(patches, cov, origins, np.full(3, 24), bg)
    np.testing.assert_allclose(out, 0.3, atol=1e-6)


def test_ap_values_fade_smoothly_into_the_background():
    bg = np.zeros((64, 64, 1), np.float32)
    patches = np.ones((1, 32, 32, 1), np.float32)
    out = blend_patches(patches, np.ones_like(patches), np.array([[16, 16]]), np.array([32]), bg, 0.5)[..., 0]
    assert out[32, 32] == 1.0 and out[0, 0] == 0.0
    assert np.abs(np.diff(out, axis=1)).max() < 0.2  # no seam: neighbouring pixels differ little


def test_stored_patches_chunked_per_ap_are_read_in_blocks_with_the_same_result(tmp_path):
    import zarr

    from luckystack.imaging.blend import ap_blocks

    rng = np.random.default_rng(3)
    patches = rng.random((7, 16, 16, 1)).astype(np.float32)
    cov = rng.random((7, 16, 16, 1)).astype(np.float32)
    stored_p = zarr.create_array(tmp_path / "p.zarr", shape=patches.shape, dtype="f4", chunks=(1, 16, 16, 1))
    stored_c = zarr.create_array(tmp_path / "c.zarr", shape=cov.shape, dtype="f4", chunks=(3, 16, 16, 1))
    stored_p[...], stored_c[...] = patches, cov
    per_ap = 2 * 16 * 16 * 4
    assert ap_blocks(stored_p, stored_c, budget=4 * per_ap) == [(0, 3), (3, 6), (6, 7)]  # whole chunks of 3
    assert ap_blocks(stored_p, stored_c, budget=1) == [(0, 3), (3, 6), (6, 7)]  # never less than a chunk
    assert ap_blocks(patches, budget=10**9) == [(0, 7)]
    origins, extents = rng.integers(-4, 30, (7, 2)), np.full(7, 12.0)
    bg = rng.random((40, 40, 1)).astype(np.float32)
    np.testing.assert_array_equal(blend_patches(stored_p, stored_c, origins, extents, bg),
                                  blend_patches(patches, cov, origins, extents, bg))
