"""Gaps in the data: where an AP's patch covers pixels a recording held no value for (NaN/inf)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

GAP_KEEP = 0.25  # an AP keeps its frames with gaps when fewer than this share of its valid frames has none


def aps_over_gaps(masks: Callable[[int], np.ndarray | None] | None, shift: np.ndarray, valid: np.ndarray,
                  crop: Sequence[int], centres: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """(N, A) bool: where an AP's stacked patch in frame i covers pixels the file held no value for
    (NaN/inf, filled when read). Those frames are left out of that AP's stack, so the fill never
    enters a sum, unless too few frames without gaps would be left (a gap in every frame, e.g. a
    dead sensor area): then the AP keeps them all, as the fill is all there is.

    ``masks(i)`` is frame i's (H, W) bool gap mask, or None where it has none (a frame stream's
    ``nonfinite_mask``); ``masks`` None means no frame has gaps. ``shift`` (N, 2) and ``valid`` (N,)
    are per frame. A patch spans 1.5 × its AP size (as the stack cuts it) plus 4 px for the local
    shift; its frame position is crop origin + global shift + centre, as in every node.
    """
    valid = np.asarray(valid, bool)
    out = np.zeros((len(valid), len(centres)), bool)
    if masks is None or len(centres) == 0:
        return out
    half = np.ceil(0.75 * np.asarray(sizes)).astype(np.int64) + 4
    for i in range(len(valid)):
        mask = masks(i)
        if mask is None:
            continue
        table = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # summed-area table
        cy = np.rint(crop[0] + shift[i, 0] + centres[:, 0]).astype(np.int64)
        cx = np.rint(crop[1] + shift[i, 1] + centres[:, 1]).astype(np.int64)
        h, w = mask.shape
        a, b = np.clip(cy - half, 0, h), np.clip(cy + half + 1, 0, h)
        c, d = np.clip(cx - half, 0, w), np.clip(cx + half + 1, 0, w)
        out[i] = (table[b, d] - table[a, d] - table[b, c] + table[a, c]) > 0
    clean = (valid[:, None] & ~out).sum(axis=0)
    out[:, clean < GAP_KEEP * valid.sum()] = False
    return out
