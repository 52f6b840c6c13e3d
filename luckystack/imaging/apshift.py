"""Local (per-AP) shifts of a frame against the reference, and replacement of lost measurements.

Coarse-to-fine: a ZNCC search at half resolution over the search radius finds the match, then
Gauss–Newton (Lucas–Kanade) iterations with a Gaussian window at full resolution give the sub-pixel
shift. Measured on synthetic discs this beats a parabolic ZNCC peak fit, which pulls toward whole
pixels, and is cheaper than repeated template searches.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from luckystack.imaging.registration import extract, match_shift

AFFINE = True
MATCH_SIGMA = 1.0  # both images are smoothed by this before matching (noise robustness)


def match_blur(mono: np.ndarray) -> np.ndarray:
    """The smoothing applied to frames and reference before matching."""
    return cv2.GaussianBlur(np.ascontiguousarray(mono, np.float32), (0, 0), MATCH_SIGMA)


def half(img: np.ndarray) -> np.ndarray:
    """2×2 binned image (pixel i covers full-resolution pixels 2i and 2i+1)."""
    h, w = img.shape
    return cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class Templates:
    """Reference AP boxes at full and half resolution, and their centres in reference coordinates."""

    full: list[np.ndarray]
    coarse: list[np.ndarray]
    cy: np.ndarray  # continuous box centre, reference (frame) coordinates
    cx: np.ndarray
    sizes: np.ndarray
    lk: list[tuple]  # per size group, see _lk_group


def _lk_group(full: list[np.ndarray], idx: np.ndarray) -> tuple:
    """Precomputed Gaussian-weighted least-squares terms for the APs ``idx`` (all one size).

    A frame patch F is modelled as ``a·T + b − a·δ·∇T + c·∇²T``: the template, an offset, a small shift δ
    and a blur difference (a Gaussian blur of variance v changes T by (v/2)·∇²T). Fitting the blur term
    keeps a frame sharper or blurrier than the reference from being read as a shift, which otherwise
    biases every AP whose content is lopsided in its window (a limb, a crater rim) by a large fraction
    of a pixel. Returns (idx, centred template, weight, template variance, solve matrix, weighted basis).
    """
    t = np.stack([full[a] for a in idx]).astype(np.float64)  # (g, s, s)
    s = t.shape[1]
    r = np.arange(s) - (s - 1) / 2
    w1 = np.exp(-0.5 * (r / (s / 4)) ** 2)
    w = w1[:, None] * w1[None, :]
    w /= w.sum()
    gy, gx = np.gradient(t, axis=(1, 2))
    lap = np.zeros_like(t)
    lap[:, 1:-1, 1:-1] = (t[:, :-2, 1:-1] + t[:, 2:, 1:-1] + t[:, 1:-1, :-2] + t[:, 1:-1, 2:]
                          - 4 * t[:, 1:-1, 1:-1])
    yy, xx = r[:, None] / s, r[None, :] / s
    terms = [t, gy, gx, lap]
    if AFFINE:
        terms += [yy * gy, xx * gy, yy * gx, xx * gx]
    basis = np.stack(terms, 1)  # (g, k, s, s)
    basis = basis - (w * basis).sum((2, 3), keepdims=True)  # weighted-centred: the offset b drops out
    wb = w * basis
    normal = np.einsum("gkij,glij->gkl", wb, basis)
    solve = np.linalg.pinv(normal)
    tc = basis[:, 0]
    var = (w * tc * tc).sum((1, 2))
    proj = np.einsum("gkl,glij->gkij", solve, wb).astype(np.float32)
    return idx, tc.astype(np.float32), w.astype(np.float32), var, solve, proj.reshape(len(idx), len(terms), s * s)


def make_templates(ref_blur: np.ndarray, centres: np.ndarray, sizes: np.ndarray,
                   y0: int, x0: int) -> Templates:
    """Cut the AP boxes out of the (matched-blurred) reference over the crop at offset (y0, x0)."""
    ref_half = half(ref_blur)
    full, coarse, cys, cxs = [], [], [], []
    for (cy, cx), s in zip(centres, sizes):
        ty, tx = int(cy) - int(s) // 2, int(cx) - int(s) // 2
        full.append(np.ascontiguousarray(ref_blur[ty:ty + s, tx:tx + s]))
        cyc, cxc = ty + (s - 1) / 2.0, tx + (s - 1) / 2.0  # continuous centre in crop coordinates
        coarse.append(extract(ref_half, (cyc - 0.5) / 2, (cxc - 0.5) / 2, s // 2, s // 2))
        cys.append(y0 + cyc)
        cxs.append(x0 + cxc)
    sizes = np.asarray(sizes, np.int32)
    groups = [_lk_group(full, np.flatnonzero(sizes == v)) for v in np.unique(sizes)]
    return Templates(full, coarse, np.array(cys), np.array(cxs), sizes, groups)


def extract_many(img: np.ndarray, cy: np.ndarray, cx: np.ndarray, size: int) -> np.ndarray:
    """(A, size, size) float32 patches of ``img`` centred at sub-pixel (cy[a], cx[a]); bicubic, borders
    replicated. All patches come from one ``cv2.remap`` call over a stacked map (fast, no Python loop)."""
    r = np.arange(size, dtype=np.float32) - np.float32((size - 1) / 2)
    n = len(cy)
    my = (np.asarray(cy, np.float32)[:, None, None] + r[None, :, None]) + np.zeros((1, 1, size), np.float32)
    mx = (np.asarray(cx, np.float32)[:, None, None] + r[None, None, :]) + np.zeros((1, size, 1), np.float32)
    out = cv2.remap(img, mx.reshape(n * size, size), my.reshape(n * size, size), cv2.INTER_CUBIC,
                    borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(n, size, size)


def lk_refine(frame_blur: np.ndarray, tpl: Templates, shift: np.ndarray, iterations: int = 6,
              tol: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Newton (Lucas–Kanade) refinement of total shifts (A, 2) with a Gaussian window per AP.

    Each window is fitted as template + offset + shift + blur difference (see :func:`_lk_group`),
    the frame patch resampled bicubically at the current estimate every iteration, all APs of a size at
    once. The Gaussian weight keeps the box edges, where content enters and leaves, from biasing the
    shift. Returns the refined shifts and each AP's Gaussian-weighted correlation at the final position.
    """
    img = np.ascontiguousarray(frame_blur, np.float32)
    shift = shift.astype(np.float64).copy()
    score = np.zeros(len(shift))
    for idx, tc, w, var, _, proj in tpl.lk:
        s = tc.shape[1]
        active = np.arange(len(idx))  # APs still moving
        for _ in range(iterations):
            a = idx[active]
            f = extract_many(img, tpl.cy[a] + shift[a, 0], tpl.cx[a] + shift[a, 1], s)
            coef = np.matmul(proj[active], f.reshape(len(a), -1, 1))[..., 0].astype(np.float64)
            gain = coef[:, 0]
            safe = np.abs(gain) > 1e-6
            delta = np.where(safe[:, None], -coef[:, 1:3] / np.where(safe, gain, 1.0)[:, None], 0.0)
            delta = np.clip(delta, -1.0, 1.0)
            shift[a] += delta
            moving = np.abs(delta).max(axis=1) >= tol
            if not moving.any():
                break
            active = active[moving]
        f = extract_many(img, tpl.cy[idx] + shift[idx, 0], tpl.cx[idx] + shift[idx, 1], s)
        fc = f - np.einsum("ij,gij->g", w, f)[:, None, None]
        cov = np.einsum("ij,gij,gij->g", w, tc, fc).astype(np.float64)
        varf = np.einsum("ij,gij,gij->g", w, fc, fc).astype(np.float64)
        score[idx] = cov / np.sqrt(np.maximum(var * varf, 1e-24))
    return shift, score


