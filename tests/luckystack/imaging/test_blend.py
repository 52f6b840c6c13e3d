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
