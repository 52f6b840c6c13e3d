import numpy as np

from luckystack.imaging.colour import grey, luminance


def test_luminance_uses_rec709_weights_and_returns_float32():
    rgb = np.zeros((2, 3, 3), np.float64)
    rgb[0, 0] = [1, 0, 0]
    rgb[0, 1] = [0, 1, 0]
    rgb[0, 2] = [0, 0, 1]
    rgb[1] = 1.0
    y = luminance(rgb)
    assert y.dtype == np.float32 and y.shape == (2, 3)
    np.testing.assert_allclose(y[0], [0.2126, 0.7152, 0.0722], rtol=1e-6)
    np.testing.assert_allclose(y[1], 1.0, rtol=1e-6)


def test_grey_passes_mono_through_and_converts_colour():
    mono = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    assert np.shares_memory(grey(mono), mono)
    np.testing.assert_array_equal(grey(mono), mono[..., 0])
    rgb = np.random.default_rng(0).random((3, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(grey(rgb), luminance(rgb))
