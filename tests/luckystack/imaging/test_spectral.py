import cv2
import numpy as np
import pytest

from luckystack.imaging.spectral import (
    coarse_shape, from_spectrum, rfft2, spectral_weights, spectral_weights_powers, upsampled, upsampled_exact,
    windowed_power,
)


def weighted_spectra(patches: np.ndarray, power: float) -> tuple[np.ndarray, np.ndarray]:
    """The spectra of (k, p, p, C) patches and their weights on every bin (k, p, p//2+1, 1)."""
    spec = rfft2(np.asarray(patches, np.float32))
    return spec, upsampled(spectral_weights(spec, power), patches.shape[1])[..., None]


def _scene(side: int = 64, seed: int = 0) -> np.ndarray:
    """Texture with detail at all scales (power-law spectrum), 0.2 … 0.8."""
    rng = np.random.default_rng(seed)
    img = sum(cv2.GaussianBlur(rng.random((side, side)).astype(np.float32), (0, 0), s) * s for s in (0.7, 2, 5))
    img = (img - img.min()) / np.ptp(img)
    return (0.2 + 0.6 * img).astype(np.float32)


def _stack(patches: np.ndarray, power: float) -> np.ndarray:
    """The spectral stack of (k, p, p, C) patches, summed as the stack node sums them."""
    spec = rfft2(np.asarray(patches, np.float32))
    coarse = spectral_weights(spec, power)
    return from_spectrum((upsampled(coarse, patches.shape[1])[..., None] * spec).sum(0),
                         coarse.sum(0)[..., None], patches.shape[1])


def _transfer(img: np.ndarray, truth: np.ndarray, low: float = 0.1, high: float = 0.3) -> float:
    f, t = np.fft.fft2(img - img.mean()), np.fft.fft2(truth - truth.mean())
    r = np.hypot(*np.meshgrid(np.fft.fftfreq(img.shape[0]), np.fft.fftfreq(img.shape[1]), indexing="ij"))
    band = (r > low) & (r < high)
    return float((f[band] * np.conj(t[band])).real.sum() / (np.abs(t[band]) ** 2).sum())


def test_identical_patches_come_back_unchanged():
    patch = _scene()[..., None]
    out = _stack(np.stack([patch, patch, patch]), 2.0)
    np.testing.assert_allclose(out, patch, atol=1e-5)


def test_colour_patches_share_one_weight_per_frequency():
    rgb = np.stack([_scene(seed=s) for s in range(3)], axis=-1)
    spec = rfft2(rgb[None])
    coarse = spectral_weights(spec, 2.0)
    assert spec.shape == (1, 64, 33, 3) and coarse.shape == (1, 32, 17)
    w = upsampled(coarse, 64)[..., None]
    np.testing.assert_allclose(from_spectrum(spec[0] * w[0], coarse[0][..., None], 64), rgb, atol=1e-5)


def test_the_sharp_frame_dominates_where_it_kept_the_detail():
    truth = _scene()
    rng = np.random.default_rng(1)
    sharp = cv2.GaussianBlur(truth, (0, 0), 0.6)
    soft = [cv2.GaussianBlur(truth, (0, 0), s) for s in (1.5, 1.8, 2.0)]
    frames = np.stack([sharp, *soft])
    frames = (frames + rng.normal(0, 0.003, frames.shape)).astype(np.float32)[..., None]
    mean = frames.mean(0)[..., 0]
    spectral = _stack(frames, 2.0)[..., 0]
    stronger = _stack(frames, 6.0)[..., 0]
    t_mean, t_spec, t_strong = (_transfer(x, truth) for x in (mean, spectral, stronger))
    assert t_spec > t_mean + 0.1, (t_mean, t_spec)
    assert t_strong > t_spec
    assert t_strong < _transfer(sharp, truth) + 0.02  # a weighted mean: never beyond the best frame


