import cv2
import numpy as np
import pytest

from luckystack.imaging.placement import default_ap_size, match_boxes, neighbours, place_aps


def _jupiter(h=300, w=400, radius=100):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    r = np.hypot(y - h / 2, x - w / 2)
    tex = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 2.0)
    return np.where(r < radius, 0.5 + 0.2 * np.sin(y / 6.0) + 0.3 * tex, 0.0).astype(np.float32)


@pytest.mark.parametrize("radius", [60, 100, 140])
def test_default_size_gives_jupiter_discs_10_to_40_aps(radius):
    img = _jupiter(radius=radius, h=2 * radius + 80, w=2 * radius + 120)
    centres, sizes = place_aps(img)
    assert 10 <= len(centres) <= 40
    assert sizes[0] == default_ap_size(img) and sizes[0] % 8 == 0


def test_aps_sit_on_the_bright_object_inside_the_margin():
    img = _jupiter()
    centres, sizes = place_aps(img, sizes=[48], margin=10)
    r = np.hypot(centres[:, 0] - 150, centres[:, 1] - 200)
    assert (r < 100 + 24).all()
    assert (centres - 24 >= 10).all()


def test_multiple_sizes_and_manual_aps():
    img = _jupiter()
    c1, _ = place_aps(img, sizes=[64])
    c2, s2 = place_aps(img, sizes=[64, 32], manual=[(10, 20, 16)])
    assert len(c2) > len(c1) and set(s2.tolist()) == {16, 32, 64}
    assert c2[-1].tolist() == [20, 10]
    with pytest.raises(ValueError):
        place_aps(img, manual=[(2, 2, 32)])
    nb = neighbours(c1, np.full(len(c1), 64))
    assert all(len(n) >= 1 for n in nb)


def test_match_boxes_keep_the_ap_centre_and_fit_the_image():
    centres = np.array([[50, 60], [12, 100], [50, 60], [30, 30]], np.int32)
    sizes = np.array([40, 16, 128, 21], np.int32)
    c, s = match_boxes(centres, sizes, (120, 200), 64)
    # Same parity as the AP box (so the same continuous centre), grown or shrunk to 64 where it fits.
    assert s.tolist() == [64, 24, 64, 61]  # AP 1 has 4 px above its box; AP 3 (odd) 20 px left and above
    top, left = c - s[:, None] // 2, c - s[:, None] // 2
    assert (top >= 0).all() and (top[:, 0] + s <= 120).all() and (left[:, 1] + s <= 200).all()
    continuous = lambda cc, ss: cc - ss[:, None] // 2 + (ss[:, None] - 1) / 2  # noqa: E731
    assert np.array_equal(continuous(c, s), continuous(centres, sizes))
    same_c, same_s = match_boxes(centres, sizes, (120, 200), None)
    assert np.array_equal(same_c, centres) and np.array_equal(same_s, sizes)
