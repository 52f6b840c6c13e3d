"""Sharpness estimators and frame-artifact checks for lucky imaging.

All functions take float32 images on the 0…1 scale. ``scale`` (2…8) is the noise-robust scale of the
estimators: the image is smoothed by a Gaussian of sigma ``scale / 4`` before differentiating, so
pixel noise does not count as detail (2 for high-SNR undersampled data, larger for noisy data).
"""

from __future__ import annotations

import cv2
import numpy as np

METHODS = ("gradient", "laplacian", "edge")
BINNED_SCALE = 4.0  # from this noise-robust scale on, the gradient score may be measured 2×2-binned


def smooth_radius(scale: float) -> int:
    """How far (px) :func:`smooth` at ``scale`` reaches: its kernel's half size (OpenCV's float32
    Gaussian: 4 sigma each side)."""
    return (int(round(scale / 4.0 * 8 + 1)) | 1) // 2


def smooth(img: np.ndarray, scale: float) -> np.ndarray:
    """The image smoothed at the estimator scale (Gaussian, sigma = scale / 4), float32. Integer
    samples are filtered as they are, into float32 (the same values as converting them first)."""
    if img.dtype in (np.uint8, np.uint16):
        sigma = scale / 4.0
        kernel = cv2.getGaussianKernel(2 * smooth_radius(scale) + 1, sigma, cv2.CV_32F)  # float32 blur's size
        return cv2.sepFilter2D(img, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REPLICATE)
    img = np.ascontiguousarray(img, dtype=np.float32)
    return cv2.GaussianBlur(img, (0, 0), sigmaX=scale / 4.0, borderType=cv2.BORDER_REPLICATE)


def detail_energy(blurred: np.ndarray, method: str = "gradient") -> np.ndarray:
    """Per-pixel detail energy of a smoothed image: squared gradient magnitude or squared Laplacian.

    ``edge`` uses the squared gradient like ``gradient``; it differs only in how the frame score
    pools it (:func:`frame_score`).
    """
    if method not in METHODS:
        raise ValueError(f"unknown quality method {method!r}; use one of {', '.join(METHODS)}")
    if method == "laplacian":
        lap = cv2.Laplacian(blurred, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REPLICATE)
        return lap * lap
    b = np.ascontiguousarray(blurred, np.float32)  # a copy of a view is repaid by the contiguous passes
    dx, dy = _half_difference(b), _half_difference(b, axis=0)
    cv2.multiply(dx, dx, dst=dx, scale=0.25)  # (0.5·d)², as scaling by 0.5 and 0.25 is exact
    cv2.multiply(dy, dy, dst=dy, scale=0.25)
    return cv2.add(dx, dy, dst=dx)


def _half_difference(b: np.ndarray, axis: int = 1) -> np.ndarray:
    """Central differences ``b[i+1] − b[i−1]`` along ``axis`` of a contiguous 2-D ``b``, edges
    replicated: a ``cv2.Sobel(ksize=1)``'s values, 3–7× faster (OpenCV's vertical pass is slow)."""
    d = np.empty(b.shape, np.float32)
    if b.shape[axis] < 2:
        d[...] = 0
    elif axis == 0:  # whole rows at a time
        np.subtract(b[2:], b[:-2], out=d[1:-1])
        np.subtract(b[1], b[0], out=d[0])
        np.subtract(b[-1], b[-2], out=d[-1])
    else:  # one pass over the flat arrays (2× faster than row by row); each row's first and last
        #    values mix rows there, and are set right below
        np.subtract(b.reshape(-1)[2:], b.reshape(-1)[:-2], out=d.reshape(-1)[1:-1])
        np.subtract(b[:, 1], b[:, 0], out=d[:, 0])
        np.subtract(b[:, -1], b[:, -2], out=d[:, -1])
    return d


def crop_brightness(region: np.ndarray, margin: int) -> float:
    """Mean of ``region`` more than ``margin`` px inside its border: a frame's brightness (its
    transparency), what :func:`frame_score` divides by with ``normalize``."""
    h, w = region.shape[:2]
    inner = region[margin:h - margin, margin:w - margin]
    if inner.dtype not in (np.uint8, np.uint16, np.float32):
        inner = inner.astype(np.float32)
    return float(cv2.mean(inner)[0])


