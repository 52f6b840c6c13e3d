"""CMOS row and column pattern noise: per-frame offsets estimated from the sky background.

CMOS sensors add a random offset to each row (and, less often, each column) at readout; it shows as
horizontal banding in faint stacks. Offsets are estimated from background pixels only — those within
a few robust sigmas of the background level and away from anything bright (planet, moon limb, stars)
— as the per-row (then per-column) mean of those pixels, which after the symmetric clip is a robust
location estimate close to the median at a fraction of the cost. Only the offsets relative to the
frame's background level are removed, so the image level is kept.
"""

from __future__ import annotations

import cv2
import numpy as np

MODES = ("off", "rows", "columns", "both")


def background_mask(frame: np.ndarray, clip: float = 3.0, guard: int = 5,
                    levels: np.ndarray | None = None) -> tuple[np.ndarray, float, float]:
    """Mask of background pixels, the background level and its noise sigma.

    ``levels`` (same shape as ``frame``) is subtracted first (e.g. per-CFA-colour background levels).
    Pixels brighter than level + clip·sigma are object; the mask also drops ``guard`` pixels around them.
    """
    f = frame if levels is None else frame - levels
    sub = f[::4, ::4]
    level = float(np.median(sub))
    sigma = float(1.4826 * np.median(np.abs(sub - level))) or 1e-6
    bright = (f > level + clip * sigma).astype(np.uint8)
    if guard > 0:
        bright = cv2.dilate(bright, np.ones((2 * guard + 1, 2 * guard + 1), np.uint8))
    mask = (bright == 0) & (f >= level - clip * sigma)
    return mask, level, sigma


def _profile(f: np.ndarray, mask: np.ndarray, axis: int, level: float, min_pixels: int) -> np.ndarray:
    n = mask.sum(axis=axis)
    s = np.where(mask, f, 0).sum(axis=axis, dtype=np.float64)
    off = np.where(n >= min_pixels, s / np.maximum(n, 1) - level, 0.0)
    return off.astype(np.float32)


def estimate_offsets(frame: np.ndarray, mode: str, pattern: str | None = None,
                     min_pixels: int = 16) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(row offsets (H,), column offsets (W,)) of an (H, W) frame; None for a direction not asked for.

    Bayer frames (``pattern`` set) first have each CFA colour's background level removed, so colour
    differences are not mistaken for row offsets. Rows or columns with fewer than ``min_pixels``
    background pixels get offset 0.
    """
    if mode not in MODES:
        raise ValueError(f"unknown pattern-noise mode {mode!r}; expected one of {', '.join(MODES)}")
    if mode == "off":
        return None, None
    f = np.asarray(frame, np.float32)
    if pattern:
        f = f.copy()
        for dy in (0, 1):
            for dx in (0, 1):
                part = f[dy::2, dx::2]
                part -= np.float32(np.median(part[::2, ::2]))
    mask, level, _ = background_mask(f)
    rows = cols = None
    if mode in ("rows", "both"):
        rows = _profile(f, mask, 1, level, min_pixels)
        f = f - rows[:, None]
    if mode in ("columns", "both"):
        cols = _profile(f, mask, 0, level, min_pixels)
    return rows, cols


def remove_pattern(frame: np.ndarray, mode: str, pattern: str | None = None) -> np.ndarray:
    """Subtract the estimated row/column offsets from an (H, W) float32 frame in place; return it."""
    rows, cols = estimate_offsets(frame, mode, pattern)
    if rows is not None:
        frame -= rows[:, None]
    if cols is not None:
        frame -= cols[None, :]
    return frame
