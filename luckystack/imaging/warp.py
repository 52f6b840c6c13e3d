"""Sub-pixel resampling of frames by a global shift plus a smooth local shift field."""

from __future__ import annotations

import cv2
import numpy as np


def dense_field(centres: np.ndarray, values: np.ndarray, height: int, width: int, sigma: float,
                step: int = 8) -> np.ndarray:
    """A smooth (height, width, 2) field through per-AP values (A, 2): Gaussian-weighted average.

    Evaluated on a coarse grid every ``step`` px and resized bilinearly (the field varies slowly).
    """
    gy = np.arange(0, height + step, step, dtype=np.float64)
    gx = np.arange(0, width + step, step, dtype=np.float64)
    c = centres.astype(np.float64)
    wy = np.exp(-0.5 * ((gy[:, None] - c[None, :, 0]) / sigma) ** 2)  # (gy, A)
    wx = np.exp(-0.5 * ((gx[:, None] - c[None, :, 1]) / sigma) ** 2)  # (gx, A)
    wsum = wy @ wx.T + 1e-12
    out = np.empty((len(gy), len(gx), 2), np.float32)
    for k in range(2):
        out[..., k] = (wy * values[None, :, k]) @ wx.T / wsum
    # Coarse sample j sits at pixel j*step; map it back exactly onto the pixel grid.
    ys = np.arange(height, dtype=np.float32) / step
    xs = np.arange(width, dtype=np.float32) / step
    mx, my = np.meshgrid(xs, ys)
    return np.stack([cv2.remap(out[..., k], mx, my, cv2.INTER_LINEAR) for k in range(2)], axis=-1)


def warp_field(img: np.ndarray, y0: float, x0: float, field: np.ndarray,
               interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """``out[r, c] = img[y0 + r + field[r, c, 0], x0 + c + field[r, c, 1]]`` for (H, W) or (H, W, C)."""
    h, w = field.shape[:2]
    mx, my = np.meshgrid(np.arange(w, dtype=np.float32) + np.float32(x0),
                         np.arange(h, dtype=np.float32) + np.float32(y0))
    out = cv2.remap(np.ascontiguousarray(img, np.float32), mx + field[..., 1], my + field[..., 0],
                    interpolation, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape((h, w) + img.shape[2:])
