import cv2
import numpy as np
import pytest

from luckystack.imaging.quality import (
    binned_gradient_score, box_scores, crop_brightness, detail_energy, detect_artifacts, frame_score, smooth,
)


def _planet(blur=1.0, seed=0, h=120, w=160):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    r = np.hypot(y - h / 2, x - w / 2)
    tex = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1.5)
    img = np.where(r < 45, 0.5 + 0.2 * np.sin(y / 4.0) + 0.2 * tex, 0.0).astype(np.float32)
    return cv2.GaussianBlur(img, (0, 0), blur)


@pytest.mark.parametrize("method", ["gradient", "laplacian", "edge"])
def test_sharper_frames_score_higher(method):
    scores = [frame_score(_planet(b), method, 4.0) for b in (0.7, 1.5, 3.0)]
    assert scores[0] > scores[1] > scores[2]


def test_noise_robust_scale_ignores_noise():
    rng = np.random.default_rng(3)
    sharp_noisy = _planet(1.5) + rng.normal(0, 0.03, (120, 160)).astype(np.float32)
    blurry_clean = _planet(2.5)
    assert frame_score(sharp_noisy, "gradient", 8.0) > frame_score(blurry_clean, "gradient", 8.0)


def test_normalize_removes_transparency_changes():
    img = _planet(1.0)
    a, b = frame_score(img, normalize=True), frame_score(0.6 * img, normalize=True)
    assert abs(a - b) / a < 1e-3
    assert frame_score(0.6 * img) < 0.7 * frame_score(img)


@pytest.mark.parametrize("shape", [(37, 52), (1, 9), (9, 1)])
def test_gradient_energy_is_the_squared_3_tap_derivative_with_replicated_edges(shape):
    b = np.random.default_rng(4).random(shape).astype(np.float32)
    gx = cv2.Sobel(b, cv2.CV_32F, 1, 0, ksize=1, scale=0.5, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.Sobel(b, cv2.CV_32F, 0, 1, ksize=1, scale=0.5, borderType=cv2.BORDER_REPLICATE)
    np.testing.assert_array_equal(detail_energy(b, "gradient"), gx * gx + gy * gy)


@pytest.mark.parametrize("margin", [0, 1, 8])
def test_gradient_score_is_the_rms_gradient_over_the_inner_region(margin):
    img = _planet()
    blurred = smooth(img, 4.0)
    h, w = blurred.shape
    energy = detail_energy(blurred, "gradient")[margin:h - margin, margin:w - margin]
    expected = np.sqrt(energy.astype(np.float64).mean())
    assert frame_score(img, "gradient", 4.0, margin) == pytest.approx(expected, rel=1e-6)


def test_box_scores_match_direct_computation():
    img = smooth(_planet(1.0), 4)
    e = detail_energy(img)
    y0, x0, s = np.array([10, 40]), np.array([20, 50]), np.array([32, 24])
    got = box_scores(e, img, y0, x0, s)
    for k in range(2):
        box = (slice(y0[k], y0[k] + s[k]), slice(x0[k], x0[k] + s[k]))
        assert got[k] == pytest.approx(np.sqrt(e[box].mean()) / img[box].mean(), rel=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.uint16])
def test_artifacts_are_detected_and_clean_frames_pass(dtype):
    """The same codes whether the frame comes as 0…1 floats or as stored integer samples."""
    peak = {np.float32: 1.0, np.uint8: 255, np.uint16: 4095}[dtype]
    rng = np.random.default_rng(1)

    def samples(img):  # with a little noise, as recorded: the dark sky is not constant
        noisy = img + (rng.random(img.shape, np.float32) * 0.02 if dtype is not np.float32 else 0)
        return (np.round(noisy * peak).astype(dtype) if dtype is not np.float32 else img).copy()

    clean = _planet(0.7)
    assert detect_artifacts(samples(clean)) == 0
    assert detect_artifacts(np.zeros(clean.shape, dtype)) == 1
    dropped = samples(clean); dropped[60] = 0
    assert detect_artifacts(dropped) == 2
    col = samples(clean); col[:, 80] = 0
    assert detect_artifacts(col) == 2
    cut = samples(clean); cut[70:] = 0
    assert detect_artifacts(cut) == 3
    torn = samples(clean); torn[65:] = np.roll(torn[65:], 9, axis=1)
    assert detect_artifacts(torn) == 4


@pytest.mark.parametrize("dtype, peak", [(np.uint8, 255), (np.uint16, 4095)])
def test_integer_samples_are_smoothed_and_measured_as_their_floats(dtype, peak):
    ints = np.round(_planet(1.0) * peak).astype(dtype)
    floats = ints.astype(np.float32)
    np.testing.assert_allclose(smooth(ints, 4.0), smooth(floats, 4.0), rtol=1e-5, atol=1e-3)
    assert crop_brightness(ints, 8) == pytest.approx(crop_brightness(floats, 8), rel=1e-6)
    assert frame_score(ints, "gradient", 4.0, 8, True) == pytest.approx(frame_score(floats, "gradient", 4.0, 8, True),
                                                                        rel=1e-5)


def test_binned_gradient_score_ranks_and_scales_like_the_full_resolution_score():
    blurs = (0.6, 0.9, 1.2, 1.6, 2.2, 3.0)
    full = [frame_score(_planet(b, seed=3), "gradient", 4.0, 8, True) for b in blurs]
    binned = [binned_gradient_score(_planet(b, seed=3), 4.0, 8, True) for b in blurs]
    assert binned == sorted(binned, reverse=True) and full == sorted(full, reverse=True)
    np.testing.assert_allclose(binned, full, rtol=0.15)  # per full-resolution pixel, like the full score
    assert binned_gradient_score(0.5 * _planet(1.0), 6.0, 12, True) == pytest.approx(
        binned_gradient_score(_planet(1.0), 6.0, 12, True), rel=1e-5)
    with pytest.raises(ValueError):
        binned_gradient_score(_planet(1.0), 3.0, 6)



@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("shape", [(40, 52), (41, 52), (40, 53), (41, 53)])
@pytest.mark.parametrize("margin", [0, 4, 5])
def test_brightness_from_the_binned_samples_is_the_samples_mean(dtype, shape, margin):
    from luckystack.imaging.quality import bin2, binned_brightness

    rng = np.random.default_rng(sum(shape) + margin)
    peak = {np.uint8: 255, np.uint16: 65535, np.float32: 1.0}[dtype]
    region = (rng.random(shape) * peak).astype(dtype)
    want = region[margin:shape[0] - margin, margin:shape[1] - margin].astype(np.float64).mean()
    assert binned_brightness(region, bin2(region), margin) == pytest.approx(want, rel=1e-12 if dtype != np.float32
                                                                              else 1e-6)


@pytest.mark.parametrize("margin", [0, 1, 4])
def test_gradient_rms_from_squared_differences_is_the_energy_images_rms(margin):
    from luckystack.imaging.quality import binned_smooth, detail_energy, inner_gradient_rms

    samples = np.round(_planet(1.0) * 255).astype(np.uint8)
    smoothed = binned_smooth(samples, 4.0)
    energy = detail_energy(smoothed)
    h, w = energy.shape
    inner_rms = np.sqrt(energy[margin:h - margin, margin:w - margin].astype(np.float64).mean())
    assert inner_gradient_rms(smoothed, margin) == pytest.approx(inner_rms, rel=1e-6)
    with pytest.raises(ValueError):
        inner_gradient_rms(smoothed[:8, :8], 4)
