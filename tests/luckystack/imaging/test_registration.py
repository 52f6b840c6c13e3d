import cv2
import numpy as np
import pytest

from luckystack.imaging.registration import (
    choose_anchors, disc_centroid, extract, fft_shift, match_shift, refine_shift, warp_crop,
)


def _texture(h=128, w=128, seed=1):
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 2.0)
    return (t - t.min()) / (t.max() - t.min())


def _fourier_shift(img, dy, dx):
    ky = np.fft.fftfreq(img.shape[0])[:, None]
    kx = np.fft.fftfreq(img.shape[1])[None, :]
    return np.fft.ifft2(np.fft.fft2(img) * np.exp(-2j * np.pi * (ky * dy + kx * dx))).real.astype(np.float32)


def _disc(h, w, cy, cx, r):
    y, x = np.mgrid[0:h, 0:w]
    return (np.hypot(y - cy, x - cx) < r).astype(np.float32) * 0.8


def test_disc_centroid_is_subpixel_and_ignores_a_moon():
    img = _disc(120, 160, 60.3, 70.6, 30) + _disc(120, 160, 20, 140, 4)
    img = cv2.GaussianBlur(img, (0, 0), 1.5)
    d = disc_centroid(img)
    assert not d.touches_edge
    assert abs(d.cy - 60.3) < 0.1 and abs(d.cx - 70.6) < 0.1


@pytest.mark.parametrize("cy, cx, touches", [(60, 80, False), (29, 80, True), (91, 80, True), (60, 29, True),
                                             (60, 131, True), (60, 42, False)])
def test_disc_centroid_flags_each_edge_and_moves_with_the_disc(cy, cx, touches):
    """Only the bright part of a frame is labelled: padding the frame with more dark sky (whole binned
    pixels) moves the centroid by the padding and changes nothing else."""
    img = cv2.GaussianBlur(_disc(120, 160, cy + 0.3, cx - 0.4, 30) + _disc(120, 160, cy + 2, cx + 48, 3), (0, 0), 1.0)
    d = disc_centroid(img)
    assert d.touches_edge == touches
    if not touches:
        assert abs(d.cy - cy - 0.3) < 0.1 and abs(d.cx - cx + 0.4) < 0.1  # without the moon 15 px off the limb
        padded = disc_centroid(np.pad(img, ((12, 20), (16, 8))))
        assert not padded.touches_edge and padded.area == d.area
        assert padded.cy == pytest.approx(d.cy + 12, abs=1e-9) and padded.cx == pytest.approx(d.cx + 16, abs=1e-9)


def test_disc_box_bounds_the_disc_and_its_moon():
    img = cv2.GaussianBlur(_disc(120, 160, 60, 70, 30) + _disc(120, 160, 20, 140, 4), (0, 0), 1.0)
    top, bottom, left, right = disc_centroid(img).box
    # The disc (radius 30) spans rows 30…90 and columns 40…100, the moon (radius 4) rows 16…24 and
    # columns 136…144: the binned threshold mask within 2 px.
    assert abs(top - 17) <= 2 and abs(bottom - 90) <= 2 and abs(left - 41) <= 2 and abs(right - 144) <= 2
    assert disc_centroid(cv2.GaussianBlur(_disc(120, 160, 60, 70, 30), (0, 0), 1.0)).box[3] <= 102  # right


def test_disc_touching_the_edge_is_flagged():
    d = disc_centroid(cv2.GaussianBlur(_disc(120, 160, 60, 10, 30), (0, 0), 1.0))
    assert d.touches_edge
    assert disc_centroid(np.zeros((50, 50), np.float32)) is None


def test_match_and_refine_recover_subpixel_shifts():
    rng = np.random.default_rng(0)
    base = _texture()
    errs = []
    for _ in range(20):
        dy, dx = rng.uniform(-3, 3, 2)
        img = _fourier_shift(base, dy, dx) + rng.normal(0, 0.01, base.shape).astype(np.float32)
        tpl = base[40:88, 40:88]
        oy, ox, score, inside = match_shift(tpl, img[34:94, 34:94])
        assert inside and score > 0.9
        ry, rx, _ = refine_shift(tpl, img, 63.5, 63.5, oy - 6, ox - 6)
        errs.append((ry - dy, rx - dx))
    assert np.sqrt(np.mean(np.square(errs))) < 0.05


def test_fft_shift_sign_and_accuracy():
    base = _texture()
    sy, sx, peak = fft_shift(base[32:96, 32:96], _fourier_shift(base, 1.3, -2.6)[32:96, 32:96])
    assert abs(sy - 1.3) < 0.1 and abs(sx + 2.6) < 0.1 and peak > 0.5


def test_extract_and_warp_crop_follow_the_shift_convention():
    base = _texture()
    moved = _fourier_shift(base, 2.25, -1.5)  # a feature at p appears at p + (2.25, -1.5)
    aligned = warp_crop(moved, 10 + 2.25, 10 - 1.5, 80, 80)
    assert np.abs(aligned[5:-5, 5:-5] - base[15:85, 15:85]).max() < 0.02
    patch = extract(moved, 50 + 2.25, 50 - 1.5, 21, 21)
    assert np.abs(patch - base[40:61, 40:61]).max() < 0.03


def test_anchor_is_chosen_on_structure_away_from_edges():
    img = np.full((200, 200), 0.3, np.float32)
    img[120:180, 30:90] = _texture(60, 60)
    (y, x), = choose_anchors(img, 40, margin=10, count=1)
    assert 100 <= y <= 150 and 20 <= x <= 60
    with pytest.raises(ValueError):
        choose_anchors(np.zeros((40, 40), np.float32), 32, margin=10)


def test_half_bins_2x2_even_for_odd_sides():
    from luckystack.imaging.registration import half

    img = np.random.default_rng(0).random((7, 9)).astype(np.float32)
    bins = img[:6, :8].reshape(3, 2, 4, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(half(img), bins, rtol=1e-6)  # the odd last row and column are dropped


def test_binned_disc_centroid_matches_the_full_resolution_one():
    from luckystack.imaging.registration import binned_disc_centroid, half

    img = cv2.GaussianBlur(_disc(120, 160, 55.4, 81.7, 25), (0, 0), 1.2)
    full, binned = disc_centroid(img), binned_disc_centroid(half(img))
    assert (binned.cy, binned.cx, binned.area) == (full.cy, full.cx, full.area)
    assert abs(binned.cy - 55.4) < 0.1 and abs(binned.cx - 81.7) < 0.1