def test_the_weights_of_several_powers_are_each_powers_own():
    truth = _scene()
    rng = np.random.default_rng(2)
    frames = np.stack([cv2.GaussianBlur(truth, (0, 0), s) for s in (0.6, 1.2, 2.0)])
    frames = (frames + rng.normal(0, 0.003, frames.shape)).astype(np.float32)[..., None]
    spec = rfft2(frames)
    several = spectral_weights_powers(spec, (0.0, 2.0, 3.5, 6.0))
    assert several.shape == (4,) + spectral_weights(spec, 2.0).shape
    for q, power in enumerate((0.0, 2.0, 3.5, 6.0)):
        assert np.array_equal(several[q], spectral_weights(spec, power)), power
    assert (several[0] == 1).all() and several[3].max() > several[1].max() > 1


def test_pure_noise_is_averaged_not_selected():
    rng = np.random.default_rng(2)
    frames = (0.5 + rng.normal(0, 0.05, (40, 64, 64, 1))).astype(np.float32)
    _, w = weighted_spectra(frames, 4.0)
    assert np.median(w) < 1.2  # weight 1 = noise floor; power-law weights would spread over decades
    # the noise of the stack is that of a mean of 40 frames: within 5 % at the default power, 20 % at 4
    assert _stack(frames, 2.0).std() < 1.05 * frames.mean(0).std()
    assert _stack(frames, 4.0).std() < 1.2 * frames.mean(0).std()


def test_bright_high_contrast_patches_do_not_overflow():
    patch = (_scene() * 1000)[None, ..., None]
    spec, w = weighted_spectra(np.concatenate([patch, patch * 0.5]), 8.0)
    assert np.isfinite(w).all() and (w > 0).all()
    assert np.isfinite(_stack(np.concatenate([patch, patch * 0.5]), 8.0)).all()


@pytest.mark.parametrize("side", [20, 22, 36])  # side/2 even and odd
def test_windowed_power_is_every_second_bin_of_the_windowed_patch_periodogram(side):
    import scipy.fft

    x = np.random.default_rng(3).random((2, side, side)).astype(np.float32)
    w1 = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(side) / side)
    direct = np.abs(np.fft.fft2((x - x.mean(axis=(1, 2), keepdims=True)) * np.outer(w1, w1))) ** 2
    rows, cols = coarse_shape(side)
    got = windowed_power(scipy.fft.rfft2(x, axes=(1, 2)).astype(np.complex64))
    assert got.shape == (2, rows, cols)
    np.testing.assert_allclose(got, direct[:, 0::2, 0::2][:, :, :cols], atol=1e-5 * direct.max())


