"""Blending AP patch stacks into one image: smooth, overlapping, centre-favouring weights.

Each AP patch gets a separable raised-cosine window over its own extent (AP box × 1.5), highest at
the AP centre and falling to zero at the patch edge, multiplied by the patch's per-pixel coverage
(drizzle leaves uneven coverage). The AP image is the weighted sum divided by the summed weights.
Where the summed weight drops below ``full_weight`` (the rim of the AP grid) the AP image is blended
continuously into the background stack, and where no AP reaches the background is used alone — so
the result has no seams and no holes.
"""

from __future__ import annotations

import numpy as np


def cosine_window(side: int, extent: float) -> np.ndarray:
    """1-D raised cosine of total width ``extent`` centred in ``side`` samples (zero outside)."""
    t = (np.arange(side) - (side - 1) / 2.0) / (extent / 2.0)
    return np.where(np.abs(t) < 1, 0.5 * (1 + np.cos(np.pi * t)), 0.0)


def blend_patches(patches: np.ndarray, coverage: np.ndarray, origins: np.ndarray, extents: np.ndarray,
                  background: np.ndarray, full_weight: float = 1.0) -> np.ndarray:
    """Merge AP patches (A, p, p, C) at ``origins`` (A, 2) over ``background`` (H, W, C).

    ``coverage`` (A, p, p, C) is each patch's relative weight per pixel (0 = no data); ``extents``
    (A,) the window width of each AP in pixels. Returns (H, W, C) float32. ``patches`` and ``coverage``
    may be stored (zarr) arrays: they are read a chunk of APs at a time, never whole (a Moon's 192 APs
    of 192² px are 28 MB each).
    """
    h, w, c = background.shape
    acc = np.zeros((h, w, c))
    wsum = np.zeros((h, w, c))
    side = patches.shape[1]
    block = int(getattr(patches, "chunks", (patches.shape[0],))[0]) or 1
    for a in range(patches.shape[0]):
        if a % block == 0:
            patch_block = np.asarray(patches[a:a + block])
            coverage_block = np.asarray(coverage[a:a + block])
        win1 = cosine_window(side, float(extents[a]))
        win = (win1[:, None] * win1[None, :])[:, :, None] * coverage_block[a % block]
        y0, x0 = int(origins[a, 0]), int(origins[a, 1])
        ys, xs = max(0, y0), max(0, x0)
        ye, xe = min(h, y0 + side), min(w, x0 + side)
        if ye <= ys or xe <= xs:
            continue
        sl = (slice(ys - y0, ye - y0), slice(xs - x0, xe - x0))
        acc[ys:ye, xs:xe] += win[sl] * patch_block[a % block][sl]
        wsum[ys:ye, xs:xe] += win[sl]
    ap_image = np.divide(acc, wsum, out=np.zeros_like(acc), where=wsum > 0)
    fw = np.clip(wsum / full_weight, 0.0, 1.0)
    return (fw * ap_image + (1.0 - fw) * background).astype(np.float32)
