"""Report pictures drawn with OpenCV: the frame-quality graph and the AP overlay (uint8 RGB arrays)."""

from __future__ import annotations

import cv2
import numpy as np


def quality_graph(score: np.ndarray, valid: np.ndarray, width: int = 800, height: int = 300) -> np.ndarray:
    """Quality over time (blue) and sorted best-first (orange), disabled frames as red ticks."""
    img = np.full((height, width, 3), 255, np.uint8)
    m = 30
    n = len(score)
    good = np.asarray(valid, bool) & np.isfinite(score)
    cv2.rectangle(img, (m, m // 2), (width - m // 2, height - m), (0, 0, 0), 1)
    if n == 0 or not good.any():
        return img
    top = float(np.nanmax(score[good])) or 1.0
    x = m + (np.arange(n) * (width - 1.5 * m) / max(1, n - 1))
    y = lambda v: height - m - (v / top) * (height - 1.5 * m)  # noqa: E731
    over_time = np.stack([x[good], y(score[good])], 1).astype(np.int32)
    ranked = np.sort(score[good])[::-1]
    sorted_pts = np.stack([x[:len(ranked)], y(ranked)], 1).astype(np.int32)
    cv2.polylines(img, [over_time], False, (31, 119, 180), 1, cv2.LINE_AA)
    cv2.polylines(img, [sorted_pts], False, (255, 127, 14), 2, cv2.LINE_AA)
    for xi in x[~good]:
        cv2.line(img, (int(xi), height - m), (int(xi), height - m + 6), (214, 39, 40), 1)
    cv2.putText(img, "quality over time / sorted", (m, m // 2 + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    return img


def ap_overlay(reference: np.ndarray, centres: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The reference (stretched to 0…255) with every AP box drawn in green: uint8 RGB (H, W, 3)."""
    ref = np.asarray(reference, np.float32)
    mono = ref[..., 0] if ref.ndim == 3 and ref.shape[2] == 1 else ref
    lo, hi = float(mono.min()), float(mono.max())
    scaled = np.clip((mono - lo) / (hi - lo if hi > lo else 1.0) * 255, 0, 255).astype(np.uint8)
    img = np.ascontiguousarray(np.repeat(scaled[..., None], 3, axis=2) if scaled.ndim == 2 else scaled)
    for (cy, cx), s in zip(np.asarray(centres), np.asarray(sizes)):
        y0, x0 = int(cy) - int(s) // 2, int(cx) - int(s) // 2
        cv2.rectangle(img, (x0, y0), (x0 + int(s) - 1, y0 + int(s) - 1), (0, 220, 0), 1)
        cv2.circle(img, (int(cx), int(cy)), 1, (0, 220, 0), -1)
    return img