@pytest.mark.parametrize("side", [20, 22])
def test_weights_are_interpolated_linearly_between_the_coarse_bins(side):
    rows, cols = coarse_shape(side)
    coarse = np.random.default_rng(8).uniform(1, 5, (3, rows, cols)).astype(np.float32)
    fine = upsampled(coarse, side)
    assert fine.shape == (3, side, side // 2 + 1)
    even = fine[:, :, 0::2].shape[2]
    np.testing.assert_array_equal(fine[:, 0::2, 0::2], coarse[:, :, :even])  # bin 2i is coarse bin i
    between_rows = (coarse + np.roll(coarse, -1, axis=1)) / 2  # rows wrap around
    np.testing.assert_allclose(fine[:, 1::2, 0::2], between_rows[:, :, :even], rtol=1e-6)
    between_cols = (coarse[:, :, :-1] + coarse[:, :, 1:]) / 2
    np.testing.assert_allclose(fine[:, 0::2, 1::2], between_cols[:, :, :fine.shape[2] // 2], rtol=1e-6)
    np.testing.assert_allclose(fine, upsampled_exact(coarse, side), rtol=1e-6)
    # the sum of the interpolated weights is the interpolated sum: the stack keeps only the coarse sums
    np.testing.assert_allclose(fine.sum(0), upsampled_exact(coarse.sum(0), side), rtol=1e-6)
    for k in range(3):  # each patch's bins are its own in a batch
        assert np.array_equal(upsampled(coarse[k:k + 1], side)[0], fine[k])


@pytest.mark.parametrize("channels", [1, 3])
def test_a_patch_weights_do_not_depend_on_its_batch(channels):
    rng = np.random.default_rng(4)
    patches = rng.random((7, 36, 36, channels), dtype=np.float32)
    spec = rfft2(patches)
    w = spectral_weights(spec, 2.0)
    for k in range(7):
        one_spec = rfft2(patches[k:k + 1])
        assert np.array_equal(one_spec[0], spec[k])
        assert np.array_equal(spectral_weights(one_spec, 2.0)[0], w[k])


@pytest.mark.parametrize("channels", [1, 3])
def test_rfft2_matches_scipy(channels):
    import scipy.fft

    patches = np.random.default_rng(5).random((3, 36, 36, channels), dtype=np.float32)
    want = scipy.fft.rfft2(patches, axes=(1, 2))
    np.testing.assert_allclose(rfft2(patches), want, atol=2e-6 * np.abs(want).max())


def test_from_spectrum_in_batches_equals_one_transform_of_all_patches():
    rng = np.random.default_rng(0)
    num = (rng.normal(size=(40, 32, 17, 1)) + 1j * rng.normal(size=(40, 32, 17, 1))).astype(np.complex64)
    den = rng.uniform(0, 2, size=(40,) + coarse_shape(32) + (1,)).astype(np.float32)
    den[3] = 0  # an AP with no frames
    n = num.astype(np.complex128)
    d = np.broadcast_to(upsampled_exact(den[..., 0], 32)[..., None], n.shape)
    whole = np.fft.irfft2(np.divide(n, d, out=np.zeros(n.shape, n.dtype), where=d > 0), s=(32, 32),
                          axes=(-3, -2)).astype(np.float32)
    assert np.array_equal(from_spectrum(num, den, 32), whole)


@pytest.mark.parametrize("interpolation", ["linear", "cubic", "lanczos"])
def test_shifted_spectra_are_the_spectra_of_the_shifted_patches_inside_the_rim(interpolation):
    from luckystack.imaging.drizzle import shifted_patches
    from luckystack.imaging.spectral import shifted_spectra

    frame = np.stack([_scene(96, seed=s) for s in range(2)], axis=-1)
    # inside the frame, across its top-left corner and its bottom-right corner (replicated edges)
    positions = np.array([[20.3, 11.7], [-5.5, -2.25], [70.99, 60.01]])
    spec = shifted_spectra(frame, positions, 40, interpolation, gain=1.5)
    patches = np.fft.irfft2(spec, s=(40, 40), axes=(1, 2))
    want = 1.5 * shifted_patches(frame, positions, (40, 40), interpolation)
    rim = {"linear": 1, "cubic": 2, "lanczos": 4}[interpolation]  # the kernel's reach
    inner = (slice(None), slice(rim, 40 - rim), slice(rim, 40 - rim))
    np.testing.assert_allclose(patches[inner], want[inner], atol=2e-6)
    assert np.abs(patches - want).max() > 1e-3  # the rim wraps around the block: not the same there


def test_spectral_weights_do_not_depend_on_the_patch_brightness():
    patches = np.stack([_scene(seed=s) for s in range(3)])[..., None]
    rng = np.random.default_rng(6)
    patches = (patches + rng.normal(0, 0.01, patches.shape)).astype(np.float32)
    w = spectral_weights(rfft2(patches), 2.0)
    np.testing.assert_allclose(spectral_weights(rfft2(patches * np.float32(2.5)), 2.0), w, rtol=2e-4)


def test_a_shifted_spectrum_does_not_depend_on_its_batch():
    from luckystack.imaging.spectral import shifted_spectra

    frame = _scene(96)[..., None]
    positions = np.random.default_rng(7).uniform(0, 50, (9, 2))
    spec = shifted_spectra(frame, positions, 36, "cubic", gain=1.3)
    for k in range(9):
        assert np.array_equal(shifted_spectra(frame, positions[k:k + 1], 36, "cubic", gain=1.3)[0], spec[k])
