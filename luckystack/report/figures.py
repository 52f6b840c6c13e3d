"""The report's pictures of the APs, drawn straight with numpy and OpenCV (the quality chart is
:mod:`luckystack.report.chart`).

* :func:`ap_figure`: the reference at full size (never scaled down) with every AP's box and number.
* :func:`local_quality_figure`: per region, how many good frames its APs had (where the stack will be
  weak), beside the same AP numbers, with a colour bar.
* :func:`good_frames`: the count behind that map, a pure function.

The pictures are PNGs of the reference's own pixels (small crops magnified by a whole factor), drawn
without a plotting library.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from luckystack.graph.files import write_file
from luckystack.report.chart import nice_ticks, tick_text

GOOD_FRACTION = 0.8  # a frame is good for an AP when its local quality is at least this share of the AP's best
BEST_PERCENTILE = 99.0  # an AP's "best" quality: robust to a single freak measurement
BAR_WIDTH = 130  # px beside the local-quality map for its colour bar and labels
FONT = cv2.FONT_HERSHEY_SIMPLEX
# matplotlib's RdYlGn (ColorBrewer's 11 classes), red = few good frames, green = many; RGB.
RD_YL_GN = np.array([(165, 0, 38), (215, 48, 39), (244, 109, 67), (253, 174, 97), (254, 224, 139),
                     (255, 255, 191), (217, 239, 139), (166, 217, 106), (102, 189, 99), (26, 152, 80),
                     (0, 104, 55)], np.float64)


def _write_png(path: Path, rgb: np.ndarray) -> Path:
    """Write an RGB uint8 picture as PNG (fast compression: these are re-drawn, not archived)."""
    path = Path(path)
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OSError(f"cannot encode {path}")
    write_file(path, encoded.tobytes())
    return path


# --- the AP pictures (PNG) -----------------------------------------------------------------------------

def _display(image: np.ndarray) -> np.ndarray:
    """The reference stretched to 0…1 between its 0.5th and 99.9th percentiles, (H, W) or (H, W, 3)."""
    img = np.asarray(image, np.float32)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    lo, hi = np.percentile(img[::2, ::2], [0.5, 99.9])
    return np.clip((img - lo) / max(float(hi - lo), 1e-12), 0, 1)


def display_scale(shape: tuple[int, ...], least: int = 480) -> int:
    """Whole-number magnification so a small crop is at least ``least`` px wide (1 for larger ones)."""
    return max(1, int(np.ceil(least / max(1, shape[1]))))


def _rgb8(disp: np.ndarray, gain: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """(H, W, 3) uint8 RGB of ``offset + gain · disp`` (0…1 display values, (H, W) or (H, W, 3)), rounded."""
    pixels = cv2.convertScaleAbs(np.asarray(disp, np.float32), alpha=255.0 * gain, beta=255.0 * offset)
    return cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB) if pixels.ndim == 2 else pixels


def _magnified(rgb: np.ndarray, scale: int) -> np.ndarray:
    """Every pixel as an ``scale`` × ``scale`` block."""
    return np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1) if scale > 1 else rgb


def _boxes(canvas: np.ndarray, centres: np.ndarray, sizes: np.ndarray, scale: int,
           colour: tuple[int, int, int]) -> None:
    """Every AP's box (one pixel wide, on the AP's pixel edges) and its number, white on a dimmed
    black label, drawn into the uint8 RGB ``canvas``."""
    font = 0.33 if len(sizes) > 60 else 0.38
    for (cy, cx), s in zip(np.asarray(centres, np.float64), np.asarray(sizes, np.float64)):
        x0, y0 = int(round((cx - s / 2) * scale)), int(round((cy - s / 2) * scale))
        cv2.rectangle(canvas, (x0, y0), (x0 + int(round(s * scale)) - 1, y0 + int(round(s * scale)) - 1), colour, 1)
    h, w = canvas.shape[:2]
    for k, (cy, cx) in enumerate(np.asarray(centres, np.float64)):
        text = str(k + 1)
        (tw, th), base = cv2.getTextSize(text, FONT, font, 1)
        mx, my = int(round((cx + 0.5) * scale)), int(round((cy + 0.5) * scale))
        bx0, by0 = max(0, mx - tw // 2 - 2), max(0, my - th // 2 - 3)
        bx1, by1 = min(w, mx + (tw + 1) // 2 + 2), min(h, my + (th + 1) // 2 + 3)
        if bx1 > bx0 and by1 > by0:
            canvas[by0:by1, bx0:bx1] = (canvas[by0:by1, bx0:bx1] * 0.45).astype(np.uint8)
        cv2.putText(canvas, text, (mx - tw // 2, my + th // 2), FONT, font, (255, 255, 255), 1, cv2.LINE_AA)


def ap_figure(path: Path, reference: np.ndarray, centres: np.ndarray, sizes: np.ndarray) -> Path:
    """The reference at full size (small crops magnified by a whole factor) with every AP's box and number."""
    disp = _display(reference)
    scale = display_scale(disp.shape)
    canvas = np.ascontiguousarray(_magnified(_rgb8(disp), scale))
    _boxes(canvas, centres, sizes, scale, (0, 255, 0))
    return _write_png(path, canvas)


