import cv2
import numpy as np

from luckystack.imaging.rgb_align import align_rgb, shift_image


def test_rgb_align_recovers_a_known_subpixel_dispersion():
    rng = np.random.default_rng(3)
    big = cv2.GaussianBlur(rng.random((200, 200)).astype(np.float32), (0, 0), 2.0)
    g = big[40:160, 40:160]
    r = shift_image(big, 0.6, -0.35)[40:160, 40:160] * 0.8
    b = shift_image(big, -0.9, 0.4)[40:160, 40:160] * 0.6 + 0.05
    out, offsets = align_rgb(np.stack([r, g, b], axis=-1))
    np.testing.assert_allclose(offsets[0], (-0.6, 0.35), atol=0.05)
    np.testing.assert_allclose(offsets[1], (0.9, -0.4), atol=0.05)
    inner = (slice(10, -10), slice(10, -10))
    corr = np.corrcoef(out[..., 0][inner].ravel(), g[inner].ravel())[0, 1]
    assert corr > 0.995
