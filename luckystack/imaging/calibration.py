"""Calibration maths on raw frames: master frames, flat normalisation, hot and cold pixels.

Everything works in *raw sample units* (the values as stored in the file), so a dark and a light
recording agree whatever bit depth was detected for each. Scaling to 0..1 happens last.
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_FLAT = 0.05  # normalised flat values below this are treated as dead (gain 1, pixel flagged)


def fill_nonfinite(plane: np.ndarray) -> int:
    """Fill the NaN/inf pixels of a 2-D float plane in place from their finite neighbours; their count.

    Rings grow inward: each pass gives every non-finite pixel that touches finite ones the mean of its
    finite 3×3 neighbours, so a blob takes its surroundings' values (never outside their range) and
    never the frame's median, which would stack as a dark smear on a bright disc. Works on the
    bad pixels' bounding box only. A plane with no finite pixel becomes 0.
    """
    bad = ~np.isfinite(plane)
    n = int(np.count_nonzero(bad))
    if n == 0:
        return 0
    if n == plane.size:
        plane[...] = 0.0
        return n
    rows, cols = np.flatnonzero(bad.any(axis=1)), np.flatnonzero(bad.any(axis=0))
    top, bottom = max(rows[0] - 1, 0), min(rows[-1] + 2, plane.shape[0])
    left, right = max(cols[0] - 1, 0), min(cols[-1] + 2, plane.shape[1])
    box = np.ascontiguousarray(plane[top:bottom, left:right], dtype=np.float32)
    hole = np.ascontiguousarray(bad[top:bottom, left:right])
    while hole.any():
        known = (~hole).astype(np.float32)
        total = cv2.boxFilter(np.where(hole, 0.0, box).astype(np.float32), -1, (3, 3), normalize=False,
                              borderType=cv2.BORDER_CONSTANT)
        weight = cv2.boxFilter(known, -1, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
        ring = hole & (weight > 0)
        if not ring.any():  # only when the box holds no finite pixel: cannot happen (it has a border)
            box[hole] = 0.0
            break
        box[ring] = total[ring] / weight[ring]
        hole &= ~ring
    plane[top:bottom, left:right] = box
    return n


def fill_nonfinite_planes(image: np.ndarray) -> int:
    """:func:`fill_nonfinite` on every channel of an (H, W) or (H, W, C) float image, in place; the count."""
    planes = [image] if image.ndim == 2 else [image[..., c] for c in range(image.shape[2])]
    return sum(fill_nonfinite(plane) for plane in planes)


def robust_sigma(values: np.ndarray) -> float:
    """Standard deviation estimated from the median absolute deviation (Gaussian-consistent)."""
    v = np.asarray(values, np.float64).ravel()
    return float(1.4826 * np.median(np.abs(v - np.median(v)))) if v.size else 0.0


def median_of_stack(frames: np.ndarray) -> np.ndarray:
    """Per-pixel median of a (n, H, W[, C]) stack as float32."""
    return np.median(np.asarray(frames, np.float32), axis=0).astype(np.float32)


class MedianReducer:
    """Streaming approximate median with bounded memory: a median of chunk medians, collapsed in levels.

    Chunks arrive in order; when ``fan_in`` partial medians pile up at a level they are replaced by their
    median one level up. Memory is O(fan_in · levels · frame), levels = log_fan_in(chunks).
    Exact when everything fits in one chunk.
    """

    def __init__(self, fan_in: int = 16) -> None:
        self.fan_in = fan_in
        self.levels: list[list[np.ndarray]] = [[]]

    def add(self, chunk_median: np.ndarray) -> None:
        self.levels[0].append(np.asarray(chunk_median, np.float32))
        level = 0
        while len(self.levels[level]) >= self.fan_in:
            merged = median_of_stack(np.stack(self.levels[level]))
            self.levels[level] = []
            if level + 1 == len(self.levels):
                self.levels.append([])
            self.levels[level + 1].append(merged)
            level += 1

    def result(self) -> np.ndarray:
        pending = [m for level in self.levels for m in level]
        if not pending:
            raise ValueError("no frames were added")
        return pending[0] if len(pending) == 1 else median_of_stack(np.stack(pending))


def flat_gain(flat: np.ndarray, flat_dark: np.ndarray | None = None, pattern: str | None = None,
              min_flat: float = MIN_FLAT) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel gain 1 / normalised flat, and a mask of dead flat pixels.

    The flat (minus its flat-dark) is normalised to mean 1 per CFA colour for Bayer data (so the flat
    does not change colour balance) or overall otherwise. Pixels below ``min_flat`` get gain 1 and are
    reported as dead rather than amplified into noise.
    """
    f = np.asarray(flat, np.float32) - (0 if flat_dark is None else np.asarray(flat_dark, np.float32))
    norm = np.empty_like(f)
    phases = ((0, 0), (0, 1), (1, 0), (1, 1)) if pattern else ((slice(None), slice(None)),)
    for ph in phases:
        sl = (slice(ph[0], None, 2), slice(ph[1], None, 2)) if pattern else ph
        part = f[sl]
        level = float(np.median(part[part > 0])) if np.any(part > 0) else 0.0
        if level <= 0:
            raise ValueError("the master flat has no positive signal (is it a dark?)")
        norm[sl] = part / level
    dead = ~(norm >= min_flat)
    gain = np.where(dead, 1.0, 1.0 / np.where(dead, 1.0, norm)).astype(np.float32)
    return gain, dead


