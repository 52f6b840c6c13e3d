"""Blending AP patch stacks into one image: smooth, overlapping, centre-favouring weights.

Each AP patch gets a separable raised-cosine window over its own extent (AP box × 1.5), highest at
the AP centre and falling to zero at the patch edge, multiplied by the patch's per-pixel coverage
(drizzle leaves uneven coverage). The AP image is the weighted sum divided by the summed weights.
Where the summed weight drops below ``full_weight`` (the rim of the AP grid) the AP image is blended
continuously into the background stack, and where no AP reaches the background is used alone — so
the result has no seams and no holes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BLOCK_BYTES = 16 << 20  # stored patches and coverage read per call: memory against the cost of a call


def cosine_window(side: int, extent: float) -> np.ndarray:
    """1-D raised cosine of total width ``extent`` centred in ``side`` samples (zero outside)."""
    t = (np.arange(side) - (side - 1) / 2.0) / (extent / 2.0)
    return np.where(np.abs(t) < 1, 0.5 * (1 + np.cos(np.pi * t)), 0.0)


def blend_patches(patches: np.ndarray, coverage: np.ndarray, origins: np.ndarray, extents: np.ndarray,
                  background: np.ndarray, full_weight: float = 1.0) -> np.ndarray:
    """Merge AP patches (A, p, p, C) at ``origins`` (A, 2) over ``background`` (H, W, C).

    ``coverage`` (A, p, p, C) is each patch's relative weight per pixel (0 = no data); ``extents``
    (A,) the window width of each AP in pixels. Returns (H, W, C) float32. ``patches`` and ``coverage``
    may be stored (zarr) arrays: they are read in blocks of APs of about :data:`BLOCK_BYTES` together,
    never whole (a Moon's 192 APs of 192² px are 28 MB each).
    """
    h, w, c = background.shape
    acc = np.zeros((h, w, c))
    wsum = np.zeros((h, w, c))
    side = patches.shape[1]
    windows: dict[float, np.ndarray] = {}  # by extent: the APs of a grid mostly share one
    for a0, a1 in ap_blocks(patches, coverage):
        patch_block = np.asarray(patches[a0:a1])
        coverage_block = np.asarray(coverage[a0:a1])
        for a in range(a0, a1):
            y0, x0 = int(origins[a, 0]), int(origins[a, 1])
            ys, xs = max(0, y0), max(0, x0)
            ye, xe = min(h, y0 + side), min(w, x0 + side)
            if ye <= ys or xe <= xs:
                continue
            extent = float(extents[a])
            if extent not in windows:
                win1 = cosine_window(side, extent)
                windows[extent] = (win1[:, None] * win1[None, :])[:, :, None]
            sl = (slice(ys - y0, ye - y0), slice(xs - x0, xe - x0))
            win = windows[extent][sl] * coverage_block[a - a0][sl]
            wsum[ys:ye, xs:xe] += win
            win *= patch_block[a - a0][sl]
            acc[ys:ye, xs:xe] += win
    # fw · ap_image + (1 − fw) · background, in place: no full-size temporaries
    covered = wsum > 0
    ap_image = np.divide(acc, wsum, out=acc, where=covered)
    ap_image[~covered] = 0.0
    fw = np.clip(np.divide(wsum, full_weight, out=wsum), 0.0, 1.0, out=wsum)
    ap_image *= fw
    rest = np.subtract(1.0, fw, out=fw)
    rest *= background
    ap_image += rest
    return ap_image.astype(np.float32)


def ap_blocks(*arrays: Any, budget: int = BLOCK_BYTES) -> list[tuple[int, int]]:
    """``(first, end)`` AP ranges covering ``arrays`` (A, ...), each about ``budget`` bytes of all of them
    together and a whole number of the largest chunk along A: a stored array read
    one small chunk per call costs far more in calls than in bytes."""
    count = int(arrays[0].shape[0])
    per_ap = sum(int(np.prod(a.shape[1:], dtype=np.int64)) * np.dtype(a.dtype).itemsize for a in arrays)
    chunk = max(int(getattr(a, "chunks", (1,))[0]) or 1 for a in arrays)
    block = max(chunk, budget // max(1, per_ap) // chunk * chunk)
    return [(a0, min(count, a0 + block)) for a0 in range(0, count, block)]
