"""No-truth figures of merit rank sharper and cleaner images higher."""

import cv2
import numpy as np
import pytest

from luckystack.imaging import image_metrics


def _disc(blur: float = 0.0, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:128, :128]
    img = ((yy - 64) ** 2 + (xx - 64) ** 2 < 40**2) * (0.6 + 0.2 * np.sin(yy / 3.0))
    img = img.astype(np.float32)
    if blur:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    return (img + rng.normal(0, noise, img.shape)).astype(np.float32) if noise else img


def test_noise_sigma_recovers_gaussian_noise():
    flat = np.full((200, 200), 0.5, np.float32) + np.random.default_rng(1).normal(0, 0.02, (200, 200))
    assert image_metrics.noise_sigma(flat) == pytest.approx(0.02, rel=0.05)


def test_sharpness_prefers_the_less_blurred_image():
    assert image_metrics.sharpness(_disc(0.8)) > image_metrics.sharpness(_disc(2.5))


def test_sharpness_ignores_brightness_scale():
    img = _disc(1.0)
    assert image_metrics.sharpness(img) == pytest.approx(image_metrics.sharpness(3 * img), rel=1e-4)


def test_score_prefers_clean_over_noisy_at_equal_blur():
    clean, noisy = _disc(1.0, 0.002), _disc(1.0, 0.03)
    assert image_metrics.snr(clean) > image_metrics.snr(noisy)
    assert image_metrics.score(clean) > image_metrics.score(noisy)


def test_colour_images_are_accepted():
    rgb = np.repeat(_disc(1.0)[..., None], 3, axis=2)
    assert set(image_metrics.figures(rgb)) == {"sharpness", "noise", "snr", "score"}