def measure(frame_blur: np.ndarray, tpl: Templates, gdy: float, gdx: float,
            radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local shifts (A, 2) of one frame beyond its global shift, match correlation (A,), found (A,).

    ``found`` is False where the coarse peak sat on its search border or the refined shift left the
    search radius (the match may lie outside it). The correlation is Gaussian-weighted ZNCC.
    """
    frame_half = half(frame_blur)
    rc = max(1, (radius + 1) // 2)
    a_count = len(tpl.full)
    shift = np.zeros((a_count, 2), np.float64)
    score = np.zeros(a_count, np.float64)
    found = np.zeros(a_count, bool)
    for a in range(a_count):
        s = int(tpl.sizes[a])
        fy, fx = tpl.cy[a] + gdy, tpl.cx[a] + gdx
        cs = s // 2
        win = extract(frame_half, (fy - 0.5) / 2, (fx - 0.5) / 2, cs + 2 * rc, cs + 2 * rc)
        oy, ox, _, inside = match_shift(tpl.coarse[a], win)
        dy, dx = gdy + 2 * (oy - rc), gdx + 2 * (ox - rc)
        shift[a] = dy, dx
        found[a] = inside
    shift, score = lk_refine(frame_blur, tpl, shift)
    found &= np.all(np.abs(shift - [gdy, gdx]) <= radius, axis=1)
    shift[:, 0] -= gdy
    shift[:, 1] -= gdx
    return shift, score, found


def replace_lost(shift: np.ndarray, score: np.ndarray, found: np.ndarray, nbrs: list[np.ndarray],
                 min_corr: float, max_jump: float) -> tuple[np.ndarray, np.ndarray]:
    """Replace lost AP measurements of one chunk of frames from neighbouring APs in the same frame.

    ``shift`` (n, A, 2), ``score``/``found`` (n, A). Lost: not found, ZNCC below ``min_corr``, or more
    than ``max_jump`` px from the median of its good neighbours. Lost shifts become that median (or
    the median of all good APs in the frame, or 0). Returns (shift, ok).
    """
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
