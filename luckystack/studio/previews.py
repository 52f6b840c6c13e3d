"""What the studio's page shows, drawn from arrays: PNG bytes of frames, references and results, the
local-quality map, and the quality curve as numbers (the page draws it and its draggable cuts).

Pure numpy/OpenCV functions: they know nothing of the cache or the server.
"""

from __future__ import annotations

import cv2
import numpy as np

from luckystack.report.contact import to_display


def png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 RGB image (or (H, W) grey)."""
    img = rgb if rgb.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError("cannot encode the preview as PNG")
    return buf.tobytes()


def stretch_points(image: np.ndarray, low: float = 0.05, high: float = 99.95) -> tuple[float, float]:
    """Black and white points: percentiles of a sample of the image's pixels."""
    sample = np.asarray(image, np.float32).ravel()[::3]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(sample, [low, high])
    return float(lo), float(max(hi, lo + 1e-6))


def display(image: np.ndarray, points: tuple[float, float] | None = None) -> np.ndarray:
    """An image (H, W[, C]) as uint8 RGB, stretched between ``points`` (default: its own percentiles)."""
    img = np.nan_to_num(np.asarray(image, np.float32))
    black, white = points or stretch_points(img)
    return to_display(img, black, white)


def quality_map(reference: np.ndarray, centres: np.ndarray, sizes: np.ndarray, quality: np.ndarray,
                valid: np.ndarray) -> np.ndarray:
    """The reference dimmed, each AP box filled with its local quality (median over the valid frames) on
    a colour scale from dark blue (the poorest AP) to yellow (the best): uint8 RGB."""
    base = display(reference)
    grey = (base.astype(np.float32) * 0.35)
    heat = np.zeros(base.shape[:2], np.float32)
    weight = np.zeros(base.shape[:2], np.float32)
    per_ap = np.array([np.nan if v is None else v for v in ap_quality(quality, valid)], np.float32)
    if np.isfinite(per_ap).any():
        lo, hi = float(np.nanmin(per_ap)), float(np.nanmax(per_ap))
        per_ap = (per_ap - lo) / (hi - lo) if hi > lo else np.ones_like(per_ap)
    h, w = heat.shape
    for (cy, cx), s, v in zip(np.asarray(centres), np.asarray(sizes), per_ap):
        if not np.isfinite(v):
            continue
        y0, x0 = max(0, int(cy) - int(s) // 2), max(0, int(cx) - int(s) // 2)
        y1, x1 = min(h, y0 + int(s)), min(w, x0 + int(s))
        heat[y0:y1, x0:x1] += v
        weight[y0:y1, x0:x1] += 1.0
    covered = weight > 0
    level = np.zeros_like(heat)
    level[covered] = heat[covered] / weight[covered]
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
