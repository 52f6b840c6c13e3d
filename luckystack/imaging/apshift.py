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
    lk: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]  # per size group


def _lk_group(full: list[np.ndarray], idx: np.ndarray) -> tuple:
    """Precomputed Gaussian-weighted Lucas–Kanade terms for the APs ``idx`` (all one size)."""
    t = np.stack([full[a] for a in idx]).astype(np.float64)  # (g, s, s)
    s = t.shape[1]
    r = np.arange(s) - (s - 1) / 2
    w1 = np.exp(-0.5 * (r / (s / 5)) ** 2)
    w = w1[:, None] * w1[None, :]
    w /= w.sum()
    tc = t - (w * t).sum((1, 2), keepdims=True)
    var = (w * tc * tc).sum((1, 2))
    gy, gx = np.gradient(t, axis=(1, 2))
    h = np.stack([np.stack([(w * gy * gy).sum((1, 2)), (w * gy * gx).sum((1, 2))], -1),
                  np.stack([(w * gy * gx).sum((1, 2)), (w * gx * gx).sum((1, 2))], -1)], -2)
    hinv = np.linalg.pinv(h).astype(np.float32)
    wg = (w * np.stack([gy, gx], 1)).astype(np.float32)  # (g, 2, s, s)
    return idx, tc.astype(np.float32), (w * tc).astype(np.float32), var, w.astype(np.float32), wg, hinv


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


def lk_refine(frame_blur: np.ndarray, tpl: Templates, shift: np.ndarray, iterations: int = 4
              ) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Newton (Lucas–Kanade) refinement of total shifts (A, 2) with a Gaussian window per AP.

    Each window is fitted as ``a·template + b`` (brightness and contrast free); the Gaussian weight
    keeps the box edges, where content enters and leaves, from biasing the sub-pixel shift.
    Returns the refined shifts and each AP's Gaussian-weighted correlation at the final position.
    """
    shift = shift.copy()
    score = np.zeros(len(shift))
    for idx, tc, wtc, var, w, wg, hinv in tpl.lk:
        s = tc.shape[1]
        for _ in range(iterations):
            f = np.stack([extract(frame_blur, tpl.cy[a] + shift[a, 0], tpl.cx[a] + shift[a, 1], s, s)
                          for a in idx])
            fc = f - np.einsum("ij,gij->g", w, f)[:, None, None]
            cov = np.einsum("gij,gij->g", wtc, fc).astype(np.float64)
            varf = np.einsum("ij,gij,gij->g", w, fc, fc).astype(np.float64)
            gain = np.where(np.abs(cov) > 1e-12, cov / np.maximum(var, 1e-12), 1.0)
            resid = tc - fc / gain[:, None, None].astype(np.float32)
            delta = np.einsum("gij,gj->gi", hinv, np.einsum("gkij,gij->gk", wg, resid)).astype(np.float64)
            delta = np.clip(delta, -1.0, 1.0)
            shift[idx] += delta
            score[idx] = cov / np.sqrt(np.maximum(var * varf, 1e-24))
            if np.abs(delta).max() < 0.01:
                break
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
