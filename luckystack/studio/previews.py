"""What the studio's page shows, drawn from arrays: PNG bytes of frames, references and results, the
local-quality map, and the quality curve as numbers (the page draws it and its draggable cuts).

Pure numpy/OpenCV functions: they know nothing of the cache or the server.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from luckystack.export import encode_png
from luckystack.report.contact import common_stretch, to_display
from luckystack.report.figures import coverage_map


def png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 RGB image (or (H, W) grey)."""
    img = rgb if rgb.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    return encode_png(Path("preview.png"), img)


def display(image: np.ndarray, points: tuple[float, float] | None = None) -> np.ndarray:
    """An image (H, W[, C]) as uint8 RGB, stretched between ``points`` (default: its own 0.05 and 99.95
    percentiles)."""
    img = np.nan_to_num(np.asarray(image, np.float32))
    black, white = points or common_stretch([img], 0.05, 99.95)
    return to_display(img, black, white)


def quality_map(reference: np.ndarray, centres: np.ndarray, sizes: np.ndarray, quality: np.ndarray,
                valid: np.ndarray) -> np.ndarray:
    """The reference dimmed, each AP box filled with its local quality (median over the valid frames) on
    a colour scale from dark blue (the poorest AP) to yellow (the best): uint8 RGB."""
    base = display(reference)
    grey = (base.astype(np.float32) * 0.35)
    per_ap = np.array([np.nan if v is None else v for v in ap_quality(quality, valid)], np.float32)
    if np.isfinite(per_ap).any():
        lo, hi = float(np.nanmin(per_ap)), float(np.nanmax(per_ap))
        per_ap = (per_ap - lo) / (hi - lo) if hi > lo else np.ones_like(per_ap)
    rated = np.flatnonzero(np.isfinite(per_ap))
    level = coverage_map(base.shape[:2], np.asarray(centres)[rated], np.asarray(sizes)[rated], per_ap[rated])
    covered = np.isfinite(level)
    level[~covered] = 0.0
    colours = cv2.applyColorMap(np.round(np.clip(level, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
    colours = cv2.cvtColor(colours, cv2.COLOR_BGR2RGB).astype(np.float32)
    out = grey.copy()
    out[covered] = 0.45 * grey[covered] / 0.35 + 0.55 * colours[covered]
    return np.clip(out, 0, 255).astype(np.uint8)


def ap_quality(quality: np.ndarray, valid: np.ndarray) -> list[float | None]:
    """Each AP's median local quality over the valid frames, relative to the best AP's (1.0)."""
    q = np.asarray(quality, np.float32)
    ok = np.asarray(valid, bool)
    if q.ndim != 2 or not ok.any():
        return []
    med = np.nanmedian(np.where(ok[:, None], q, np.nan), axis=0)
    top = float(np.nanmax(med)) if np.isfinite(med).any() else 1.0
    return [round(float(v) / top, 4) if np.isfinite(v) and top else None for v in med]
