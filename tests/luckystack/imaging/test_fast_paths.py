"""The speed-ups of issue 6 compute the same numbers as the straightforward code they replaced."""

import numpy as np
import pytest

from luckystack.imaging.apshift import _masked_median, replace_lost
from luckystack.imaging.quality import detail_energy, detect_artifacts, frame_score, smooth


def test_masked_median_equals_numpy_median_of_the_selected_values():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(200, 7, 2))
    mask = rng.random((200, 7)) < 0.6
    mask[np.arange(200), rng.integers(0, 7, 200)] = True  # every row keeps one value at least
    got = _masked_median(values, mask)
    want = np.array([np.median(values[i, mask[i]], axis=0) for i in range(200)])
    assert np.array_equal(got, want)


def _replace_lost_loop(shift, score, found, nbrs, min_corr, max_jump):
    """The per-frame, per-AP loop replace_lost was vectorised from (the reference behaviour)."""
    shift = shift.copy()
    ok = found & (score >= min_corr)
    n, a_count = ok.shape
    for i in range(n):
        good = ok[i].copy()
        for a in range(a_count):
            nb = nbrs[a][good[nbrs[a]]]
            if good[a] and nb.size >= 2:
                med = np.median(shift[i, nb], axis=0)
                if np.hypot(*(shift[i, a] - med)) > max_jump:
                    ok[i, a] = False
        for a in np.flatnonzero(~ok[i]):
            nb = nbrs[a][ok[i, nbrs[a]]]
            if nb.size == 0:
                nb = np.flatnonzero(ok[i])
            shift[i, a] = np.median(shift[i, nb], axis=0) if nb.size else 0.0
    return shift, ok


def test_replace_lost_matches_the_per_frame_loop():
    rng = np.random.default_rng(5)
    n, a_count = 40, 9
    shift = rng.normal(scale=0.5, size=(n, a_count, 2))
    shift[rng.random((n, a_count)) < 0.1] += 5.0  # jumps
    score = rng.uniform(0.3, 1.0, (n, a_count))
    found = rng.random((n, a_count)) < 0.9
    found[7] = False  # a frame with nothing found
    nbrs = [np.array([b for b in range(a_count) if b != a and abs(b - a) <= 2]) for a in range(a_count)]
    nbrs[4] = np.array([], int)  # an AP without neighbours
    got = replace_lost(shift, score, found, nbrs, 0.6, 2.0)
    want = _replace_lost_loop(shift, score, found, nbrs, 0.6, 2.0)
    assert np.array_equal(got[1], want[1])
    assert np.array_equal(got[0], want[0])


@pytest.mark.parametrize("method", ["gradient", "laplacian"])
def test_frame_score_equals_the_rms_of_the_inner_detail_energy(method):
    rng = np.random.default_rng(1)
    region = rng.random((90, 120)).astype(np.float32)
    margin = 8
    energy = detail_energy(smooth(region, 4.0), method)[margin:-margin, margin:-margin]
    want = float(np.sqrt(energy.mean(dtype=np.float64)))
    assert frame_score(region, method, 4.0, margin) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("shape", [(70, 90), (70, 2), (70, 1), (2, 9)])
def test_detail_energy_is_the_squared_half_central_difference_on_views_and_copies(shape):
    import cv2

    img = np.random.default_rng(3).random(shape).astype(np.float32)
    half = lambda dx, dy: cv2.Sobel(img, cv2.CV_32F, dx, dy, ksize=1, scale=0.5,  # noqa: E731
                                    borderType=cv2.BORDER_REPLICATE)
    want = half(1, 0) ** 2 + half(0, 1) ** 2
    view = np.pad(img, 5)[5:-5, 5:-5]  # not contiguous
    for given in (img, view, np.asfortranarray(img)):
        np.testing.assert_allclose(detail_energy(given), want, rtol=1e-6, atol=1e-7)
    assert np.array_equal(detail_energy(view), detail_energy(img))


def test_a_row_with_a_tiny_variation_still_counts_as_dropped():
    rng = np.random.default_rng(2)
    img = rng.random((60, 80)).astype(np.float32)
    img[30] = 0.5
    img[30, 3] = 0.5 + 2e-6  # range above 1e-6 but standard deviation far below it
    assert detect_artifacts(img) == 2
    img[30] = rng.random(80)
    assert detect_artifacts(img) == 0