def hot_pixels_from_dark(dark: np.ndarray, sigma: float) -> np.ndarray:
    """(K, 2) int32 (y, x) of pixels whose dark current is ``sigma`` robust deviations above typical."""
    d = np.asarray(dark, np.float32)
    if d.ndim == 3:
        d = d.max(axis=2)
    level, spread = float(np.median(d)), robust_sigma(d[:: max(1, d.shape[0] // 256), :])
    spread = max(spread, 1e-6 * max(1.0, abs(level)))
    return np.argwhere(d > level + sigma * spread).astype(np.int32)


def neighbour_deviation(frame: np.ndarray, stride: int) -> np.ndarray:
    """frame − median of its 8 same-colour neighbours ``stride`` pixels away (stride 2 for Bayer)."""
    f = np.asarray(frame, np.float32)
    pad = cv2.copyMakeBorder(f, stride, stride, stride, stride, cv2.BORDER_REFLECT_101)
    h, w = f.shape
    shifts = [(dy, dx) for dy in (-stride, 0, stride) for dx in (-stride, 0, stride) if (dy, dx) != (0, 0)]
    neigh = np.stack([pad[stride + dy:stride + dy + h, stride + dx:stride + dx + w] for dy, dx in shifts])
    return f - np.median(neigh, axis=0)


def outlier_pixels(samples: np.ndarray, stride: int, sigma: float) -> np.ndarray:
    """(K, 2) int32 (y, x) of pixels that stand out from their neighbours in most sample frames.

    ``samples`` is (n, H, W) raw frames. A pixel is bad when the median over frames of its deviation
    from its same-colour neighbours exceeds ``sigma`` robust deviations, either way (hot or cold);
    moving detail does not persist across frames, defects do.
    """
    devs = np.stack([neighbour_deviation(s, stride) for s in samples])
    dev = np.median(devs, axis=0)
    # the spread of a single frame's deviations: noise plus detail, so moving detail never counts as a defect
    spread = max(robust_sigma(devs[0][:: max(1, dev.shape[0] // 256), :]), 1e-6)
    return np.argwhere(np.abs(dev) > sigma * spread).astype(np.int32)


def neighbour_index(coords: np.ndarray, shape: tuple[int, int], stride: int) -> np.ndarray:
    """(K, 8) flat indices of the same-colour neighbours of each bad pixel (clamped at the edges)."""
    h, w = shape
    y, x = coords[:, 0:1].astype(np.int64), coords[:, 1:2].astype(np.int64)
    dy = np.array([-1, -1, -1, 0, 0, 1, 1, 1]) * stride
    dx = np.array([-1, 0, 1, -1, 1, -1, 0, 1]) * stride
    ny, nx = y + dy, x + dx
    ny = np.where(ny < 0, ny + 2 * stride, np.where(ny >= h, ny - 2 * stride, ny))
    nx = np.where(nx < 0, nx + 2 * stride, np.where(nx >= w, nx - 2 * stride, nx))
    return np.clip(ny, 0, h - 1) * w + np.clip(nx, 0, w - 1)


def fix_pixels(frame: np.ndarray, coords: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Replace the pixels at ``coords`` of an (H, W) frame in place by the median of their neighbours."""
    if len(coords):
        flat = frame.reshape(-1)
        idx = coords[:, 0].astype(np.int64) * frame.shape[1] + coords[:, 1]
        flat[idx] = np.median(flat[neighbours], axis=1)
    return frame
