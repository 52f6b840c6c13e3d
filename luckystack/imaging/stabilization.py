"""Global (whole-frame) shifts of a recording: planet (disc centroid + correlation) and surface (anchors).

The chunk functions take a frame stream and a range of frame indices so they run in worker processes;
each returns per-frame shifts (dy, dx), validity and reason codes (:data:`REASONS`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from luckystack.imaging.apshift import MATCH_SIGMA
from luckystack.imaging.registration import (
    binned_disc_centroid, bright_component, choose_anchors, disc_centroid, extract, half, match_shift,
)

HALF_MATCH_SIGMA = 0.5  # planet matching blur at half resolution (≈ match_blur's 1 px at full resolution)
COARSE_SIGMA = 0.5  # quarter-resolution blur before the coarse disc threshold (1 px at half resolution)
FIT_REACH = 4  # half-resolution px the template fit may move from the coarse centroid
FIT_ITERATIONS = 8
FIT_TOLERANCE = 0.01  # half-resolution px: the fit has settled when its last step is smaller
FIT_TRUST = 0.9  # a fit from the last frame's shift that matches worse is redone from the whole frame


def _planet_match_image(binned: np.ndarray) -> np.ndarray:
    """The half-resolution image the planet disc is matched on: the 2×2-binned frame, lightly smoothed.

    Blurring after binning (a quarter of the pixels) instead of before it keeps the per-frame cost low;
    template and frames go through the same steps, so the match is unbiased.
    """
    return cv2.GaussianBlur(binned, (0, 0), HALF_MATCH_SIGMA)

# Surface matching blur at half resolution: after the 2×2 binning, the same smoothing as match_blur's
# before it (the binning's own blur adds the same either way).
SURFACE_HALF_SIGMA = MATCH_SIGMA / 2


def surface_match_image(samples: np.ndarray) -> np.ndarray:
    """The half-resolution float32 image the surface anchors are matched on: the frame's grey samples (any
    dtype and scale, as :meth:`~luckystack.io.frames.FrameStream.read_samples` gives them) binned 2×2 as
    stored, then smoothed by :data:`SURFACE_HALF_SIGMA`.

    Binning first smooths a quarter of the pixels (10× less work than blurring the whole frame as float
    and binning it after); integer samples are binned to the nearest integer, far below their noise.
    Anchors and frames go through the same steps, and the match score is blind to the samples' scale."""
    return cv2.GaussianBlur(np.asarray(half(samples), np.float32), (0, 0), SURFACE_HALF_SIGMA)


REASONS = {
    1: "no object found",
    2: "object touches the frame edge",
    3: "surface anchor lost (no confident match)",
}


def _refine(template: np.ndarray, img: np.ndarray, cy: float, cx: float, dy: float, dx: float,
            margin: int, passes: int = 3) -> tuple[float, float, float, bool]:
    """Iterate ZNCC on a window resampled at the estimate (margin px each side); sub-pixel result."""
    th, tw = template.shape
    score = -1.0
    for _ in range(passes):
        win = extract(img, cy + dy, cx + dx, th + 2 * margin, tw + 2 * margin)
        oy, ox, score, inside = match_shift(template, win)
        if not inside:
            return dy, dx, score, False
        dy, dx = dy + oy - margin, dx + ox - margin
        if abs(oy - margin) < 0.25 and abs(ox - margin) < 0.25:
            break
    return dy, dx, score, True


@dataclass(frozen=True)
class PlanetReference:
    """The disc template (half resolution, smoothed), its centroid and the object's bounding box in
    reference coordinates, and what the per-frame fit needs of the template."""

    template: np.ndarray
    cy: float  # template centre, full-resolution reference coordinates
    cx: float
    disc_cy: float
    disc_cx: float
    threshold: float
    box: tuple[int, int, int, int]  # (top, bottom, left, right) of the thresholded object in their mean
    coarse_cy: float  # the first usable frame's coarse centroid (:func:`coarse_disc`), full resolution
    coarse_cx: float
    solve: np.ndarray  # (4, th·tw) least-squares solver of the template fit (:func:`fit_template`)
    centred: np.ndarray  # (th·tw,) the template minus its mean, for the match score
    centred_norm2: float
    centred_sum: float  # (its float32 rounding leaves it a little off 0)


