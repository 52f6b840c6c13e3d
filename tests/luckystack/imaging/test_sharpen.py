import cv2
import numpy as np

from luckystack.imaging.sharpen import atrous_layers, richardson_lucy, unsharp_mask, wavelet_sharpen


def _point(sigma=2.0):
    img = np.zeros((41, 41), np.float32)
    img[20, 20] = 1.0
    return cv2.GaussianBlur(img, (0, 0), sigma)[..., None] + 0.001


def test_richardson_lucy_sharpens_a_blurred_point():
    blurred = _point(2.0)
    out = richardson_lucy(blurred, sigma=2.0, iterations=50)
    assert out[20, 20, 0] > 4 * blurred[20, 20, 0]
    assert abs(out.sum() - blurred.sum()) / blurred.sum() < 0.02  # flux kept


def test_wavelet_layers_sum_to_the_input_and_unit_amounts_are_identity():
    rng = np.random.default_rng(0)
    img = rng.random((50, 60, 3)).astype(np.float32)
    layers = atrous_layers(img[..., 0], 4)
    np.testing.assert_allclose(sum(layers), img[..., 0], atol=1e-5)
    np.testing.assert_allclose(wavelet_sharpen(img, [1, 1, 1, 1]), img, atol=1e-5)
    sharp = wavelet_sharpen(_point(), [3.0, 2.0])
    assert sharp[20, 20, 0] > _point()[20, 20, 0]


def test_unsharp_mask_raises_the_peak_and_keeps_flat_areas():
    p = _point()
    assert unsharp_mask(p, 2.0, 1.0)[20, 20, 0] > p[20, 20, 0]
    flat = np.full((20, 20, 1), 0.5, np.float32)
    np.testing.assert_allclose(unsharp_mask(flat, 2.0, 3.0), flat, atol=1e-6)
