"""Alignment-point (AP) placement on the reference image.

APs are square boxes on an overlapping grid (step = half the box), kept where the reference is bright
enough and has structure in both directions, at a margin from the image edges; manual APs are added
as given. Centres are integer (y, x); a box of size s centred at c covers rows ``c - s//2 … c - s//2 + s - 1``.
"""

from __future__ import annotations

import numpy as np

from luckystack.imaging.registration import structure_map

# Outliers are judged against the first ring of neighbours (grid step s/2 and its diagonal): a wider
# ring rejected true measurements where the field differs by more than max_jump over the distance.
NEAREST_REACH = 0.8
TARGET_APS = 25  # Jupiter-like discs get roughly 10–40 APs with the default size


def default_ap_size(mono: np.ndarray, min_brightness: float = 0.2) -> int:
    """An AP size giving about ``TARGET_APS`` grid points on the bright object (multiple of 8, 24…128).

    A grid with step s/2 puts about ``area / (s/2)²`` points on an object of ``area`` pixels.
    """
    lo, hi = float(mono.min()), float(mono.max())
    area = int(np.count_nonzero(mono > lo + min_brightness * (hi - lo))) if hi > lo else mono.size
    size = 2.0 * np.sqrt(max(area, 1) / TARGET_APS)
    return int(np.clip(8 * round(size / 8), 24, 128))


def grid_aps(mono: np.ndarray, size: int, margin: int, min_brightness: float = 0.2,
             min_structure: float = 0.04) -> np.ndarray:
    """Grid AP centres (A, 2) int32 for one box size, filtered by brightness and structure.

    ``min_brightness``: the box's mean must exceed this fraction of the image's (max − min) above min.
    ``min_structure``: the box's min(mean |∂x|, mean |∂y|) must exceed this fraction of the best box's.
    """
    h, w = mono.shape
    half, step = size // 2, max(1, size // 2)
    lo_y, hi_y = margin + half, h - margin - (size - half)
    lo_x, hi_x = margin + half, w - margin - (size - half)
    if hi_y < lo_y or hi_x < lo_x:
        return np.zeros((0, 2), np.int32)
    ys = _centred_range(lo_y, hi_y, step)
    xs = _centred_range(lo_x, hi_x, step)
    cy, cx = np.meshgrid(ys, xs, indexing="ij")
    cy, cx = cy.ravel(), cx.ravel()
    struct = structure_map(mono, size)[cy - half, cx - half]
    ii = np.pad(np.cumsum(np.cumsum(mono.astype(np.float64), 0), 1), ((1, 0), (1, 0)))
    y0, x0 = cy - half, cx - half
    mean = (ii[y0 + size, x0 + size] - ii[y0, x0 + size] - ii[y0 + size, x0] + ii[y0, x0]) / size ** 2
    lo, hi = float(mono.min()), float(mono.max())
    keep = mean > lo + min_brightness * (hi - lo)
    if keep.any():
        keep &= struct >= min_structure * float(struct[keep].max())
    return np.stack([cy[keep], cx[keep]], axis=1).astype(np.int32)


def _centred_range(lo: int, hi: int, step: int) -> np.ndarray:
    """Points from lo to hi (inclusive) at ``step``, the leftover split evenly at both ends."""
    n = (hi - lo) // step
    start = lo + ((hi - lo) - n * step) // 2
    return start + step * np.arange(n + 1)


def place_aps(mono: np.ndarray, sizes: list[int] | None = None, margin: int = 8,
              min_brightness: float = 0.2, min_structure: float = 0.04,
              manual: list[tuple[int, int, int]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All APs: grids for each size (default: :func:`default_ap_size`) plus manual (x, y, size) APs.

    Returns centres (A, 2) int32 (y, x) and sizes (A,) int32. Manual APs must fit inside the image.
    """
    mono = np.asarray(mono, dtype=np.float32)
    sizes = list(sizes) if sizes else [default_ap_size(mono, min_brightness)]
    centres, box = [], []
    for s in sizes:
        c = grid_aps(mono, int(s), margin, min_brightness, min_structure)
        centres.append(c)
        box.append(np.full(len(c), s, np.int32))
    h, w = mono.shape
    for x, y, s in manual or []:
        half = s // 2
        if y - half < 0 or x - half < 0 or y - half + s > h or x - half + s > w:
            raise ValueError(f"manual AP at x={x}, y={y} with size {s} does not fit in the {w}×{h} image")
        centres.append(np.array([[y, x]], np.int32))
        box.append(np.array([s], np.int32))
    return np.concatenate(centres).astype(np.int32), np.concatenate(box).astype(np.int32)


def neighbours(centres: np.ndarray, sizes: np.ndarray, reach: float = 1.6) -> list[np.ndarray]:
    """For each AP, the indices of other APs within ``reach`` × its size (for outlier replacement)."""
    c = centres.astype(np.float64)
    d = np.sqrt(((c[:, None, :] - c[None, :, :]) ** 2).sum(-1))
    out = []
    for a in range(len(c)):
        near = np.flatnonzero((d[a] <= reach * sizes[a]) & (np.arange(len(c)) != a))
        out.append(near)
    return out


def match_boxes(centres: np.ndarray, sizes: np.ndarray, shape: tuple[int, int],
                size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The boxes over which each AP's shift is measured: ``size`` px (same parity as the AP box, so the
    continuous centre is the AP's), shrunk by 2 px steps until it fits in ``shape``, but never below
    the AP box (which fits). ``size`` None: the AP boxes themselves. Returns centres (A, 2), sizes (A,).

    Decoupling the matching window from the AP box lets a user stack with small boxes while each shift
    is still measured over enough detail, and keeps large boxes from averaging a varying field.
    """
    centres, sizes = np.asarray(centres, np.int64), np.asarray(sizes, np.int64)
    if size is None:
        return centres.astype(np.int32), sizes.astype(np.int32)
    h, w = shape
    top, left = centres[:, 0] - sizes // 2, centres[:, 1] - sizes // 2  # AP box corner
    m = size + (size - sizes) % 2
    # Room on each side of the AP box: the window may grow by 2·room px at most.
    room = np.minimum.reduce([top, left, h - top - sizes, w - left - sizes])
    m = np.where(m > sizes, np.minimum(m, sizes + 2 * np.maximum(room, 0)), m)
    grow = (m - sizes) // 2
    return np.stack([top - grow + m // 2, left - grow + m // 2], 1).astype(np.int32), m.astype(np.int32)
