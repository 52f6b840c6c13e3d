"""Local (per-AP) shifts measured where they are used: in one frame, for the APs that stack it.

A frame's local quality needs no local shift (it is measured on the globally stabilized frame), so the
frames can be ranked per AP first and each AP's shift measured only in the frames that AP stacks. What
makes that safe for a cached, incremental stack is that an AP's shift in a frame depends on that frame
and that AP alone, never on which other APs are measured with it:

- each AP's Gauss–Newton steps and correlation are its own arithmetic (:func:`~luckystack.imaging.apshift.measure`);
- the frame is smoothed over rows that hold the measured APs' windows, with the columns of all of them:
  a row cut lies further from every window than the smoothing reaches, so the pixels measured are the
  same as over the whole region;
- a lost measurement (no match, correlation below ``min_corr``, or further than ``max_jump`` px from
  the median of its good neighbours) is replaced by that median; the neighbours are measured with it
  (an AP's neighbours are fixed); an AP without a good neighbour keeps the global shift alone.

So a rerun that stacks a larger band of ranks measures only the new band, and gets the very bits a run
from scratch would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xxhash

from luckystack.imaging.apshift import Templates, make_templates, match_blur, measure
from luckystack.imaging.placement import NEAREST_REACH, neighbours

REGION_MARGIN = 16  # px around the AP and matching boxes beyond the search radius: Gauss–Newton steps
#                    (≤ 4 px), bicubic sampling (2), smoothing (≤ 9 at scale 8) and the 2×2 binning
MATCH_WINDOW = 0.3  # the Gauss–Newton weight's sigma as a fraction of the matching window (see the align node)


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
    adjacency: np.ndarray  # (A, A) bool: AP b is a neighbour of AP a
    near: list[np.ndarray]  # each AP's neighbours
    table: np.ndarray  # (A, K) each AP's neighbours, padded with -1


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

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_memo"}  # workers prepare their own

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
        digest = xxhash.xxh3_128(f"{self.crop}".encode())
        for a in (self.reference, self.centres, self.sizes, self.window_centres, self.window_sizes):
            digest.update(np.ascontiguousarray(a))
        key = digest.digest()
        prepared = _PREPARED.get(key)
        if prepared is None:
            tpl = make_templates(match_blur(self.reference), self.window_centres, self.window_sizes,
                                 self.crop[0], self.crop[1], MATCH_WINDOW)
            near = neighbours(self.centres, self.sizes, NEAREST_REACH)
            adjacency = np.zeros((self.count, self.count), bool)
            for a, nb in enumerate(near):
                adjacency[a, nb] = True
            table = np.full((self.count, max([len(nb) for nb in near] + [1])), -1, np.int64)
            for a, nb in enumerate(near):
                table[a, :len(nb)] = nb
            prepared = _Prepared(tpl, adjacency, near, table)
            _PREPARED.clear()
            _PREPARED[key] = prepared
        object.__setattr__(self, "_memo", prepared)
        return prepared

    def needed(self, want: np.ndarray) -> np.ndarray:
        """The APs (A,) bool measured for the APs ``want``: they and their neighbours (the outlier
        check and the replacement of lost measurements use the neighbours)."""
        return want | self._prepared().adjacency[want].any(axis=0)

    def region(self, shift: np.ndarray, shape: tuple[int, int], want: np.ndarray | None = None
               ) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) of the frame region smoothed and matched in a frame at global
        ``shift`` for the APs ``want`` (default all): the columns of every AP box and matching window,
        the rows of those of the APs :meth:`needed` (top even). Whatever the APs, each is measured on
        the same smoothed pixels: the columns are always the same, and rows are cut only
        :data:`REGION_MARGIN` px beyond the search radius, further than the smoothing reaches."""
        ry, rx = int(round(shift[0])), int(round(shift[1]))
        margin = self.search + REGION_MARGIN
        full = work_region(self._extent(None), self.crop[0] + ry, self.crop[1] + rx, margin, shape)
        if want is None or full == (0, shape[0], 0, shape[1]):
            return full
        a, b, _, _ = work_region(self._extent(self.needed(want)), self.crop[0] + ry, self.crop[1] + rx, margin,
                                 shape)
        return max(a, full[0]), min(b, full[1]), full[2], full[3]

    def _extent(self, aps: np.ndarray | None) -> tuple[int, int, int, int]:
        """The extent (crop coordinates) of the AP boxes and matching windows of ``aps`` (default all)."""
        pick = slice(None) if aps is None else aps
        return boxes_extent(np.concatenate([self.centres[pick], self.window_centres[pick]]),
                            np.concatenate([self.sizes[pick], self.window_sizes[pick]]))

    def shifts(self, mono: np.ndarray, origin: tuple[int, int], shift: np.ndarray, want: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, int]:
        """Local shifts (A, 2) float64 of the APs ``want`` ((A,) bool; other rows 0) in one frame whose
        :meth:`region` for ``want`` is ``mono`` (grey, at frame position ``origin``), its global shift
        ``shift``; whether each was measured well (A,) bool (False where replaced, and for APs not
        wanted); and the number of AP measurements made (neighbours included). A lost AP without a good
        neighbour keeps the global shift alone (local shift 0)."""
        prep = self._prepared()
        blurred = match_blur(mono)
        gdy, gdx = float(shift[0]) - origin[0], float(shift[1]) - origin[1]
        need = self.needed(want)
        loc, score, found = measure(blurred, prep.templates, gdy, gdx, self.search, need)
        good = need & found & (score >= self.min_corr)
        ok = good & want
        check = np.flatnonzero(ok)
        if check.size:
            med, count = _neighbour_medians(loc, good, prep.table[check])
            jumped = (count >= 2) & (np.hypot(*(loc[check] - med).T) > self.max_jump)
            ok[check[jumped]] = False
        lost = np.flatnonzero(want & ~ok)
        if lost.size:
            med, count = _neighbour_medians(loc, good, prep.table[lost])
            loc[lost] = np.where(count[:, None] > 0, med, 0.0)
        loc[~want] = 0.0
        return loc, ok, int(need.sum())


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
