"""Local (per-AP) shifts measured where they are used: in one frame, for the APs that stack it.

A frame's local quality needs no local shift (it is measured on the globally stabilized frame), so the
frames can be ranked per AP first and each AP's shift measured only in the frames that AP stacks. What
makes that safe for a cached, incremental stack is that an AP's shift in a frame depends on that frame
and that AP alone, never on which other APs are measured with it:

- each AP's Gauss–Newton steps and correlation are its own arithmetic
  (:func:`~luckystack.imaging.apshift.measure_points`);
- the frame is smoothed over the rows that hold the measured APs' windows, with the columns of every
  AP's window: a row cut lies further from every window than the smoothing reaches, and OpenCV's blur
  treats a column alike whatever the rows, so the pixels measured are the same as over the whole
  region;
- a lost measurement (no match, correlation below ``min_corr``, or further than ``max_jump`` px from
  the median of its good neighbours) is replaced by that median; the neighbours are measured with it
  (an AP's neighbours are fixed), by their strided Gauss–Newton steps alone, whether or not they are
  wanted themselves (a third of the cost of a full measurement, and as good for a test at ``max_jump``
  px); an AP without a good neighbour keeps the global shift alone.

So a rerun that stacks a larger band of ranks measures only the new band, and gets the very bits a run
from scratch would.

With ``grid`` set, the shifts are measured at points ``grid`` px apart (windows of 2 × ``grid`` px,
overlapping by half, but no larger than the APs' own matching windows: points further apart than half
a window cost fewer measurements of the same size) and each AP's shift is the bilinear interpolation of the four points around its
centre: the seeing's shift field is smooth over a window, so small APs (many per window) cost what the
points cost, not what the APs would. The same rules hold with points in place of APs: a point's shift
depends on the frame and the point alone, a lost point is replaced by the median of its good grid
neighbours (measured with it), and an AP is measured well where its four points are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xxhash

from luckystack.imaging.apshift import Templates, make_templates, match_blur, measure_points
from luckystack.imaging.placement import NEAREST_REACH, neighbours

REGION_MARGIN = 16  # px around the AP and matching boxes beyond the search radius: Gauss–Newton steps
#                    (≤ 4 px), bicubic sampling (2), smoothing (≤ 9 at scale 8) and the 2×2 binning
MATCH_WINDOW = 0.3  # the Gauss–Newton weight's sigma as a fraction of the matching window (see the align node)
MEASURE_MARGIN = 8  # px beyond the search radius around the matching windows that are blurred: what the fits
#                    and the half-resolution search read (4), the blur's reach (3), an even first row (1)
BLUR_TAPS = 7  # the matching blur's kernel size: ±3 sigma (OpenCV's default for the sigma is 9)


def boxes_extent(centres: np.ndarray, sizes: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) in crop coordinates of the union of square boxes."""
    top, left = centres[:, 0] - sizes // 2, centres[:, 1] - sizes // 2
    return int(top.min()), int((top + sizes).max()), int(left.min()), int((left + sizes).max())


