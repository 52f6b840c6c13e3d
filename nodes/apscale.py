"""align's ``ap_size: auto``: measure the local shift field of the best frames on a grid and choose the
AP size over which it stays rigid (the maths: :mod:`luckystack.imaging.apscale`)."""

from __future__ import annotations

import numpy as np

from luckystack.imaging.apscale import FieldScale, detail_frequency, field_scale, rigid_size, structure
from luckystack.imaging.localshift import ApMatching
from luckystack.imaging.placement import default_ap_size, grid_aps

STEP = 32  # px between measurement points, and their matching windows' size: the windows do not overlap,
#            so their measurement noise is independent and the same at every lag
FRAMES = 12  # the best frames measured: those every stack size stacks
MAX_POINTS = 400  # a large surface is measured on its central block of points


def measure_field(stream, shift: np.ndarray, valid: np.ndarray, score: np.ndarray, mono: np.ndarray,
                  crop: list[int], margin: int, min_brightness: float, min_structure: float, search: int,
                  min_corr: float, max_jump: float) -> FieldScale:
    """The structure of the local shift field in the best :data:`FRAMES` valid frames (by ``score``),
    on a grid of :data:`STEP` px over the object."""
    points = grid_aps(mono, 2 * STEP, margin, min_brightness, min_structure)
    if len(points) > MAX_POINTS:
        centre = np.array(mono.shape) / 2
        points = points[np.argsort(np.abs(points - centre).max(axis=1), kind="stable")[:MAX_POINTS]]
    if len(points) < 3:
        return field_scale([], [], [], 0.0)
    sizes = np.full(len(points), STEP, np.int32)
    matching = ApMatching(np.ascontiguousarray(mono, np.float32), points.astype(np.int32), sizes,
                          points.astype(np.int32), sizes, (int(crop[0]), int(crop[1])), search, min_corr,
                          max_jump)
    usable = np.flatnonzero(valid & np.isfinite(score))
    best = usable[np.argsort(-score[usable], kind="stable")[:FRAMES]]
    everything = np.ones(len(points), bool)
    local = np.zeros((len(best), len(points), 2))
    ok = np.zeros((len(best), len(points)), bool)
    for k, i in enumerate(best):
        a, b, c, d = matching.region(shift[i], (stream.height, stream.width))
        local[k], ok[k], _ = matching.shifts(stream.read_mono(int(i), (a, b, c, d)), (a, c), shift[i], everything)
    return field_scale(*structure(points, local, ok, STEP), detail_frequency(mono, points, 2 * STEP))


def auto_ap_size(scale: FieldScale, mono: np.ndarray, min_brightness: float) -> tuple[int, int]:
    """The AP size the field allows, at most the size that gives the object about 25 APs (which a
    rigid field keeps); and that size."""
    largest = default_ap_size(mono, min_brightness)
    return rigid_size(scale, largest), largest