def planet_reference(frames: list[np.ndarray], threshold: float) -> PlanetReference:
    """Mean of the first usable frames, aligned on their disc centroids, cut around the disc.

    Reference coordinates are those of the first usable frame.
    """
    from luckystack.imaging.registration import warp_crop

    discs = [(f, disc_centroid(f, threshold)) for f in frames]
    usable = [(f, d) for f, d in discs if d is not None and not d.touches_edge]
    if not usable:
        raise ValueError("no frame among the first ones shows a whole object on dark sky")
    f0, d0 = usable[0]
    h, w = f0.shape
    acc = np.zeros_like(f0)
    for f, d in usable:
        acc += warp_crop(f, d.cy - d0.cy, d.cx - d0.cx, h, w, interpolation=1)
    mean = acc / len(usable)
    box = (disc_centroid(mean, threshold) or d0).box
    r = int(math.sqrt(d0.area / math.pi) * 1.25) + 4  # disc radius plus limb margin
    y0, y1 = max(0, int(d0.cy) - r), min(h, int(d0.cy) + r)
    x0, x1 = max(0, int(d0.cx) - r), min(w, int(d0.cx) + r)
    y0, x0 = y0 - y0 % 2, x0 - x0 % 2
    y1, x1 = y1 - (y1 - y0) % 2, x1 - (x1 - x0) % 2
    tpl = np.ascontiguousarray(_planet_match_image(half(np.ascontiguousarray(mean[y0:y1, x0:x1]))))
    th, tw = tpl.shape
    # nan where the object is too small to find at a quarter of the resolution: frames are then found at half
    coarse = coarse_disc(quarter(f0), threshold) or (math.nan, math.nan, True)
    gy, gx = np.gradient(tpl.astype(np.float64))
    design = np.stack([tpl.ravel().astype(np.float64), np.ones(tpl.size), gy.ravel(), gx.ravel()], axis=1)
    solve = np.ascontiguousarray(np.linalg.pinv(design), np.float32)
    centred = (tpl - tpl.mean()).ravel().astype(np.float32)
    return PlanetReference(tpl, y0 + (2 * th - 1) / 2, x0 + (2 * tw - 1) / 2, d0.cy, d0.cx, threshold, box,
                           coarse[0], coarse[1], solve, centred, float(centred @ centred),
                           float(cv2.sumElems(centred)[0]))