def good_frames(quality: np.ndarray, ok: np.ndarray | None, valid: np.ndarray | None) -> np.ndarray:
    """Per AP, the frames whose local quality reached :data:`GOOD_FRACTION` of the AP's best
    (its :data:`BEST_PERCENTILE`-th percentile), counting only valid frames whose shift was measured."""
    q = np.asarray(quality, np.float64)
    use = np.isfinite(q)
    if ok is not None:
        use &= np.asarray(ok, bool)
    if valid is not None:
        use &= np.asarray(valid, bool)[:, None]
    measured = use.any(axis=0)
    best = np.full(q.shape[1], np.inf)
    if measured.any():
        best[measured] = np.nanpercentile(np.where(use, q, np.nan)[:, measured], BEST_PERCENTILE, axis=0)
    return (use & (q >= GOOD_FRACTION * best[None, :])).sum(axis=0).astype(np.int64)


def coverage_map(shape: tuple[int, int], centres: np.ndarray, sizes: np.ndarray,
                 values: np.ndarray) -> np.ndarray:
    """A (H, W) map holding, at every pixel inside an AP box, the mean value of the boxes covering it
    (NaN outside every box)."""
    total = np.zeros(shape, np.float32)  # sums of a few small whole numbers: exact
    count = np.zeros(shape, np.float32)
    h, w = shape
    for (cy, cx), s, v in zip(np.asarray(centres), np.asarray(sizes), np.asarray(values, np.float64)):
        y0, x0 = max(0, int(cy) - int(s) // 2), max(0, int(cx) - int(s) // 2)
        y1, x1 = min(h, int(cy) - int(s) // 2 + int(s)), min(w, int(cx) - int(s) // 2 + int(s))
        total[y0:y1, x0:x1] += v
        count[y0:y1, x0:x1] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def colour_of(fraction: np.ndarray, levels: int = 1024) -> np.ndarray:
    """RdYlGn colours (uint8 RGB) of values on 0…1 (0 red, 0.5 yellow, 1 green), through a table of
    ``levels`` colours (a map of a million pixels costs one look-up each)."""
    ramp = np.linspace(0, len(RD_YL_GN) - 1, levels)
    table = np.stack([np.interp(ramp, np.arange(len(RD_YL_GN)), RD_YL_GN[:, c]) for c in range(3)], axis=-1)
    index = np.round(np.clip(np.nan_to_num(np.asarray(fraction, np.float32)), 0, 1) * (levels - 1)).astype(np.intp)
    return np.round(table).astype(np.uint8)[index]


def _vertical_text(lines: Sequence[str], height: int) -> np.ndarray | None:
    """Lines of dark text on white, turned to read bottom-up, as a (height, w, 3) uint8 block; the font
    shrinks to fit ``height``; None when it would be too small to read."""
    widest = max(cv2.getTextSize(t, FONT, 1.0, 1)[0][0] for t in lines)
    scale = min(0.4, (height - 4) / max(1, widest))
    if scale < 0.25:
        return None
    size = [cv2.getTextSize(t, FONT, scale, 1)[0] for t in lines]
    line_h = max(h for _, h in size) + 7
    strip = np.full((line_h * len(lines) + 2, height, 3), 255, np.uint8)
    for k, (text, (w, _)) in enumerate(zip(lines, size)):
        cv2.putText(strip, text, ((height - w) // 2, line_h * (k + 1) - 4), FONT, scale, (40, 40, 40), 1,
                    cv2.LINE_AA)
    return np.ascontiguousarray(np.rot90(strip))


def _colour_bar(height: int, top: int) -> np.ndarray:
    """The (height, BAR_WIDTH, 3) uint8 panel: an RdYlGn bar from 0 (bottom) to ``top`` good frames,
    its ticks and its label."""
    panel = np.full((height, BAR_WIDTH, 3), 255, np.uint8)
    y0, y1 = int(height * 0.08), int(height * 0.92)
    x0, x1 = 10, 24
    panel[y0:y1, x0:x1] = colour_of(np.linspace(1, 0, max(1, y1 - y0)))[:, None, :]
    cv2.rectangle(panel, (x0, y0), (x1 - 1, y1 - 1), (0, 0, 0), 1)
    for t in nice_ticks(top, 8):
        y = int(round(y1 - 1 - t / top * (y1 - y0 - 1)))
        cv2.line(panel, (x1, y), (x1 + 3, y), (0, 0, 0), 1)
        cv2.putText(panel, tick_text(t), (x1 + 6, y + 4), FONT, 0.35, (30, 30, 30), 1, cv2.LINE_AA)
    label = _vertical_text(["good frames per AP", f"(local quality >= {GOOD_FRACTION:.0%} of the AP's best)"],
                           y1 - y0)
    if label is not None and x1 + 44 + label.shape[1] <= BAR_WIDTH:
        panel[y0:y1, x1 + 44:x1 + 44 + label.shape[1]] = label
    return panel


def local_quality_figure(path: Path, reference: np.ndarray, centres: np.ndarray, sizes: np.ndarray,
                         counts: np.ndarray) -> Path:
    """The reference dimmed, every region coloured by its APs' good-frame count, a colour bar, AP numbers."""
    disp = _display(reference)
    scale = display_scale(disp.shape)
    base = _rgb8(disp, 0.6, 0.4)  # the reference washed out towards white
    values = coverage_map(disp.shape[:2], centres, sizes, counts)
    top = max(1, int(np.max(counts)) if len(counts) else 1)
    covered = np.isfinite(values)
    colour = colour_of(np.where(covered, values / top, 0.0))
    mixed = base.copy()
    np.copyto(mixed, cv2.addWeighted(base, 0.45, colour, 0.55, 0.0), where=covered[..., None])
    canvas = np.ascontiguousarray(_magnified(mixed, scale))
    _boxes(canvas, centres, sizes, scale, (64, 64, 64))
    return _write_png(path, np.concatenate([canvas, _colour_bar(canvas.shape[0], top)], axis=1))