def frame_score(region: np.ndarray, method: str = "gradient", scale: float = 4.0,
                margin: int | None = None, normalize: bool = False, brightness: float | None = None) -> float:
    """Sharpness of one (aligned, cropped) frame region; higher is sharper.

    gradient: RMS gradient magnitude. laplacian: RMS Laplacian. edge: mean of the strongest 2 % of
    gradient magnitudes (the limb steepness of small bright planets). ``margin`` pixels at the region
    border are ignored (default: ``2 * scale``) so a cut edge never counts as detail. ``normalize``
    divides by the mean brightness (:func:`crop_brightness`, or ``brightness`` when the caller has it)
    so transparency changes do not look like sharpness changes.
    """
    margin = int(round(2 * scale)) if margin is None else int(margin)
    if method not in METHODS:
        raise ValueError(f"unknown quality method {method!r}; use one of {', '.join(METHODS)}")
    blurred = smooth(region, scale)
    h, w = blurred.shape
    if h <= 2 * margin or w <= 2 * margin:
        raise ValueError("the region is smaller than twice the edge margin")
    if method == "edge":
        inner = detail_energy(blurred, method)[margin:h - margin, margin:w - margin]
        flat = np.sqrt(inner.ravel())
        k = max(1, flat.size // 50)
        score = float(np.partition(flat, flat.size - k)[-k:].mean())
    elif method == "laplacian":  # RMS over the inner region as a sum of squares (cv2.norm, in double)
        box = _inner_box(blurred, margin)
        lap = cv2.Laplacian(box, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REPLICATE)
        score = float(np.sqrt(cv2.norm(lap[1:-1, 1:-1], cv2.NORM_L2SQR) / ((box.shape[0] - 2) * (box.shape[1] - 2))))
    else:
        score = inner_gradient_rms(blurred, margin)
    if normalize:
        mean = crop_brightness(region, margin) if brightness is None else brightness
        score = score / mean if mean > 1e-6 else 0.0
    return score


def _inner_box(blurred: np.ndarray, margin: int) -> np.ndarray:
    """The region more than ``margin`` px inside the border plus the 1 px that 3-tap derivatives reach
    (their values there are those on the whole image); at ``margin`` 0 the image with its edge pixels
    repeated (as BORDER_REPLICATE)."""
    h, w = blurred.shape
    if margin >= 1:
        return blurred[margin - 1:h - margin + 1, margin - 1:w - margin + 1]
    return cv2.copyMakeBorder(blurred, 1, 1, 1, 1, cv2.BORDER_REPLICATE)


def inner_gradient_rms(blurred: np.ndarray, margin: int) -> float:
    """RMS gradient magnitude (the square root of :func:`detail_energy`'s ``gradient`` mean) of a
    smoothed image more than ``margin`` px inside its border: Σ (0.5 · central difference)² by cv2.norm
    (in double), without derivative or energy images."""
    h, w = blurred.shape
    if h <= 2 * margin or w <= 2 * margin:
        raise ValueError("the region is smaller than twice the edge margin")
    box = _inner_box(blurred, margin)
    total = 0.25 * (cv2.norm(box[1:-1, 2:], box[1:-1, :-2], cv2.NORM_L2SQR)
                    + cv2.norm(box[2:, 1:-1], box[:-2, 1:-1], cv2.NORM_L2SQR))
    return float(np.sqrt(total / ((box.shape[0] - 2) * (box.shape[1] - 2))))


def binned_gradient_score(region: np.ndarray, scale: float, margin: int, normalize: bool = False,
                          brightness: float | None = None) -> float:
    """:func:`frame_score` by ``gradient`` measured on the 2×2-binned region, for ``scale`` ≥
    :data:`BINNED_SCALE`: a quarter of the pixels, the same ranking (the estimator's smoothing already
    removes the detail that binning does). The binned region is smoothed by what the Gaussian of sigma
    ``scale / 4`` adds to the binning's own blur, and the gradient is per full-resolution pixel.
    """
    score = inner_gradient_rms(binned_smooth(region, scale), margin // 2) / 2  # per full-resolution px
    if normalize:
        mean = crop_brightness(region, margin) if brightness is None else brightness
        score = score / mean if mean > 1e-6 else 0.0
    return score


def binned_smooth(region: np.ndarray, scale: float, binned: np.ndarray | None = None) -> np.ndarray:
    """The 2×2-binned ``region`` (its :func:`bin2`, or ``binned`` where the caller has it) smoothed by
    what σ = ``scale / 4`` adds to the binning's blur: what the binned scores are measured on."""
    if scale < BINNED_SCALE:
        raise ValueError(f"a binned score needs a noise-robust scale of at least {BINNED_SCALE}")
    return smooth(bin2(region) if binned is None else binned, 4.0 * _binned_sigma(scale))


def bin2(region: np.ndarray) -> np.ndarray:
    """float32 means of the 2×2 blocks of ``region`` (an odd last row or column dropped)."""
    h, w = region.shape[0] // 2 * 2, region.shape[1] // 2 * 2
    return cv2.resize(np.asarray(region[:h, :w], np.float32), (w // 2, h // 2), interpolation=cv2.INTER_AREA)


def binned_brightness(region: np.ndarray, binned: np.ndarray, margin: int) -> float:
    """:func:`crop_brightness` of integer samples from their :func:`bin2` (a quarter of the pixels):
    the binned means of 8- and 16-bit samples are exact quarters, so 4 × their sum plus the row and
    column the binning dropped is the samples' sum, exactly. Other samples, or an odd margin, are
    measured as :func:`crop_brightness` does."""
    h, w = region.shape[:2]
    if region.dtype not in (np.uint8, np.uint16) or margin % 2 or min(h, w) <= 2 * margin:
        return crop_brightness(region, margin)
    m, hb, wb = margin // 2, h // 2, w // 2
    total = 4.0 * cv2.sumElems(binned[m:hb - m, m:wb - m])[0]
    if h % 2:  # the last inner row, left out of the binned rows
        total += cv2.sumElems(region[h - 1 - margin, margin:2 * wb - margin])[0]
    if w % 2:  # the last inner column, every inner row
        total += cv2.sumElems(region[margin:h - margin, w - 1 - margin])[0]
    return total / ((h - 2 * margin) * (w - 2 * margin))


def _binned_sigma(scale: float) -> float:
    """The smoothing (binned px) that brings the 2×2 box's own blur (variance 1/4 px² per axis) to
    σ = scale / 4 full-resolution px."""
    return float(np.sqrt((scale / 4.0) ** 2 - 0.25) / 2)


def cell_sums(image: np.ndarray, cell: int) -> np.ndarray:
    """float32 sums of a float32 ``image`` over cells of ``cell`` × ``cell`` px (the last row and column
    of cells hold what is left): an area resize of the image padded with zeros, 5× faster than
    ``np.add.reduceat``."""
    h, w = image.shape
    rows, cols = -(-h // cell), -(-w // cell)
    padded = cv2.copyMakeBorder(image, 0, rows * cell - h, 0, cols * cell - w, cv2.BORDER_CONSTANT, value=0)
    return cv2.resize(padded, (cols, rows), interpolation=cv2.INTER_AREA) * np.float32(cell * cell)


def box_scores(energy: np.ndarray, brightness: np.ndarray | None, y0: np.ndarray, x0: np.ndarray,
               size: np.ndarray) -> np.ndarray:
    """RMS detail energy in many boxes at once (integral image): the local quality of APs.

    Boxes are ``[y0, y0+size) × [x0, x0+size)`` and must lie inside ``energy``. With ``brightness``
    (the smoothed image) each score is divided by the box's mean brightness. The brightness, a smooth
    and positive normaliser, is summed by a float32 integral image (half the work of float64; its box
    sums good to a few parts in 10⁵ over a 1280×960 frame), the energy by a float64 one.
    """
    y1, x1 = y0 + size, x0 + size
    area = size.astype(np.float64) ** 2
    score = np.sqrt(np.maximum(_box_sums(energy, y0, x0, y1, x1, cv2.CV_64F), 0.0) / area)
    if brightness is not None:
        mean = _box_sums(brightness, y0, x0, y1, x1, cv2.CV_32F) / area
        score = np.where(mean > 1e-6, score / np.maximum(mean, 1e-6), 0.0)
    return score


def _box_sums(image: np.ndarray, y0: np.ndarray, x0: np.ndarray, y1: np.ndarray, x1: np.ndarray,
              depth: int) -> np.ndarray:
    """float64 sums of ``image`` over the boxes [y0, y1) × [x0, x1), from its integral image of
    ``depth`` (OpenCV's CV_32F or CV_64F)."""
    ii = cv2.integral(image, sdepth=depth)
    return (ii[y1, x1].astype(np.float64) - ii[y0, x1]) - (ii[y1, x0].astype(np.float64) - ii[y0, x0])


# Reasons a frame is disabled by artifact detection (codes are stable; they go into results).
ARTIFACT_REASONS = {
    1: "blank frame (no signal)",
    2: "dropped row or column (constant line inside the image)",
    3: "missing data (frame cut off, constant to the edge)",
    4: "torn frame (rows shifted sideways)",
}


def _constant_lines(std: np.ndarray, strong: float) -> tuple[bool, bool]:
    """(dropped line, missing block) from per-line standard deviations along one axis."""
    flat = std < 1e-6
    if not flat.any() or strong <= 0:
        return False, False
    prev = np.concatenate(([0.0], std[:-1]))
    nxt = np.concatenate((std[1:], [0.0]))
    neighbours = np.minimum(prev, nxt)
    dropped = bool(np.any(flat & (neighbours > 0.1 * strong)))
    # A run of constant lines reaching the image edge right after a wide, structured line.
    idx = np.flatnonzero(~flat)
    missing = False
    if idx.size:
        last, first = idx[-1], idx[0]
        missing = (last < std.size - 1 and std[last] > 0.5 * strong) or (first > 0 and std[first] > 0.5 * strong)
    return dropped, missing


def detect_artifacts(mono: np.ndarray) -> int:
    """0 if the frame looks intact, else a code of :data:`ARTIFACT_REASONS`.

    Catches blank frames, constant (dropped) rows or columns inside structured data, frames whose
    bottom/top/sides are missing (constant to the edge right after a strongly structured line) and torn
    frames (consecutive rows that match far better after a sideways shift of several pixels).
    uint8/uint16 samples are checked as they are (every test is a ratio or a zero test), others as
    float32 on the 0…1 scale.
    """
    if mono.dtype in (np.uint8, np.uint16):
        img = mono  # row-strided views are fine for OpenCV: no copy
        # Integer sums of the absolute differences between neighbours: a line is constant exactly when
        # its sum is 0, and the consecutive-row sums are the torn-row measure (no min/max passes).
        depth = cv2.CV_32S if img.dtype == np.uint8 else cv2.CV_64F  # (OpenCV sums words only as doubles)
        vertical = cv2.absdiff(img[1:], img[:-1])
        moves = {1: cv2.reduce(cv2.absdiff(img[:, 1:], img[:, :-1]), 1, cv2.REDUCE_SUM, dtype=depth).ravel(),
                 0: cv2.reduce(vertical, 0, cv2.REDUCE_SUM, dtype=depth).ravel()}
        if not moves[1].any() and not moves[0].any():
            return 1
        flat_lines = {axis: not moves[axis].all() for axis in (1, 0)}
        d = cv2.reduce(vertical, 1, cv2.REDUCE_SUM, dtype=depth).ravel() / img.shape[1]
    else:
        img = np.ascontiguousarray(mono, dtype=np.float32)
        row_max, row_min = img.max(axis=1), img.min(axis=1)  # (numpy: 6× faster than cv2.reduce per row)
        if float(row_max.max()) - float(row_min.min()) < 1e-5:
            return 1
        # A line's standard deviation is at least its range / sqrt(2 n); when every line's range clears
        # 1e-6·sqrt(2 n) no line is constant and the (3× dearer) standard deviations are not needed.
        ranges = {1: row_max - row_min, 0: img.max(axis=0) - img.min(axis=0)}
        flat_lines = {axis: float(ranges[axis].min()) < 1e-6 * np.sqrt(2.0 * img.shape[axis]) * 1.001
                      for axis in (1, 0)}
        d = cv2.reduce(cv2.absdiff(img[1:], img[:-1]), 1, cv2.REDUCE_AVG, dtype=cv2.CV_64F).ravel()
    std: dict[int, np.ndarray] = {}

    def line_std(axis: int) -> np.ndarray:
        if axis not in std:  # E[x²] − E[x]² in double, by OpenCV reductions: 2.4× faster than np.std
            mean = cv2.reduce(img, axis, cv2.REDUCE_AVG, dtype=cv2.CV_64F).ravel()
            square = cv2.reduce(cv2.multiply(img, img, dtype=cv2.CV_32F), axis, cv2.REDUCE_AVG,
                                dtype=cv2.CV_64F).ravel()
            std[axis] = np.sqrt(np.maximum(square - mean * mean, 0.0))
        return std[axis]

    for axis in (1, 0):
        if flat_lines[axis]:
            dropped, missing = _constant_lines(line_std(axis), float(line_std(axis).max()))
            if dropped:
                return 2
            if missing:
                return 3
    # Torn rows: a consecutive-row difference that spikes above its neighbours; confirmed when the
    # two rows match far better after a sideways shift of a few pixels.
    if d.size >= 7:
        pad = np.concatenate((np.full(3, d[0]), d, np.full(3, d[-1])))  # edges repeated
        around = np.maximum.reduce([pad[k:k + d.size] for k in (0, 1, 2, 4, 5, 6)])
        spike = d / (around + 1e-6)
        for y in np.argsort(-spike, kind="stable")[:4] if spike.max() >= 1.5 else ():
            if spike[y] < 1.5:
                continue
            a, b = img[y].astype(np.float32), img[y + 1].astype(np.float32)
            if a.std() < 0.25 * line_std(1).max():
                continue
            shifts = [t for t in range(2, 17) if t < a.size // 4]
            best = min(min(float(np.abs(a[t:] - b[:-t]).mean()), float(np.abs(a[:-t] - b[t:]).mean()))
                       for t in shifts)
            if best < 0.5 * d[y]:
                return 4
    return 0