def quarter(samples: np.ndarray) -> np.ndarray:
    """float32 4×4-binned image of (H, W) samples of any dtype (pixel i covers full-resolution pixels
    4i … 4i+3), by two 2×2 binnings (integer samples are rounded in between: coarse use only)."""
    h, w = samples.shape[0] // 4 * 4, samples.shape[1] // 4 * 4
    x = cv2.resize(samples[:h, :w], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(x, (w // 4, h // 4), interpolation=cv2.INTER_AREA).astype(np.float32)


def coarse_disc(small: np.ndarray, threshold: float) -> tuple[float, float, bool] | None:
    """(cy, cx, touches the frame edge) of the largest bright object in a quarter-resolution frame
    (:func:`quarter`), in full-resolution px: :func:`binned_disc_centroid` at a quarter of the pixels,
    where the disc fit starts from."""
    small = cv2.GaussianBlur(small, (0, 0), COARSE_SIGMA)
    lo, hi = float(small.min()), float(small.max())
    if hi - lo <= 0:
        return None
    thr = lo + threshold * (hi - lo)
    found = bright_component(small, thr, pad=2, close=3)
    if found is None:
        return None
    cy, cx, _area, touches, _box = found
    return 4 * cy + 1.5, 4 * cx + 1.5, touches


def fit_box(ref: PlanetReference, dy: float, dx: float) -> tuple[int, int, int, int]:
    """(top, bottom, left, right), even, of the full-resolution pixels :func:`fit_template` reads for the
    estimate (dy, dx): the template's window, its reach and the blur's margin."""
    th, tw = ref.template.shape
    pad = FIT_REACH + 4  # the reach, the bilinear sample's neighbour and the blur's 2 px
    top = int(math.floor((ref.cy - 0.5 + dy) / 2 - (th - 1) / 2)) - pad
    left = int(math.floor((ref.cx - 0.5 + dx) / 2 - (tw - 1) / 2)) - pad
    return 2 * top, 2 * (top + th + 2 * pad), 2 * left, 2 * (left + tw + 2 * pad)


def fit_template(ref: PlanetReference, window: np.ndarray, box: tuple[int, int, int, int], dy: float,
                 dx: float) -> tuple[float, float, float] | None:
    """Sub-pixel (dy, dx, match score) of the disc template in a frame, from the estimate (dy, dx) in
    full-resolution px; ``window`` holds the frame's grey samples (any dtype and scale) of
    ``box = fit_box(ref, dy, dx)``. None when the fit does not settle within :data:`FIT_REACH`
    half-resolution px of the estimate.

    Gauss–Newton on the template's own gradients (inverse compositional): the window, binned, smoothed
    as the template was and resampled at the estimate, is fitted as gain × template + offset + gradient ×
    residual shift, with the template's solver computed once: a few dot products per iteration instead
    of a correlation surface. Gain and offset absorb the samples' scale.
    """
    th, tw = ref.template.shape
    # integer samples are binned as stored (to the nearest level, far below their noise): no float copy
    binned = half(window) if window.dtype in (np.uint8, np.uint16) else half(np.asarray(window, np.float32))
    img = _planet_match_image(np.asarray(binned, np.float32))
    y0 = (ref.cy - 0.5 + dy) / 2 - box[0] / 2  # the template's centre in the binned window
    x0 = (ref.cx - 0.5 + dx) / 2 - box[2] / 2
    ey = ex = 0.0
    for _ in range(FIT_ITERATIONS):
        win = cv2.getRectSubPix(img, (tw, th), (x0 + ex, y0 + ey)).ravel()
        gain, _, gy, gx = ref.solve @ win
        if gain <= 0:
            return None
        sy, sx = float(gy / gain), float(gx / gain)
        ey, ex = ey - sy, ex - sx
        if abs(ey) > FIT_REACH or abs(ex) > FIT_REACH:
            return None
        if abs(sy) < FIT_TOLERANCE and abs(sx) < FIT_TOLERANCE:
            break
    else:
        return None
    # the correlation of the window less its mean, from its sums (no centred copy of the window)
    total = cv2.sumElems(win)[0]
    covariance = float(win @ ref.centred) - total / win.size * ref.centred_sum
    variance = max(cv2.norm(win, cv2.NORM_L2SQR) - total * total / win.size, 0.0)
    score = covariance / max(float(np.sqrt(variance * ref.centred_norm2)), 1e-30)
    return dy + 2 * ey, dx + 2 * ex, score


def _inside(box: tuple[int, int, int, int], height: int, width: int) -> bool:
    return box[0] >= 0 and box[2] >= 0 and box[1] <= height and box[3] <= width


def planet_chunk(stream, indices: range, ref: PlanetReference, refine: bool
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shifts, valid, reason and match score for frames ``indices`` of a planet recording."""
    n = len(indices)
    shift = np.zeros((n, 2))
    valid = np.zeros(n, bool)
    reason = np.zeros(n, np.int8)
    score = np.zeros(n)
    prev: tuple[float, float] | None = None  # the last frame's shift, where the next fit starts
    for k, i in enumerate(indices):
        if refine:
            fit = None
            if prev is not None and _inside(box := fit_box(ref, *prev), stream.height, stream.width):
                fit = fit_template(ref, stream.read_samples(i, box)[0], box, *prev)
            if fit is None or fit[2] < FIT_TRUST:  # find the object in the whole frame first
                prev, fit = None, None
                samples, factor = stream.read_samples(i)
                coarse = coarse_disc(quarter(samples), ref.threshold) if math.isfinite(ref.coarse_cy) else None
                if coarse is not None and not coarse[2]:
                    dy, dx = coarse[0] - ref.coarse_cy, coarse[1] - ref.coarse_cx
                    box = fit_box(ref, dy, dx)
                    if _inside(box, *samples.shape[:2]):
                        fit = fit_template(ref, samples[box[0]:box[1], box[2]:box[3]], box, dy, dx)
            if fit is not None:
                shift[k], score[k], valid[k] = fit[:2], fit[2], True
                prev = fit[:2]
                continue
            # No object found at a quarter of the resolution, or at the edge, or no settled fit: the
            # half-resolution centroid decides, and the correlation surface refines.
            binned = half(np.multiply(samples, np.float32(factor), dtype=np.float32))
        else:
            binned = half(stream.read_mono(i))
        disc = binned_disc_centroid(binned, ref.threshold)
        if disc is None:
            reason[k] = 1
            continue
        dy, dx = disc.cy - ref.disc_cy, disc.cx - ref.disc_cx
        if disc.touches_edge:
            reason[k] = 2
            shift[k] = dy, dx
            continue
        if refine:  # the template fit did not settle: search the correlation surface
            img = _planet_match_image(binned)
            # Half-resolution coordinates: full y = 2 yh + 0.5.
            hy, hx, sc, ok = _refine(ref.template, img, (ref.cy - 0.5) / 2, (ref.cx - 0.5) / 2,
                                     dy / 2, dx / 2, margin=3)
            if ok:
                dy, dx, score[k] = 2 * hy, 2 * hx, sc
        shift[k] = dy, dx
        valid[k] = True
    return shift, valid, reason, score


@dataclass(frozen=True)
class SurfaceReference:
    """Anchor boxes (half resolution) cut from the reference frame, best first."""

    templates: list[np.ndarray]
    cy: list[float]  # box centres in half-resolution reference coordinates
    cx: list[float]
    coarse: list[np.ndarray]  # quarter-resolution templates for the whole-frame search
    search: int  # frame-to-frame search radius in half-resolution px


def surface_reference(first: np.ndarray, box: int | None, search: int,
                      anchor: tuple[int, int, int] | None = None, count: int = 3) -> SurfaceReference:
    """Pick anchor patches (most 2-D structure) on the reference frame (its grey samples, as
    :func:`surface_match_image` takes them), or use the given (x, y, size)."""
    img = surface_match_image(first)
    h, w = img.shape
    if anchor is not None:
        x, y, s = anchor
        s2 = max(8, s // 2)
        corners = [(y // 2 - s2 // 2, x // 2 - s2 // 2)]
        if not (0 <= corners[0][0] <= h - s2 and 0 <= corners[0][1] <= w - s2):
            raise ValueError(f"the anchor at x={x}, y={y} of size {s} does not fit in the frame")
    else:
        s2 = box // 2 if box else max(16, min(h, w) // 5)
        corners = choose_anchors(img, s2, margin=min(search, max(0, (min(h, w) - s2) // 2 - 1)), count=count)
    tpls = [np.ascontiguousarray(img[y:y + s2, x:x + s2]) for y, x in corners]
    coarse = [np.ascontiguousarray(half(t)) for t in tpls]
    return SurfaceReference(tpls, [y + (s2 - 1) / 2 for y, _ in corners],
                            [x + (s2 - 1) / 2 for _, x in corners], coarse, search)


def _whole_frame_search(img: np.ndarray, ref: SurfaceReference) -> tuple[float, float] | None:
    """Coarse (dy, dx) in half-resolution px by searching the best anchor over the whole frame."""
    small = half(img)
    best = None
    for a, t in enumerate(ref.coarse):
        if t.shape[0] >= small.shape[0] or t.shape[1] >= small.shape[1]:
            continue
        oy, ox, sc, _ = match_shift(t, small)
        ty, tx = (ref.cy[a] - 0.5) / 2 - (t.shape[0] - 1) / 2, (ref.cx[a] - 0.5) / 2 - (t.shape[1] - 1) / 2
        if best is None or sc > best[0]:
            best = (sc, 2 * (oy - ty), 2 * (ox - tx))
    if best is None or best[0] < 0.3:
        return None
    return best[1], best[2]


def surface_chunk(stream, indices: range, ref: SurfaceReference, min_score: float = 0.5
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Track the anchors through frames ``indices``: a whole-frame search starts the chunk (and
    re-acquires after a loss); later frames search around the previous frame's shift. Each frame uses
    the best-matching anchor that stays clear of the frame edge (re-anchoring as the view drifts)."""
    n = len(indices)
    shift = np.zeros((n, 2))
    valid = np.zeros(n, bool)
    reason = np.zeros(n, np.int8)
    score = np.zeros(n)
    prev: tuple[float, float] | None = None
    for k, i in enumerate(indices):
        img = surface_match_image(stream.read_samples(i)[0])
        h, w = img.shape
        start = prev if prev is not None else _whole_frame_search(img, ref)
        best = None
        if start is not None:
            for a, t in enumerate(ref.templates):
                th, tw = t.shape
                cy, cx = ref.cy[a] + start[0], ref.cx[a] + start[1]
                m = ref.search
                if cy - th / 2 - m < 0 or cx - tw / 2 - m < 0 or cy + th / 2 + m > h or cx + tw / 2 + m > w:
                    continue  # this anchor has drifted towards the edge: use another
                win = extract(img, cy, cx, th + 2 * m, tw + 2 * m)
                oy, ox, sc, inside = match_shift(t, win)
                if not inside or sc < min_score or (best is not None and sc <= best[0]):
                    continue
                dy, dx = start[0] + oy - m, start[1] + ox - m
                dy, dx, sc, ok = _refine(t, img, ref.cy[a], ref.cx[a], dy, dx, margin=2)
                if ok:
                    best = (sc, dy, dx)
        if best is None:
            reason[k] = 3
            prev = None
            continue
        score[k], dy, dx = best
        prev = (dy, dx)
        shift[k] = 2 * dy, 2 * dx
        valid[k] = True
    return shift, valid, reason, score


def common_crop(shift: np.ndarray, valid: np.ndarray, height: int, width: int) -> list[int]:
    """[y0, x0, h, w] in reference coordinates seen by every valid frame (aligned crop stays inside)."""
    s = shift[valid]
    if s.size == 0:
        raise ValueError("no valid frame to define the common area")
    y0 = max(0, math.ceil(-s[:, 0].min() - 1e-9))
    x0 = max(0, math.ceil(-s[:, 1].min() - 1e-9))
    h = min(height - y0, math.floor(height - 1 - s[:, 0].max() - y0 + 1e-9) + 1)
    w = min(width - x0, math.floor(width - 1 - s[:, 1].max() - x0 + 1e-9) + 1)
    if h < 16 or w < 16:
        raise ValueError("the frames drift so much that their common area is smaller than 16×16 px")
    return [int(y0), int(x0), int(h), int(w)]


def has_dark_sky(mono: np.ndarray) -> bool:
    """True when most of the frame border is dark: an isolated object (planet mode)."""
    lo, hi = float(mono.min()), float(mono.max())
    border = np.concatenate([mono[0], mono[-1], mono[:, 0], mono[:, -1]])
    return bool(hi > lo and np.mean(border < lo + 0.15 * (hi - lo)) > 0.6)
