"""Local (per-AP) shifts of a frame against the reference, and replacement of lost measurements.

Gauss–Newton (Lucas–Kanade) fits with a Gaussian window on the frame's pixels as they are, at whole-pixel
offsets from each AP's box: a fit on every 2nd pixel finds the whole pixel nearest the match, a fit on
every pixel there and one at its diagonal neighbour, blended by the offset, give the sub-pixel shift
(the blend cancels the error linear in the offset). Nothing is resampled: the template's side of every fit
(its least-squares projections, with terms for a blur difference, for the blur's interaction with the
shift and for the second order of the shift, which the whole-pixel offset of up to ~½ px would
otherwise bias) is computed once per AP, so a frame costs a few slices and one batched product per
step for all its APs. A ZNCC search at half resolution over the search radius finds the match first
where the fits, started at the frame's global shift, do not settle. Measured on synthetic discs this
beats a parabolic ZNCC peak fit, which pulls toward whole pixels, and is cheaper than repeated
template searches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from luckystack.imaging.registration import extract, half, match_shift

AFFINE = True
MATCH_SIGMA = 1.0  # both images are smoothed by this before matching (noise robustness)
COARSE_STEP = 2  # Lucas–Kanade first converges on every 2nd pixel (4× cheaper), then one step on all
COARSE_ITERATIONS = 3
MAX_STEP = 1  # px: the most one Gauss–Newton step moves an AP (a linearisation is not trusted further)
RECENTRE = 0.6  # px: a full-resolution fit further than this from its whole-pixel offset is fitted again
#                 at the whole pixel nearest it
SETTLE_REACH = 1.5  # px: a strided estimate this close to its whole-pixel offset is trusted to the nearest pixel
SECOND_ORDER = True
BLUR_SHIFT = True
START_ITERATIONS = 6  # strided iterations from the global shift before an AP that has not settled is searched
SETTLED_CORRELATION = 0.8  # an AP settled below this correlation (a wrong local optimum) is searched too
GATHER_SAMPLES = 1024  # samples per AP up to which a subset's rows are copied for one batched product
#                        (beyond, a product per AP costs less than the copy)


def match_blur(mono: np.ndarray, taps: int = 0) -> np.ndarray:
    """The smoothing applied to frames and reference before matching: a Gaussian of :data:`MATCH_SIGMA`
    over ``taps`` px (0: OpenCV's choice for the sigma, 9 px)."""
    return cv2.GaussianBlur(np.ascontiguousarray(mono, np.float32), (taps, taps), MATCH_SIGMA)


class LkGroup(NamedTuple):
    """Precomputed Gauss–Newton and correlation terms of the APs ``idx`` (all one size), sampled on
    every ``step``-th pixel: ``side`` samples per row, arrays flattened over the ``side``² samples."""

    idx: np.ndarray  # (g,) the APs
    side: int
    rows: np.ndarray  # (g, 5, side²) a patch's fitted gain, gain·dy, gain·dx, the Gaussian weight ×
    #                   weighted-centred template (its covariance with the patch) and the weight (its mean)
    weight: np.ndarray  # (side²,) the Gaussian weight, summing to 1
    var: np.ndarray  # (g,) the centred template's weighted variance (float64)
    step: int


@dataclass(frozen=True)
class Templates:
    """Reference AP boxes at half resolution, the boxes' top-left corners and continuous centres in
    reference (frame) coordinates, and the Gauss–Newton terms per size group."""

    coarse: list[np.ndarray]
    top: np.ndarray  # (A,) int: the box's first row
    left: np.ndarray
    cy: np.ndarray  # continuous box centre
    cx: np.ndarray
    sizes: np.ndarray
    lk: list[LkGroup]  # per size group
    lk_coarse: list[LkGroup]  # the same on every COARSE_STEP-th pixel, for the first iterations


LK_BATCH = 8  # APs whose terms are computed together: ~1 MB of float64 temporaries per AP of 64 px, so
#                a Moon's 198 APs at once took 191 MB (in every process that aligns), in batches of 8 the least


def _lk_groups(full: list[np.ndarray], idx: np.ndarray, steps: tuple[int, ...], window: float = 0.25
               ) -> list[LkGroup]:
    """:func:`_lk_group_terms` of the APs ``idx`` (all one size) for each of ``steps``, :data:`LK_BATCH`
    APs at a time (each AP's terms are its own: the same values in any batch)."""
    parts = [_lk_group_terms(full, idx[s:s + LK_BATCH], steps, window) for s in range(0, len(idx), LK_BATCH)]
    out = []
    for k, step in enumerate(steps):
        first = parts[0][k]
        if len(parts) == 1:
            out.append(first)
            continue
        out.append(LkGroup(idx, first.side, np.concatenate([q[k].rows for q in parts]), first.weight,
                           np.concatenate([q[k].var for q in parts]), step))
    return out


def _derivatives(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d/dy, d/dx) of the boxes ``t`` (g, s, s): the 5-point central difference inside, 2-point at the
    edges. The shift is read off one linearisation at a whole-pixel offset, so the gradient's scale
    matters: the 3-point difference underestimates it by a few % at the frequencies that carry a shift."""
    out = []
    for axis in (1, 2):
        d = np.gradient(t, axis=axis)
        inner = [slice(None)] * 3
        inner[axis] = slice(2, -2)
        a = lambda k: t[tuple(slice(2 + k, t.shape[axis] - 2 + k) if i == axis else slice(None)  # noqa: E731
                              for i in range(3))]
        d[tuple(inner)] = (8 * (a(1) - a(-1)) - (a(2) - a(-2))) / 12
        out.append(d)
    return out[0], out[1]


def _lk_group_terms(full: list[np.ndarray], idx: np.ndarray, steps: tuple[int, ...], window: float = 0.25
                    ) -> list[LkGroup]:
    """Precomputed Gaussian-weighted least-squares terms for the APs ``idx`` (all one size).

    A frame patch F is modelled as ``a·T + b − a·δ·∇T + c·∇²T + …``: the template, an offset, a small
    shift δ and a blur difference (a Gaussian blur of variance v changes T by (v/2)·∇²T), the affine
    terms of a field varying inside the box, and the other second-order terms of the shift (T's
    Hessian: the patch is read at a whole-pixel offset up to ~½ px from the match, and a lopsided
    δ²·∂²T would otherwise bias δ). Fitting the blur term keeps a frame sharper or blurrier than the
    reference from being read as a shift, which otherwise biases every AP whose content is lopsided in
    its window (a limb, a crater rim) by a large fraction of a pixel. One group per ``steps``: a step
    > 1 fits on every step-th pixel of the box only (a cheap first pass). ``window``: the Gaussian weight's sigma as a
    fraction of the box size. The projection gives a patch's fitted gain and shift·gain, all an
    iteration uses (the other terms are fitted so that they do not bias those, and are not needed
    themselves).
    """
    t = np.stack([full[a] for a in idx]).astype(np.float64)  # (g, s, s)
    s = t.shape[1]
    r = np.arange(s) - (s - 1) / 2
    w1 = np.exp(-0.5 * (r / (s * window)) ** 2)
    w = w1[:, None] * w1[None, :]
    gy, gx = _derivatives(t)
    lap = np.zeros_like(t)
    lap[:, 1:-1, 1:-1] = (t[:, :-2, 1:-1] + t[:, 2:, 1:-1] + t[:, 1:-1, :-2] + t[:, 1:-1, 2:]
                          - 4 * t[:, 1:-1, 1:-1])
    yy, xx = r[:, None] / s, r[None, :] / s
    terms = [t, gy, gx, lap]
    if AFFINE:
        terms += [yy * gy, xx * gy, yy * gx, xx * gx]
    if SECOND_ORDER:
        gyy, gxy = _derivatives(gy)
        _, gxx = _derivatives(gx)
        terms += [gyy - gxx, gxy]
    if BLUR_SHIFT:
        ly, lx = _derivatives(lap)
        terms += [ly, lx]
    whole = np.stack(terms, 1)  # (g, k, s, s)
    return [_projections(whole[:, :, ::step, ::step], w[::step, ::step], idx, step) for step in steps]


def _projections(basis: np.ndarray, w: np.ndarray, idx: np.ndarray, step: int) -> LkGroup:
    """The weighted least-squares projections of ``basis`` (g, k, n, n) under the weight ``w`` (n, n),
    each term centred on its weighted mean (the offset b drops out). The centring is applied to the
    products (Σw·b·bᵀ − m·mᵀ, m = Σw·b), not to the terms: one pass over them less."""
    g, k, n = basis.shape[:3]
    w = (w / w.sum()).reshape(n * n)
    basis = basis.reshape(g, k, n * n)
    wb = basis * w
    mean = np.matmul(basis, w)  # (g, k)
    normal = np.matmul(wb, basis.transpose(0, 2, 1)) - mean[:, :, None] * mean[:, None, :]
    solve = np.linalg.pinv(normal)[:, :3]  # gain, gain·dy, gain·dx
    proj = np.matmul(solve, wb) - np.matmul(solve, mean[:, :, None]) * w
    covariance = wb[:, :1] - mean[:, :1, None] * w  # the weight × the weighted-centred template
    rows = np.concatenate([proj, covariance, np.broadcast_to(w, (g, 1, n * n))], axis=1)
    return LkGroup(idx, n, np.ascontiguousarray(rows, np.float32), w.astype(np.float32), normal[:, 0, 0], step)


def make_templates(ref_blur: np.ndarray, centres: np.ndarray, sizes: np.ndarray,
                   y0: int, x0: int, window: float = 0.25) -> Templates:
    """Cut the AP boxes out of the (matched-blurred) reference over the crop at offset (y0, x0);
    ``window`` is the sigma of the Gauss–Newton weight as a fraction of the box (see _lk_group_terms)."""
    ref_half = half(ref_blur)
    full, coarse, tops, lefts = [], [], [], []
    for (cy, cx), s in zip(centres, sizes):
        ty, tx = int(cy) - int(s) // 2, int(cx) - int(s) // 2
        full.append(np.ascontiguousarray(ref_blur[ty:ty + s, tx:tx + s]))
        cyc, cxc = ty + (s - 1) / 2.0, tx + (s - 1) / 2.0  # continuous centre in crop coordinates
        coarse.append(extract(ref_half, (cyc - 0.5) / 2, (cxc - 0.5) / 2, s // 2, s // 2))
        tops.append(y0 + ty)
        lefts.append(x0 + tx)
    sizes = np.asarray(sizes, np.int32)
    top, left = np.array(tops, np.int64), np.array(lefts, np.int64)
    groups = [np.flatnonzero(sizes == v) for v in np.unique(sizes)]
    fine, strided = zip(*[_lk_groups(full, g, (1, COARSE_STEP), window) for g in groups])
    return Templates(coarse, top, left, top + (sizes - 1) / 2.0, left + (sizes - 1) / 2.0, sizes, list(fine),
                     list(strided))


def _fit(windows: np.ndarray, group: LkGroup, at: np.ndarray, corner: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray]:
    """The shift (m, 2) beyond the whole-pixel offset and the Gaussian-weighted ZNCC (m,) of the group's
    members ``at`` (m,), their strided patches read from ``windows`` (the frame's patches on the group's
    step, indexed by top-left corner) at ``corner`` (m, 2)."""
    patches = windows[corner[:, 0], corner[:, 1]].reshape(len(at), 1, group.side ** 2)
    coef, square = _products(group, at, patches)
    return _shift(coef[:, :, 0]), _correlation(group, at, coef[:, :, 0], square)


def _fit_pair(img: np.ndarray, group: LkGroup, at: np.ndarray, corner: np.ndarray, side: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-resolution fits of the group's members ``at`` (m,) at ``corner`` (m, 2) in ``img`` and at
    its diagonal neighbour ``corner + side`` ((m, 2) of ±1): the shift (m, 2) and correlation (m,) of
    the first, the shift (m, 2) of the second; both fits of an AP are one product, its rows read once."""
    s = group.side
    pairs = np.empty((len(at), 2, s, s), np.float32)
    for f, (y, x), (sy, sx) in zip(pairs, corner.tolist(), side.tolist()):
        f[0] = img[y:y + s, x:x + s]  # slices: ~10× faster than a fancy index of the windows
        f[1] = img[y + sy:y + sy + s, x + sx:x + sx + s]
    coef, square = _products(group, at, pairs.reshape(len(at), 2, s * s))
    return _shift(coef[:, :, 0]), _correlation(group, at, coef[:, :, 0], square), _shift(coef[:, :, 1])


def _products(group: LkGroup, at: np.ndarray, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of the group's members ``at`` (m,) times their patches (m, p, side²): (m, 5, p), and
    the weighted sum of squares of each member's first patch (m,). Each AP's products are its own (a
    matrix product of its rows and patches, a dot product; one product over several APs' rows would
    sum them in an order that depends on how many there are), so its values do not depend on the
    others measured with it."""
    rows = group.rows
    if len(at) == len(rows):  # the whole group: one batched product, its rows read in place
        coef = np.matmul(rows, patches.transpose(0, 2, 1))
    elif rows.shape[2] <= GATHER_SAMPLES:  # small rows: copied together, one batched product
        coef = np.matmul(rows[at], patches.transpose(0, 2, 1))
    else:  # the same products, AP by AP
        coef = np.stack([rows[j] @ p.T for j, p in zip(at.tolist(), patches)])
    first = patches[:, 0]
    square = np.matmul((first * group.weight)[:, None, :], first[:, :, None])[:, 0, 0]
    return coef.astype(np.float64), square.astype(np.float64)


def _shift(coef: np.ndarray) -> np.ndarray:
    """The shift (m, 2) from the fitted gain and gain·shift (the first three of ``coef`` (m, 5))."""
    gain = coef[:, 0]
    safe = np.abs(gain) > 1e-6
    return np.where(safe[:, None], -coef[:, 1:3] / np.where(safe, gain, 1.0)[:, None], 0.0)


def _correlation(group: LkGroup, at: np.ndarray, coef: np.ndarray, square: np.ndarray) -> np.ndarray:
    """The Gaussian-weighted ZNCC (m,) from a patch's covariance with the template and its mean (the
    last two of ``coef`` (m, 5)) and weighted sum of squares ``square``."""
    mean = coef[:, 4]
    varf = np.maximum(square - mean * mean, 0.0)
    return coef[:, 3] / np.sqrt(np.maximum(group.var[at] * varf, 1e-24))


def _strided_windows(img: np.ndarray, size: int, step: int) -> np.ndarray:
    """A view (H − size + 1, W − size + 1, n, n) of the ``size`` box at every top-left corner of ``img``
    (C-contiguous), sampled every ``step`` px (n = ceil(size / step)); built directly, as
    ``sliding_window_view`` costs ~50 µs a call."""
    h, w = img.shape
    n = -(-size // step)
    rs, cs = img.strides
    return np.ndarray((h - size + 1, w - size + 1, n, n), img.dtype, img, 0, (rs, cs, rs * step, cs * step))


def _settle(windows: np.ndarray, group: LkGroup, at: np.ndarray, corner: np.ndarray, k: np.ndarray,
            members: np.ndarray, iterations: int, low: np.ndarray, high: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strided Gauss–Newton steps between whole-pixel offsets for the ``members`` (m,) of the measured
    APs (their group positions ``at``, box corners ``corner`` and whole-pixel offsets ``k``, updated in
    place): a member whose estimate lies within :data:`SETTLE_REACH` px of its offset settles at the
    whole pixel nearest it; one further away moves by at most MAX_STEP and tries again, at most
    ``iterations`` times; offsets stay within ``low``…``high``. Returns whether each settled (m,), its
    last correlation (m,) and its estimate relative to its new offset (m, 2; 0 where it did not settle)."""
    settled = np.zeros(len(members), bool)
    score = np.zeros(len(members))
    offset = np.zeros((len(members), 2))
    todo = np.arange(len(members))
    for _ in range(iterations):
        a = members[todo]
        delta, score[todo] = _fit(windows, group, at[a], corner[a] + k[a])
        near = np.abs(delta).max(axis=1) <= SETTLE_REACH
        step = np.where(near[:, None], np.rint(delta), np.sign(delta) * MAX_STEP).astype(np.int64)
        k[a] = np.minimum(np.maximum(k[a] + step, low), high)
        settled[todo[near]] = True
        offset[todo[near]] = delta[near] - step[near]
        todo = todo[~near]
        if not todo.size:
            break
    return settled, score, offset


def _search(frame_half: np.ndarray, tpl: Templates, a: int, gdy: float, gdx: float, radius: int
            ) -> tuple[float, float, bool]:
    """AP ``a``'s whole-frame shift (dy, dx) from a ZNCC search at half resolution over ``radius`` px
    around the global shift, and whether the peak lies strictly inside the search range."""
    rc = max(1, (radius + 1) // 2)
    cs = int(tpl.sizes[a]) // 2
    fy, fx = tpl.cy[a] + gdy, tpl.cx[a] + gdx
    win = extract(frame_half, (fy - 0.5) / 2, (fx - 0.5) / 2, cs + 2 * rc, cs + 2 * rc)
    oy, ox, _, inside = match_shift(tpl.coarse[a], win)
    return gdy + 2 * (oy - rc), gdx + 2 * (ox - rc), inside


def measure(frame_blur: np.ndarray, tpl: Templates, gdy: float, gdx: float, radius: int,
            aps: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local shifts (A, 2) of one frame beyond its global shift, match correlation (A,), found (A,), of
    the APs ``aps`` ((A,) bool; default all; the rows of others are 0, 0 and True). An AP's values do not
    depend on which others are measured with it. How: :func:`measure_points`, which also gives the
    strided estimates and can leave out the full-resolution fits.
    """
    m = measure_points(frame_blur, tpl, gdy, gdx, radius, aps)
    return m.shift, m.score, m.found


class Measured(NamedTuple):
    """One frame's measurements (rows of APs not measured: 0, 0, True): the shift (A, 2) beyond the
    global shift, its correlation and whether it was found, from the full-resolution fits where they
    were made, else the strided estimate; and the strided estimate itself (the whole-pixel offset the
    strided steps settled at plus their last estimate's sub-pixel part), its correlation and whether it
    was found, for every AP measured."""

    shift: np.ndarray
    score: np.ndarray
    found: np.ndarray
    coarse_shift: np.ndarray
    coarse_score: np.ndarray
    coarse_found: np.ndarray


def measure_points(frame_blur: np.ndarray, tpl: Templates, gdy: float, gdx: float, radius: int,
                   aps: np.ndarray | None = None, fine: np.ndarray | None = None) -> Measured:
    """The :class:`Measured` shifts of one frame beyond its global shift of the APs ``aps`` ((A,) bool;
    default all), those of ``fine`` (default: all measured) with the full-resolution fits, the others
    with the strided steps alone (what judging a neighbour's measurement needs costs a third of it). An
    AP's values do not depend on which others are measured with it, nor its strided estimate on
    whether it is fitted at full resolution.

    Each window is fitted as template + offset + shift + blur difference + affine and second-order
    terms (see :func:`_lk_group_terms`) on the frame's pixels as they are, read at a whole-pixel offset
    from the box: no resampling. All APs of a size at once:
    - up to START_ITERATIONS Gauss–Newton steps on every COARSE_STEP-th pixel from the whole pixel
      nearest the global shift, each moving the AP to the whole pixel nearest its estimate, until
      that no longer moves it;
    - an AP that has not settled by then, has left the search radius or has settled below
      SETTLED_CORRELATION is searched (ZNCC at half resolution over ``radius``) and gets up to
      COARSE_ITERATIONS strided steps from the match;
    - a fit on every pixel at the settled offset and one at its diagonal neighbour on the side of the
      strided estimate, blended per axis by the first one's offset, give the sub-pixel shift (both
      again at the whole pixel nearest it where that lies more than RECENTRE px away).
    The Gaussian weight keeps the box edges, where content enters and leaves, from biasing the shift.
    The correlation is the Gaussian-weighted ZNCC of the full-resolution patch at the settled offset.
    ``found`` is False where a search's peak sat on its border or the shift left the search radius
    (the match may lie outside it). The strided estimate's correlation is that of its last step.
    """
    img = np.ascontiguousarray(frame_blur, np.float32)
    n_ap = len(tpl.sizes)
    start = np.array([gdy, gdx])
    shift = np.tile(start, (n_ap, 1))
    score = np.zeros(n_ap)
    searched = np.ones(n_ap, bool)  # False where a search's peak sat on its border
    coarse_shift = shift.copy()
    coarse_score = np.zeros(n_ap)
    base = np.rint(start).astype(np.int64)
    reach = radius + MAX_STEP + 1  # whole-pixel offsets stay within this of the global shift's
    frame_half = None
    for coarse, group in zip(tpl.lk_coarse, tpl.lk):
        idx = group.idx
        at = np.arange(len(idx)) if aps is None else np.flatnonzero(aps[idx])  # the measured members
        if at.size == 0:
            continue
        sel = idx[at]
        s = int(tpl.sizes[sel[0]])
        corner = np.stack([tpl.top[sel], tpl.left[sel]], axis=1)  # (m, 2) box corners in the frame
        pad_lo = np.maximum(0, -(corner.min(axis=0) + base - reach))
        pad_hi = np.maximum(0, corner.max(axis=0) + base + reach + s - img.shape)
        padded = img
        if pad_lo.any() or pad_hi.any():  # windows beyond the frame: its edge pixels continue
            padded = cv2.copyMakeBorder(img, int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1]),
                                        cv2.BORDER_REPLICATE)
        corner = corner + pad_lo
        strided = _strided_windows(padded, s, COARSE_STEP)
        low, high = base - reach + 1, base + reach - 1
        k = np.tile(base, (len(at), 1))  # each member's whole-pixel offset
        everyone = np.arange(len(at))
        settled, corr, offset = _settle(strided, coarse, at, corner, k, everyone, START_ITERATIONS, low, high)
        lost = np.flatnonzero(~settled | (np.abs(k - start).max(axis=1) > radius) | (corr < SETTLED_CORRELATION))
        if lost.size:
            frame_half = half(img) if frame_half is None else frame_half
            for j in lost.tolist():
                a = int(sel[j])
                dy, dx, searched[a] = _search(frame_half, tpl, a, gdy, gdx, radius)
                k[j] = np.minimum(np.maximum(np.rint([dy, dx]).astype(np.int64), low), high)
            _, corr[lost], offset[lost] = _settle(strided, coarse, at, corner, k, lost, COARSE_ITERATIONS, low,
                                                 high)
        coarse_shift[sel], coarse_score[sel] = k + offset, corr
        f = np.arange(len(at)) if fine is None else np.flatnonzero(fine[sel])  # the members fitted in full
        shift[sel], score[sel] = k + offset, corr
        if f.size == 0:
            continue
        at, sel, corner, k, offset = at[f], sel[f], corner[f], k[f], offset[f]
        # The full-resolution fit's error grows with the offset from its whole pixel (the frame's blur
        # and the shift interacting beyond the terms fitted): a second fit from the diagonal neighbour
        # on the side the strided estimate points to, blended per axis by the offset, cancels the part
        # linear in the offset (extrapolating a little where the fit lands on the other side).
        side = np.where(offset >= 0, 1, -1)
        delta, score[sel], beyond = _fit_pair(padded, group, at, corner + k, side)
        far = np.flatnonzero(np.abs(delta).max(axis=1) > RECENTRE)
        if far.size:
            moved = np.minimum(np.maximum(np.rint(k[far] + delta[far]).astype(np.int64), low), high)
            side[far] = np.where(k[far] + delta[far] >= moved, 1, -1)
            k[far] = moved
            delta[far], score[sel[far]], beyond[far] = _fit_pair(padded, group, at[far], corner[far] + k[far],
                                                                 side[far])
        delta = np.minimum(np.maximum(delta, -MAX_STEP), MAX_STEP)
        t = delta * side
        shift[sel] = k + (1 - t) * delta + t * (side + beyond)
    found = searched & np.all(np.abs(shift - start) <= radius, axis=1)
    coarse_found = searched & np.all(np.abs(coarse_shift - start) <= radius, axis=1)
    return Measured(shift - start, score, found, coarse_shift - start, coarse_score, coarse_found)


def replace_lost(shift: np.ndarray, score: np.ndarray, found: np.ndarray, nbrs: list[np.ndarray],
                 min_corr: float, max_jump: float) -> tuple[np.ndarray, np.ndarray]:
    """Replace lost AP measurements of one chunk of frames from neighbouring APs in the same frame.

    ``shift`` (n, A, 2), ``score``/``found`` (n, A). Lost: not found, ZNCC below ``min_corr``, or more
    than ``max_jump`` px from the median of its good neighbours. Lost shifts become that median (or
    the median of all good APs in the frame, or 0). Returns (shift, ok).
    """
    shift = shift.copy()
    ok = found & (score >= min_corr)
    good = ok.copy()
    for a, nb in enumerate(nbrs):  # each AP over all frames at once
        if nb.size < 2:
            continue
        rows = good[:, a] & (good[:, nb].sum(axis=1) >= 2)
        if rows.any():
            med = _masked_median(shift[rows][:, nb], good[rows][:, nb])
            ok[np.flatnonzero(rows)[np.hypot(*(shift[rows, a] - med).T) > max_jump], a] = False
    lost = ~ok
    for a, nb in enumerate(nbrs):
        rows = np.flatnonzero(lost[:, a])
        if rows.size == 0:
            continue
        use = ok[rows][:, nb] if nb.size else np.zeros((rows.size, 0), bool)
        near = use.any(axis=1)
        if near.any():
            shift[rows[near], a] = _masked_median(shift[rows[near]][:, nb], use[near])
        for i in rows[~near]:  # no good neighbour: the median of all good APs in the frame, or 0
            shift[i, a] = np.median(shift[i, ok[i]], axis=0) if ok[i].any() else 0.0
    return shift, ok


def _masked_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per row, the median (over axis 1) of ``values`` (n, k, 2) where ``mask`` (n, k); every row needs
    at least one True. Equal to np.median of the selected values, for all rows at once."""
    v = np.where(mask[..., None], values, np.inf)
    v.sort(axis=1)
    count = mask.sum(axis=1)
    lo, hi = (count - 1) // 2, count // 2
    r = np.arange(len(v))
    return (v[r, lo] + v[r, hi]) / 2