def work_region(extent: tuple[int, int, int, int], dy: int, dx: int, margin: int,
                shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Frame rows ``[a, b)`` and columns ``[c, d)`` holding ``extent`` moved by (dy, dx) plus ``margin``;
    ``a`` and ``c`` even, so the region's 2×2 bins are the frame's. The whole frame when the moved
    extent lies outside it."""
    top, bottom, left, right = extent
    a = max(0, (top + dy - margin) // 2 * 2)
    c = max(0, (left + dx - margin) // 2 * 2)
    b, d = min(shape[0], bottom + dy + margin), min(shape[1], right + dx + margin)
    if b - a < 2 or d - c < 2:
        return 0, shape[0], 0, shape[1]
    return a, b, c, d


@dataclass(frozen=True)
class _Prepared:
    templates: Templates
    adjacency: np.ndarray  # (P, P) bool: point b is a neighbour of point a
    table: np.ndarray  # (P, K) each point's neighbours, padded with -1
    window_centres: np.ndarray  # (P, 2) the points' matching windows (crop coordinates)
    window_sizes: np.ndarray  # (P,)
    corners: np.ndarray | None  # (A, 4) each AP's points (grid mode; None: every AP is its own point)
    weights: np.ndarray | None  # (A, 4) their bilinear weights


def grid_points(centres: np.ndarray, step: int, shape: tuple[int, int], window: int | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The points around the AP centres ``centres`` (A, 2) at multiples of ``step`` px (crop
    coordinates), each the centre of a matching window of 2 × ``step`` px, at most ``window`` px
    (default no limit; shrunk to an even size, and if the crop is smaller); rows and columns of points whose window would leave ``shape`` are moved in until it fits
    (so a point is where its window measures). Returns the points (P, 2), their windows (centres (P, 2),
    sizes (P,)) and each AP's four points (A, 4) with bilinear weights (A, 4) (clamped: an AP beyond
    the outermost points takes theirs). A point whose weight is 0 for every AP is not kept."""
    c = np.asarray(centres, np.int64)
    h, w = shape
    size = min(2 * step, h - h % 2, w - w % 2, *([window - window % 2] if window else []))
    half = size // 2
    index, frac, axes = [], [], []
    for axis, length in enumerate((h, w)):
        raw = np.arange(c[:, axis].min() // step, c[:, axis].max() // step + 2) * step
        at = np.unique(np.clip(raw, half, length - size + half))
        j = np.clip(np.searchsorted(at, c[:, axis], side="right") - 1, 0, max(len(at) - 2, 0))
        gap = at[np.minimum(j + 1, len(at) - 1)] - at[j]
        t = np.clip((c[:, axis] - at[j]) / np.where(gap > 0, gap, 1), 0.0, 1.0) * (gap > 0)
        index.append(j)
        frac.append(t)
        axes.append(at)
    offsets = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    wy = np.stack([1 - frac[0], frac[0]], 1)[:, offsets[:, 0]]
    wx = np.stack([1 - frac[1], frac[1]], 1)[:, offsets[:, 1]]
    weights = wy * wx
    nodes = np.stack([index[0][:, None] + offsets[None, :, 0], index[1][:, None] + offsets[None, :, 1]], -1)
    keys, inverse = np.unique(nodes[weights > 0], axis=0, return_inverse=True)
    corners = np.zeros(weights.shape, np.int64)
    corners[weights > 0] = inverse.ravel()
    points = np.stack([axes[0][keys[:, 0]], axes[1][keys[:, 1]]], 1).astype(np.int32)
    return points, points.copy(), np.full(len(keys), size, np.int32), corners, weights


_PREPARED: dict[bytes, _Prepared] = {}


@dataclass(frozen=True)
class ApMatching:
    """What measuring the local shifts needs (small; sent to worker processes with the work).

    ``reference`` is the grey reference over the crop, ``centres``/``sizes`` the AP boxes and
    ``windows`` the matching windows (centres, sizes), all in crop coordinates; ``crop`` the crop's
    origin (y0, x0) in the frame."""

    reference: np.ndarray
    centres: np.ndarray
    sizes: np.ndarray
    window_centres: np.ndarray
    window_sizes: np.ndarray
    crop: tuple[int, int]
    search: int
    min_corr: float
    max_jump: float
    grid: int = 0  # px between the points shifts are measured at (0: each AP over its own window)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_memo", "_extent_all")}  # workers prepare their own

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    @property
    def count(self) -> int:
        return len(self.centres)

    def _prepared(self) -> _Prepared:
        """Templates and neighbours, memoised on this object and per process for the last AP set (every
        chunk of a run needs the same; building them costs as much as aligning a few frames)."""
        mine = self.__dict__.get("_memo")
        if mine is not None:
            return mine
        digest = xxhash.xxh3_128(f"{self.crop} {self.grid}".encode())
        for a in (self.reference, self.centres, self.sizes, self.window_centres, self.window_sizes):
            digest.update(np.ascontiguousarray(a))
        key = digest.digest()
        prepared = _PREPARED.get(key)
        if prepared is None:
            corners = weights = None
            if self.grid:
                positions, win_c, win_s, corners, weights = grid_points(
                    self.centres, self.grid, self.reference.shape, int(self.window_sizes.max()))
                near = neighbours(positions, np.full(len(positions), 2 * self.grid), NEAREST_REACH)
            else:
                win_c, win_s = self.window_centres, self.window_sizes
                near = neighbours(self.centres, self.sizes, NEAREST_REACH)
            tpl = make_templates(match_blur(self.reference, BLUR_TAPS), win_c, win_s, self.crop[0], self.crop[1],
                                 MATCH_WINDOW)
            points = len(win_s)
            adjacency = np.zeros((points, points), bool)
            table = np.full((points, max([len(nb) for nb in near] + [1])), -1, np.int64)
            for a, nb in enumerate(near):
                adjacency[a, nb] = True
                table[a, :len(nb)] = nb
            prepared = _Prepared(tpl, adjacency, table, win_c, win_s, corners, weights)
            _PREPARED.clear()
            _PREPARED[key] = prepared
        object.__setattr__(self, "_memo", prepared)
        return prepared

    def needed(self, want: np.ndarray) -> np.ndarray:
        """The points (APs, or grid points in grid mode) measured for the APs ``want``: theirs and
        their neighbours (the outlier check and the replacement of lost measurements use the
        neighbours); (P,) bool."""
        prep = self._prepared()
        own = self._own_points(want)
        return own | prep.adjacency[own].any(axis=0)

    def _own_points(self, want: np.ndarray) -> np.ndarray:
        """The points (P,) bool the APs ``want`` take their shifts from."""
        prep = self._prepared()
        if prep.corners is None:
            return want
        own = np.zeros(len(prep.window_sizes), bool)
        own[prep.corners[want][prep.weights[want] > 0]] = True
        return own

    def region(self, shift: np.ndarray, shape: tuple[int, int], want: np.ndarray | None = None
               ) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) of the frame region smoothed and matched in a frame at global
        ``shift`` for the APs ``want`` (default all): the columns of every AP box and matching window,
        the rows of those of the APs :meth:`needed` (top even). Whatever the APs, each is measured on
        the same smoothed pixels: the columns are always the same, and rows are cut only
        :data:`REGION_MARGIN` px beyond the search radius, further than the smoothing reaches."""
        ry, rx = int(round(shift[0])), int(round(shift[1]))
        margin = self.search + REGION_MARGIN
        every = self.__dict__.get("_extent_all")
        if every is None:
            every = self._extent(None)
            object.__setattr__(self, "_extent_all", every)
        full = work_region(every, self.crop[0] + ry, self.crop[1] + rx, margin, shape)
        if want is None or full == (0, shape[0], 0, shape[1]):
            return full
        a, b, _, _ = work_region(self._extent(self.needed(want)), self.crop[0] + ry, self.crop[1] + rx, margin,
                                 shape)
        return max(a, full[0]), min(b, full[1]), full[2], full[3]

    def _extent(self, points: np.ndarray | None) -> tuple[int, int, int, int]:
        """The extent (crop coordinates) of the matching windows of ``points`` and of their AP boxes
        (default: all of them; in grid mode the windows of ``points`` alone)."""
        prep = self._prepared()
        pick = slice(None) if points is None else points
        if prep.corners is not None and points is not None:
            return boxes_extent(prep.window_centres[pick], prep.window_sizes[pick])
        if prep.corners is not None:
            return boxes_extent(np.concatenate([self.centres, prep.window_centres]),
                                np.concatenate([self.sizes, prep.window_sizes]))
        return boxes_extent(np.concatenate([self.centres[pick], prep.window_centres[pick]]),
                            np.concatenate([self.sizes[pick], prep.window_sizes[pick]]))

    def shifts(self, mono: np.ndarray, origin: tuple[int, int], shift: np.ndarray, want: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, int]:
        """Local shifts (A, 2) float64 of the APs ``want`` ((A,) bool; other rows 0) in one frame whose
        :meth:`region` for ``want`` is ``mono`` (grey, at frame position ``origin``), its global shift
        ``shift``; whether each was measured well (A,) bool (False where replaced, and for APs not
        wanted); and the number of AP measurements made (neighbours included). A lost AP without a good
        neighbour keeps the global shift alone (local shift 0)."""
        prep = self._prepared()
        need = self.needed(want)
        a, b, c, d = self._measured_box(shift, need, origin, mono.shape)  # blurred: the part the fits read
        mono, origin = mono[a:b, c:d], (origin[0] + a, origin[1] + c)
        blurred = match_blur(mono, BLUR_TAPS)
        gdy, gdx = float(shift[0]) - origin[0], float(shift[1]) - origin[1]
        own = self._own_points(want)
        loc, ok = self._point_shifts(blurred, gdy, gdx, need, own)
        if prep.corners is None:
            return loc, ok, int(need.sum())
        weights = np.where(want[:, None], prep.weights, 0.0)
        local = (weights[..., None] * loc[prep.corners]).sum(axis=1)
        well = want & np.all(ok[prep.corners] | (weights == 0), axis=1)
        return local, well, int(need.sum())

    def _measured_box(self, shift: np.ndarray, need: np.ndarray, origin: tuple[int, int],
                      shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) of the part of a region (at frame position ``origin``, of
        ``shape``) that measuring the points ``need`` at global ``shift`` reads: the rows of their
        windows, the columns of every point's window (so OpenCV's blur treats every column alike
        whatever the points), :data:`MEASURE_MARGIN` px beyond the search radius around them, top and
        left on even frame rows and columns (the search's 2×2 bins are the frame's)."""
        prep = self._prepared()
        if not need.any():
            return 0, shape[0], 0, shape[1]
        ry, rx = int(round(shift[0])), int(round(shift[1]))
        margin = self.search + MEASURE_MARGIN
        top, bottom, _, _ = boxes_extent(prep.window_centres[need], prep.window_sizes[need])
        _, _, left, right = boxes_extent(prep.window_centres, prep.window_sizes)
        y0, x0 = origin[0] + origin[0] % 2, origin[1] + origin[1] % 2
        a = max((self.crop[0] + ry + top - margin) // 2 * 2, y0) - origin[0]
        c = max((self.crop[1] + rx + left - margin) // 2 * 2, x0) - origin[1]
        b = min(self.crop[0] + ry + bottom + margin - origin[0], shape[0])
        d = min(self.crop[1] + rx + right + margin - origin[1], shape[1])
        if b - a < 2 or d - c < 2:
            return 0, shape[0], 0, shape[1]
        return a, b, c, d

    def _point_shifts(self, blurred: np.ndarray, gdy: float, gdx: float, need: np.ndarray, want: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`shifts` of the points ``want`` (measured with the points ``need``): ``want`` with the
        full-resolution fits, every point ``need`` with the strided steps, whose estimates judge and
        replace the neighbours' measurements (a neighbour's evidence is the same whether or not it
        is wanted itself)."""
        prep = self._prepared()
        m = measure_points(blurred, prep.templates, gdy, gdx, self.search, need, want)
        loc = m.shift
        good = need & m.coarse_found & (m.coarse_score >= self.min_corr)
        ok = want & m.found & (m.score >= self.min_corr)
        check = np.flatnonzero(ok)
        if check.size:
            med, count = _neighbour_medians(m.coarse_shift, good, prep.table[check])
            jumped = (count >= 2) & (np.hypot(*(loc[check] - med).T) > self.max_jump)
            ok[check[jumped]] = False
        lost = np.flatnonzero(want & ~ok)
        if lost.size:
            med, count = _neighbour_medians(m.coarse_shift, good, prep.table[lost])
            loc[lost] = np.where(count[:, None] > 0, med, 0.0)
        loc[~want] = 0.0
        return loc, ok


def _neighbour_medians(loc: np.ndarray, good: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``table`` (k, K) (AP indices, -1 = none): the median (k, 2) of ``loc`` over its good
    APs and their count (k,); rows without any have an undefined median. Row by row the same values
    as ``np.median``."""
    use = (table >= 0) & good[np.maximum(table, 0)]
    v = np.where(use[..., None], loc[np.maximum(table, 0)], np.inf)
    v.sort(axis=1)
    count = use.sum(axis=1)
    lo, hi = np.maximum(count - 1, 0) // 2, count // 2
    r = np.arange(len(v))
    return (v[r, lo] + v[r, np.minimum(hi, v.shape[1] - 1)]) / 2, count