def exact_shift(img: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """``img`` moved by (dy, dx) exactly (a phase ramp; periodic). Interpolating it instead (bicubic
    remap) adds the interpolator's own frequency-dependent phase error, ~0.04 px at ⅓ px on these
    scenes, which an estimator that resamples with the same kernel would share and hide."""
    ky = np.fft.fftfreq(img.shape[0])[:, None]
    kx = np.fft.fftfreq(img.shape[1])[None, :]
    return np.real(np.fft.ifft2(np.fft.fft2(img) * np.exp(-2j * np.pi * (ky * dy + kx * dx)))).astype(np.float32)


def _measured_local_shifts(seed: int, shape: tuple[int, int], blur: float, centres: np.ndarray, size: int,
                           true: np.ndarray, radius: int, extra_blur: float = 0.0
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``measure`` on a frame that is a random scene moved by a global shift plus each AP's own shift
    ``true`` (applied in a box of 1.5 × ``size`` around each AP), then blurred by ``extra_blur``."""
    import cv2

    from luckystack.imaging.apshift import make_templates, match_blur, measure

    rng = np.random.default_rng(seed)
    scene = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), blur)
    tpl = make_templates(match_blur(scene), centres, np.full(len(centres), size), 0, 0)
    gdy, gdx = 1.0, -2.0
    frame = scene.copy()
    reach = 3 * size // 4
    for (cy, cx), (dy, dx) in zip(centres, true):
        box = (slice(cy - reach, cy + reach), slice(cx - reach, cx + reach))
        frame[box] = exact_shift(scene, gdy + dy, gdx + dx)[box]
    if extra_blur:
        frame = cv2.GaussianBlur(frame, (0, 0), extra_blur)
    return measure(match_blur(frame), tpl, gdy, gdx, radius)


def test_measure_recovers_known_subpixel_local_shifts():
    """Strided fits plus one full-resolution fit at a whole-pixel offset find a known sub-pixel shift per AP."""
    true = np.array([[0.3, -1.7], [2.45, 0.8], [-3.2, 1.15], [0.0, 0.6]])
    shift, score, found = _measured_local_shifts(3, (160, 200), 2.5, np.array([[50, 60], [50, 140], [110, 60],
                                                                                [110, 140]]), 40, true, 6)
    assert found.all() and (score > 0.95).all(), score
    np.testing.assert_allclose(shift, true, atol=0.015)  # measured: ≤ 0.006 px (main's resampling: 0.046)


def test_a_frame_blurrier_than_the_reference_does_not_bias_the_shift():
    """The blur term and its interaction with the shift are fitted: a frame blurred by seeing is read
    at its true shift, whatever the sub-pixel part of it (measured ≤ 0.024 px; without the
    interaction terms 0.088 px)."""
    true = np.array([[0.5, -1.5], [2.25, 0.75], [-3.4, 1.1], [0.1, 0.45]])
    shift, score, found = _measured_local_shifts(4, (160, 200), 2.0, np.array([[50, 60], [50, 140], [110, 60],
                                                                                [110, 140]]), 40, true, 6, 1.0)
    assert found.all() and (score > 0.9).all(), score
    np.testing.assert_allclose(shift, true, atol=0.035)


def test_measure_finds_local_shifts_far_from_the_global_shift():
    """Shifts of 6–7 px, more than the Gauss–Newton steps from the global shift can follow on a
    fine-grained scene, are still found by the search the unsettled APs fall back to."""
    true = np.array([[6.3, -5.6], [-6.8, 2.2], [0.4, 6.6], [-0.2, 0.3]])
    shift, score, found = _measured_local_shifts(5, (200, 240), 1.5, np.array([[60, 70], [60, 170], [140, 70],
                                                                                [140, 170]]), 48, true, 8)
    assert found.all() and (score > 0.95).all(), score
    np.testing.assert_allclose(shift, true, atol=0.03)


def test_template_terms_computed_in_batches_equal_those_computed_at_once(monkeypatch):
    """make_templates builds the Gauss–Newton terms LK_BATCH APs at a time (bounded memory): every AP's
    terms are the very same as with all APs in one batch."""
    import cv2

    from luckystack.imaging import apshift

    rng = np.random.default_rng(3)
    ref = cv2.GaussianBlur(rng.random((300, 400)).astype(np.float32), (0, 0), 2)
    centres = np.stack([rng.integers(40, 260, 90), rng.integers(40, 360, 90)], axis=1)
    sizes = np.where(np.arange(90) % 2 == 0, 48, 64)  # two size groups of 45 APs
    batched = apshift.make_templates(ref, centres, sizes, 5, 7, 0.3)
    assert all(len(g.idx) > apshift.LK_BATCH for g in batched.lk)  # each group took several batches
    monkeypatch.setattr(apshift, "LK_BATCH", 1000)
    at_once = apshift.make_templates(ref, centres, sizes, 5, 7, 0.3)
    for got, want in zip(batched.lk + batched.lk_coarse, at_once.lk + at_once.lk_coarse):
        for name in ("idx", "rows", "weight", "var"):
            assert np.array_equal(getattr(got, name), getattr(want, name)), name


def test_an_aps_measurement_is_the_same_alone_as_with_any_others():
    """Every AP's fits are batched with the others of its size (one product, slices of one padded
    frame): its shift, correlation and found flag are the same bits measured alone, with all, or with
    any subset, also where its window reaches beyond the frame (edge pixels continued)."""
    import cv2

    from luckystack.imaging.apshift import make_templates, match_blur, measure

    rng = np.random.default_rng(8)
    scene = cv2.GaussianBlur(rng.random((150, 190)).astype(np.float32), (0, 0), 1.8)
    centres = np.stack([rng.integers(24, 126, 14), rng.integers(24, 166, 14)], axis=1)
    centres[0] = (20, 20)  # its 40 px window, moved by the shifts below, leaves the frame
    sizes = np.where(np.arange(14) % 3 == 0, 40, 32)  # two size groups
    tpl = make_templates(match_blur(scene), centres, sizes, 0, 0)
    frame = match_blur(exact_shift(scene, -2.3, -1.6) + rng.normal(0, 0.01, scene.shape).astype(np.float32))
    every = measure(frame, tpl, -2.0, -1.0, 6)
    assert every[2].sum() >= 12 and np.abs(every[0][1:] + [0.3, 0.6]).max() < 0.1  # 0: the wrapped edge
    for subset in [np.arange(14) == a for a in range(14)] + [rng.random(14) < 0.5 for _ in range(4)]:
        part = measure(frame, tpl, -2.0, -1.0, 6, subset)
        for got, want in zip(part, every):
            assert np.array_equal(got[subset], want[subset])


def test_the_strided_estimate_does_not_depend_on_the_full_resolution_fits():
    """measure_points fits only the APs ``fine`` at full resolution: theirs are the same bits as when
    every AP is, and every AP's strided estimate (what judges it as a neighbour) is the same bits
    whether or not it is fitted in full, and close to the full fit."""
    import cv2

    from luckystack.imaging.apshift import make_templates, match_blur, measure_points

    rng = np.random.default_rng(9)
    scene = cv2.GaussianBlur(rng.random((150, 190)).astype(np.float32), (0, 0), 1.8)
    centres = np.stack([rng.integers(24, 126, 12), rng.integers(24, 166, 12)], axis=1)
    sizes = np.where(np.arange(12) % 3 == 0, 40, 32)
    tpl = make_templates(match_blur(scene), centres, sizes, 0, 0)
    frame = match_blur(exact_shift(scene, -2.3, -1.6) + rng.normal(0, 0.01, scene.shape).astype(np.float32))
    every = measure_points(frame, tpl, -2.0, -1.0, 6)
    assert every.found.all() and np.abs(every.coarse_shift - every.shift).max() < 0.1
    for fine in [np.arange(12) == 4, rng.random(12) < 0.5, np.zeros(12, bool)]:
        part = measure_points(frame, tpl, -2.0, -1.0, 6, None, fine)
        for name in ("coarse_shift", "coarse_score", "coarse_found"):
            assert np.array_equal(getattr(part, name), getattr(every, name)), name
        for name in ("shift", "score", "found"):
            assert np.array_equal(getattr(part, name)[fine], getattr(every, name)[fine]), name
        assert np.array_equal(part.shift[~fine], every.coarse_shift[~fine])
