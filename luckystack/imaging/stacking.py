"""Per-AP frame selection and one-pass, chunked accumulation of AP patches and the background.

How the work is shared: every AP ranks its valid frames by quality (rank 0 = best). The caller asks
for *bands* of ranks, ``[lo, hi)`` each (per AP); a frame ranked ``r`` for an AP is added into every
band that holds ``r``, so bands may overlap (a band below a stack size, and a longer one below the
next boundary of the caller's chain of sums) and each patch is still sampled and transformed once.
Each frame is read once; for each AP that selected it, its patch is sampled at the frame's sub-pixel
position (global + local shift) and added, weighted, into the band accumulators. The background
(global shift only, best frames by global quality, plain mean) is accumulated in the same pass, in
the same bands of the global ranks. Chunks of frames are summed independently and the caller adds
the chunk sums in chunk order, so the bits do not depend on how many workers ran.

Every frame is multiplied by its ``gain`` before it is added: the caller's factor that brings its
brightness (its transparency) to a common level, 1 when brightness is not matched.

A frame whose patches are all it gives (no background band) is read only where they lie
(:func:`patch_box`), with the very same values.

With ``spectral_power`` the patches are summed as spectra, each frequency weighted by how much of the
object the frame kept there (:mod:`luckystack.imaging.spectral`); the sums stay linear, so bands and
chunks work as above. A patch's spectrum is then taken from its whole-pixel block, the sub-pixel shift
applied as the interpolation kernel's frequency response (:func:`~luckystack.imaging.spectral.shifted_spectra`).

Sigma clipping needs the per-pixel mean and spread first, so it is a second pass over the selected
frames (:class:`ClipStats`), in which each sample enters a size only if it lies within ``kappa``
standard deviations of that size's first-pass mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from luckystack.imaging.colour import grey
from luckystack.imaging.drizzle import bayer_drizzle_patch, drizzle_patch, interpolate_patch
from luckystack.imaging.localshift import ApMatching
from luckystack.imaging.spectral import (
    coarse_shape, shifted_spectra, spectral_weights, spectral_weights_powers, upsampled,
)

PATCH_OVERLAP = 1.5  # patch side = AP box × 1.5, so neighbouring patches (step ≈ box/2) overlap
READ_BOXES = True  # read a frame only where its patches lie when it gives no background (see patch_box)
READ_MARGIN = 6  # px around the patches' footprint: interpolation taps (≤ 4 px) and drizzle drops
FFT_PRIMES = (2, 3, 5, 7, 11, 13)  # a spectral patch's side has only these prime factors: its transform,
#   weights and sums then take ~6.5 ns/px; a factor of 17 or more cost 30–100 % more (OpenCV's DFT, even
#   sides 36–200 px; 136 px for 90 px APs 163 µs a patch against 129 µs at 140 px). The default AP
#   sizes, multiples of 8, give sides that need no change
SPECTRA_PIXELS = 8 * 132 * 132  # pixels of the patches transformed and weighted together (spectra_batch)
SPECTRA_BATCH_MAX = 64  # patches at most in one batch
SMALL_PATCH = 96  # px: patches this small are added into their sums with one indexed add per batch


def stack_sizes(n_valid: int, percent: list[float] | None = None,
                frames: list[int] | None = None) -> list[tuple[str, int]]:
    """``(label, frame count)`` per requested stack size, labels ``P25`` / ``F200``, in request order.

    Counts are clamped to ``1 … n_valid``.
    """
    if (percent is None) == (frames is None):
        raise ValueError("give exactly one of percent or frames")
    if n_valid < 1:
        raise ValueError("no valid frames to stack")
    out = []
    if percent is not None:
        for p in percent:
            label = f"P{p:g}".replace(".", "p")
            out.append((label, int(min(n_valid, max(1, round(p / 100.0 * n_valid))))))
    else:
        for f in frames:
            out.append((f"F{int(f)}", int(min(n_valid, max(1, f)))))
    return out


def rank_frames(quality: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Rank (0 = best) of each frame per column by descending quality; -1 where invalid.

    ``quality`` and ``valid`` are (N, A) (or (N,)); ties go to the earlier frame.
    """
    q = np.where(valid & np.isfinite(quality), quality, -np.inf)
    q2 = q.reshape(q.shape[0], -1)
    order = np.argsort(-q2, axis=0, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(q2.shape[0])[:, None], q2.shape), axis=0)
    rank = rank.reshape(q.shape)
    return np.where(np.isfinite(q), rank, -1).astype(np.int32)


def in_bands(rank: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Whether each ranked frame lies in each band ``[lo, hi)`` of ranks: ``rank`` (..., A) or (...),
    ``lo``/``hi`` (A, B) or (B,); returns (..., A, B) or (..., B). Unranked frames (-1) lie in none."""
    r = np.asarray(rank)[..., None]
    return (r >= lo) & (r < hi) & (r >= 0)


def quality_weights(quality: np.ndarray, rank: np.ndarray, power: float) -> np.ndarray:
    """Stacking weight ``(q / q_best)^power`` per frame and AP (1 everywhere for power 0)."""
    if power == 0:
        return np.ones(quality.shape)
    q = np.where(rank >= 0, np.nan_to_num(quality, nan=0.0), 0.0).clip(0, None)
    best = q.max(axis=0, keepdims=True)
    rel = np.divide(q, best, out=np.ones_like(q), where=best > 0)
    return np.maximum(rel, 1e-6) ** power


def fft_side(side: int) -> int:
    """The smallest even side ≥ ``side`` whose prime factors all lie in :data:`FFT_PRIMES`."""
    n = side + side % 2
    while True:
        rest = n
        for prime in FFT_PRIMES:
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return n
        n += 2


def patch_geometry(centers: np.ndarray, sizes: np.ndarray, zoom: float, fft: bool = False
                   ) -> tuple[np.ndarray, int]:
    """Output-grid origins (A, 2) and the common square patch side (output pixels) of the AP patches.

    A patch is the AP box × :data:`PATCH_OVERLAP` (largest AP), centred on the AP centre, on the grid
    magnified by ``zoom``. With ``fft`` (the patches are Fourier transformed) the side grows to the
    next :func:`fft_side`.
    """
    side = int(np.ceil(PATCH_OVERLAP * int(np.max(sizes)) * zoom / 2.0)) * 2
    if fft:
        side = fft_side(side)
    centre_out = np.round((np.asarray(centers, dtype=np.float64) + 0.5) * zoom - 0.5).astype(np.int64)
    return (centre_out - side // 2).astype(np.int32), side


@dataclass
class ClipStats:
    """First-pass statistics for sigma clipping, per AP and stack size (ascending)."""

    mean: np.ndarray  # (A, S, p, p, C)
    std: np.ndarray  # (A, S, p, p, C)
    counts: np.ndarray  # (A, S) frames per size
    kappa: float


@dataclass
class StackPlan:
    """What every chunk needs to know (sent along with each chunk)."""

    stream: object  # a FrameStream
    origins: np.ndarray  # (A, 2) patch origins, output pixels
    patch: int  # patch side, output pixels
    zoom: float
    method: str  # "interpolate", "drizzle" or "bayer"
    pixfrac: float
    interpolation: str
    bands: int  # accumulators per AP (and background bands)
    crop_offset: tuple[int, int]  # (y0, x0) of the crop in reference/frame coordinates
    out_shape: tuple[int, int]  # (H*z, W*z) of the background
    channels: int
    squares: bool = False  # also accumulate Σw·v² (first pass of sigma clipping)
    clip: ClipStats | None = None
    spectral_power: float = 0.0  # > 0: weight every patch per spatial frequency (imaging.spectral)
    band_lo: np.ndarray | None = None  # (A, B) ranks [lo, hi) of each AP's bands (see in_bands)
    band_hi: np.ndarray | None = None
    bg_lo: np.ndarray | None = None  # (B,) global ranks of the background's bands; None: no background
    bg_hi: np.ndarray | None = None
    matching: ApMatching | None = None  # measures the local shifts where the work has none
    first_ap: int = 0  # index of this plan's first AP among the matching's (the plan may hold a group)
    spectral_powers: tuple[float, ...] = ()  # candidates: spectral sums at each of these powers (see slots)
    halves: bool = False  # … each in two halves, the frames of even and of odd rank per AP

    @property
    def spectral(self) -> bool:
        """Whether the patches are summed as spectra."""
        return self.spectral_power > 0 or bool(self.spectral_powers)

    @property
    def slots(self) -> int:
        """Sums per AP and band with :attr:`spectral_powers`: power q's frames of rank parity h go to
        slot ``q·2 + h`` with :attr:`halves`, else to slot q; 0 without spectral_powers (no slot axis)."""
        return len(self.spectral_powers) * (2 if self.halves else 1)


@dataclass
class ChunkWork:
    plan: StackPlan
    frames: np.ndarray  # (n,) frame indices in the selection
    shift: np.ndarray  # (n, 2) global shift
    local: np.ndarray | None  # (n, A, 2) local AP shift; None: measured here (plan.matching)
    ap_rank: np.ndarray  # (n, A) rank of the frame for each AP, -1 = not ranked
    ap_weight: np.ndarray  # (n, A)
    bg_rank: np.ndarray  # (n,) global rank for the background, -1 = not used
    gain: np.ndarray  # (n,) factor of each frame's samples (brightness matching)


@dataclass
class ChunkSums:
    num: np.ndarray  # (A, B, p, p, C) Σ w·num; spectral: (A, B, p, p//2+1, C) complex Σ w(f)·F(f)
    den: np.ndarray  # (A, B, p, p, C) Σ w·den, or (A, B, 1, 1, 1) when every pixel has weight 1;
    #                  spectral: (A, B, h, m, 1) Σ w(f) on every second bin (spectral.coarse_shape)
    sq: np.ndarray | None = None  # (A, B, p, p, C) Σ w·num²/den (sigma clipping statistics)
    bg: dict[int, np.ndarray] = field(default_factory=dict)  # band → Σ aligned frames
    bg_count: np.ndarray | None = None  # (B,) frames per background band
    stacked: int = 0  # AP shifts needed: (frame, AP) pairs stacked where the work had no shifts
    measured: int = 0  # AP shifts measured (neighbours of the APs stacked included)
    replaced: int = 0  # AP shifts that lost track and were replaced from neighbours
    local: np.ndarray | None = None  # (n, A, 2) the local shifts measured here (NaN: not measured), by frame
    #                                  of the chunk; None when the work brought its shifts

    def promote(self) -> ChunkSums:
        """This chunk's sums as the running total across chunks: the background in float64, the AP sums
        in float32 as they are (the chain states keep them in float32 anyway, and a float64 total of a
        planet's APs held 13 MB more at the memory peak)."""
        self.bg = {b: img.astype(np.float64) for b, img in self.bg.items()}
        return self

    def add(self, other: ChunkSums) -> None:
        """Add another chunk's sums into this one (call in chunk order)."""
        self.num += other.num
        self.den += other.den
        if self.sq is not None:
            self.sq += other.sq
        for b, img in other.bg.items():
            if b in self.bg:
                self.bg[b] += img
            else:
                self.bg[b] = img.copy()
        self.bg_count += other.bg_count
        self.stacked += other.stacked
        self.measured += other.measured
        self.replaced += other.replaced


def sample_patch(plan: StackPlan, frame: np.ndarray, a: int, offset: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """``(num, den)`` of AP ``a``'s patch from one frame (den None = weight 1 everywhere)."""
    origin = (int(plan.origins[a, 0]), int(plan.origins[a, 1]))
    shape = (plan.patch, plan.patch)
    off = (float(offset[0]), float(offset[1]))
    if plan.method == "interpolate":
        return interpolate_patch(frame, origin, shape, off, plan.zoom, plan.interpolation), None
    if plan.method == "drizzle":
        return drizzle_patch(frame, origin, shape, off, plan.zoom, plan.pixfrac)
    return bayer_drizzle_patch(frame, plan.stream.layout, origin, shape, off, plan.zoom, plan.pixfrac)


def _accumulators(plan: StackPlan, n_ap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Zeroed float32 ``num``, ``den`` and ``sq`` of a chunk for ``n_ap`` APs (see :class:`ChunkSums`):
    float32 is plenty, within a chunk (≤ CHUNK terms) and across chunks, which are added in order."""
    shape = (n_ap, plan.bands, plan.patch, plan.patch, plan.channels)
    if plan.spectral:  # sums of weighted spectra (A, B, p, p//2+1, C) and coarse weights; with slots
        #                (several powers, halves) (A, B, S, p, p//2+1, C) and (A, B, S, h, m, 1)
        slot = (plan.slots,) if plan.slots else ()
        num = np.zeros((n_ap, plan.bands) + slot + (plan.patch, plan.patch // 2 + 1, plan.channels), np.complex64)
        den = np.zeros((n_ap, plan.bands) + slot + coarse_shape(plan.patch) + (1,), np.float32)
    else:
        num = np.zeros(shape, np.float32)
        scalar_den = plan.method == "interpolate" and plan.clip is None
        den = np.zeros((n_ap, plan.bands, 1, 1, 1) if scalar_den else shape, np.float32)
    sq = np.zeros(shape, np.float32) if plan.squares else None
    return num, den, sq


def accumulator_bytes_per_ap(plan: StackPlan) -> int:
    """Bytes of one AP's share of a chunk's sums (what a chunk returns grows with the APs it covers)."""
    num, den, sq = _accumulators(replace(plan, bands=1), 1)
    return plan.bands * (num.nbytes + den.nbytes + (sq.nbytes if sq is not None else 0))


def accumulate_chunk(work: ChunkWork) -> ChunkSums:
    """Sum one chunk of frames into band accumulators; a module-level function for ``ctx.map``."""
    plan = work.plan
    num, den, sq = _accumulators(plan, plan.origins.shape[0])
    spectral = plan.spectral
    bg: dict[int, np.ndarray] = {}
    bg_count = np.zeros(plan.bands, dtype=np.int64)
    crop = np.asarray(plan.crop_offset, dtype=np.float64)
    inside = in_bands(work.ap_rank, plan.band_lo, plan.band_hi)  # (n, A, B)
    bg_inside = in_bands(work.bg_rank, plan.bg_lo, plan.bg_hi) if plan.bg_lo is not None else None
    stacked = measured = replaced = 0
    found = None if work.local is not None else np.full((len(work.frames), plan.origins.shape[0], 2), np.nan)
    for j, i in enumerate(work.frames):
        aps = np.flatnonzero(inside[j].any(axis=1)).tolist()
        bg_bands = np.flatnonzero(bg_inside[j]).tolist() if bg_inside is not None else []
        if not aps and not bg_bands:
            continue
        whole = bool(bg_bands) or plan.method == "bayer" or not READ_BOXES
        region = None  # the frame region the local shifts are measured in
        if work.local is not None or not aps:
            offsets = crop + work.shift[j] + (work.local[j] if work.local is not None else 0.0)  # (A, 2)
            box = None if whole else patch_box(plan, aps, offsets)
        else:
            want, region = _matching_want(plan, aps, work.shift[j])
            offsets = np.broadcast_to(crop + work.shift[j], (plan.origins.shape[0], 2))
            box = None if whole else _union(region, patch_box(plan, aps, offsets, plan.matching.search))
        if box is None:
            full = plan.stream.read(int(i)) if (bg_bands or plan.method != "bayer") else None
            frame = plan.stream.read_cfa(int(i)) if plan.method == "bayer" else full
        else:  # only the patches' part of the frame, and the offsets relative to it
            frame = plan.stream.read(int(i), box)
        if region is not None:
            local, ok, count = _measure(plan, int(i), full if box is None else frame, box, region, want,
                                        work.shift[j])
            stacked, measured = stacked + len(aps), measured + count
            replaced += len(aps) - int(ok[aps].sum())
            found[j, aps] = local[aps]
            offsets = crop + work.shift[j] + local
        if box is not None:
            offsets = offsets - (box[0], box[2])
        gain = float(work.gain[j])
        members = _members(inside[j], aps)
        add = (_add_spectra_slots if plan.slots else _add_spectra) if spectral else _add_patches
        add(num, den, sq, plan, frame, aps, offsets, members, work.ap_rank[j], work.ap_weight[j], gain)
        if bg_bands:
            img = interpolate_patch(full, (0, 0), plan.out_shape, crop + work.shift[j], plan.zoom,
                                    "linear")
            for b in bg_bands:
                if b in bg:
                    _scale_add(bg[b], img, gain)  # one pass, no temporaries (a frame-sized array)
                else:
                    bg[b] = img * np.float32(gain) if gain != 1.0 else img.copy()
                bg_count[b] += 1
    return ChunkSums(num, den, sq, bg, bg_count, stacked, measured, replaced, found)


@dataclass
class ChunkShifts:
    """The local shifts one chunk's frames stack with, measured in a pass of their own (see
    :func:`measure_chunk`), and the counts :class:`ChunkSums` keeps."""

    local: np.ndarray  # (n, A, 2) by frame of the chunk; NaN where the frame stacks no patch of the AP
    stacked: int = 0
    measured: int = 0
    replaced: int = 0


def measure_chunk(work: ChunkWork) -> ChunkShifts:
    """The local shifts of every AP in every frame of the chunk that stacks it (in any of the plan's
    bands), measured with ``plan.matching`` on the frames' matching regions; a module-level function
    for ``ctx.map``. The values are those :func:`accumulate_chunk` measures for the same plan (an AP's
    shift depends on the frame and the AP alone), so a pass over AP groups given them stacks the same
    bits, and a point that several groups need is measured once per frame."""
    plan = work.plan
    n_ap = plan.origins.shape[0]
    inside = in_bands(work.ap_rank, plan.band_lo, plan.band_hi).any(axis=-1)  # (n, A)
    found = np.full((len(work.frames), n_ap, 2), np.nan)
    stacked = measured = replaced = 0
    for j, i in enumerate(work.frames):
        aps = np.flatnonzero(inside[j])
        if not aps.size:
            continue
        want, region = _matching_want(plan, aps, work.shift[j])
        frame = None if plan.method == "bayer" else plan.stream.read(int(i), region)
        local, ok, count = _measure(plan, int(i), frame, region, region, want, work.shift[j])
        stacked, measured = stacked + len(aps), measured + count
        replaced += len(aps) - int(ok[aps].sum())
        found[j, aps] = local[aps]
    return ChunkShifts(found, stacked, measured, replaced)


def _matching_want(plan: StackPlan, aps, shift: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The matching's mask (its count of APs) of the plan's APs ``aps``, and the region of a frame at
    global ``shift`` that measuring them reads."""
    want = np.zeros(plan.matching.count, bool)
    want[np.asarray(aps, np.int64) + plan.first_ap] = True
    return want, plan.matching.region(shift, (plan.stream.height, plan.stream.width), want)


def _members(inside: np.ndarray, aps: list[int]) -> list[list[int]]:
    """The bands (ascending) of each AP of ``aps`` given one frame's (A, B) ``inside``."""
    chosen = inside[aps]
    if (chosen.sum(axis=1) == 1).all():  # one band each: the usual case (the chain's bands are disjoint)
        return [[b] for b in chosen.argmax(axis=1).tolist()]
    return [np.flatnonzero(row).tolist() for row in chosen]


def _union(a: tuple[int, int, int, int], b: tuple[int, int, int, int] | None) -> tuple[int, int, int, int]:
    """The smallest (top, bottom, left, right) box holding boxes ``a`` and ``b`` (None: ``a``)."""
    if b is None:
        return a
    return min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])


def _measure(plan: StackPlan, i: int, frame: np.ndarray | None, box: tuple[int, int, int, int] | None,
             region: tuple[int, int, int, int], want: np.ndarray, shift: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, int]:
    """The local shifts (A, 2) of the plan's APs in frame ``i`` where ``want`` (the matching's APs;
    others 0), whether each was measured well, and the count of measurements: on the grey of
    ``region`` of the frame as read (``frame``, at ``box``; None = whole), or read apart where that is
    a raw CFA."""
    a, b, c, d = region
    if frame is None or plan.method == "bayer":
        mono = plan.stream.read_mono(i, region)
    else:
        top, left = (box[0], box[2]) if box is not None else (0, 0)
        mono = grey(frame[a - top:b - top, c - left:d - left])
    local, ok, measured = plan.matching.shifts(mono, (a, c), shift, want)
    first, count = plan.first_ap, plan.origins.shape[0]
    return local[first:first + count], ok[first:first + count], measured


def patch_box(plan: StackPlan, aps: list[int], offsets: np.ndarray, slack: float = 0.0
              ) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the frame region the patches of ``aps`` read at ``offsets`` (A, 2),
    kept inside the frame; None when they lie outside it. A patch's output pixel u sits at frame
    position (origin + u + 0.5) / zoom − 0.5 + offset; :data:`READ_MARGIN` px more cover the
    interpolation taps and drizzle drops, and a region edge inside the frame is never reached. ``slack``
    px more on every side hold the patches wherever offsets up to that far from ``offsets`` put them."""
    origin = plan.origins[aps].astype(np.float64)
    first = (origin + 0.5) / plan.zoom - 0.5 + offsets[aps]
    last = (origin + plan.patch - 0.5) / plan.zoom - 0.5 + offsets[aps]
    top, left = (int(v) - READ_MARGIN for v in np.floor(first.min(axis=0) - slack))
    bottom, right = (int(v) + READ_MARGIN + 1 for v in np.ceil(last.max(axis=0) + slack))
    top, left = max(0, top), max(0, left)
    bottom, right = min(plan.stream.height, bottom), min(plan.stream.width, right)
    return (top, bottom, left, right) if bottom > top and right > left else None


def _add_patches(num, den, sq, plan: StackPlan, frame: np.ndarray, aps: list[int], offsets,
                 members: list[list[int]], ranks, weights, gain: float) -> None:
    """Add one frame's patches for ``aps`` into their bands ``members`` (plain, or the sigma-clipping
    pass, which goes by ``ranks``)."""
    for a, bands in zip(aps, members):
        pnum, pden = sample_patch(plan, frame, a, offsets[a])
        w = float(weights[a])
        if plan.clip is None:
            for b in bands:
                _add(num, den, sq, (a, b), pnum, pden, w, gain)
        else:
            _add_clipped(num, den, plan.clip, a, int(ranks[a]), pnum * np.float32(gain), pden, w)


def _add_spectra(num, den, sq, plan: StackPlan, frame: np.ndarray, aps: list[int], offsets,
                 members: list[list[int]], ranks, weights, gain: float) -> None:
    """Add the weighted spectra of one frame's patches for ``aps`` into their bands ``members``
    (spectral stacking; no ``sq``), :func:`spectra_batch` patches at a time."""
    step = spectra_batch(plan.patch)
    for start in range(0, len(aps), step):
        batch = aps[start:start + step]
        positions = plan.origins[batch].astype(np.float64) + offsets[batch]  # zoom 1 (spectral stacks)
        spec = shifted_spectra(frame, positions, plan.patch, plan.interpolation, gain)
        coarse = spectral_weights(spec, plan.spectral_power)
        coarse *= np.asarray(weights, np.float32)[batch][:, None, None]
        spec *= upsampled(coarse, plan.patch)[..., None]  # in place, as one batch: the same products
        bands_of = members[start:start + step]
        if plan.patch <= SMALL_PATCH and all(len(bands) == 1 for bands in bands_of):
            at = (batch, [bands[0] for bands in bands_of])  # distinct (AP, band) pairs: one add each
            num[at] += spec
            den[at + (Ellipsis, 0)] += coarse
            continue
        for k, (a, bands) in enumerate(zip(batch, bands_of)):
            lo, hi = bands[0], bands[-1] + 1
            if hi - lo == len(bands):  # consecutive bands (one, mostly): one add each
                num[a, lo:hi] += spec[k]
                den[a, lo:hi, ..., 0] += coarse[k]
                continue
            for b in bands:
                num[a, b] += spec[k]
                den[a, b, ..., 0] += coarse[k]


def _add_spectra_slots(num, den, sq, plan: StackPlan, frame: np.ndarray, aps: list[int], offsets,
                       members: list[list[int]], ranks, weights, gain: float) -> None:
    """:func:`_add_spectra` at every power of ``plan.spectral_powers`` (into the slots, see
    :attr:`StackPlan.slots`): each patch is transformed, and its windowed power measured, once."""
    step = spectra_batch(plan.patch)
    halves = 2 if plan.halves else 1
    for start in range(0, len(aps), step):
        batch = aps[start:start + step]
        positions = plan.origins[batch].astype(np.float64) + offsets[batch]
        spec = shifted_spectra(frame, positions, plan.patch, plan.interpolation, gain)
        coarse_all = spectral_weights_powers(spec, plan.spectral_powers)  # (P, k, h, m)
        w = np.asarray(weights, np.float32)[batch]
        parity = (np.asarray(ranks)[batch] % 2).tolist() if plan.halves else [0] * len(batch)
        for q, power in enumerate(plan.spectral_powers):
            coarse = coarse_all[q]
            coarse *= w[:, None, None]
            weighted = spec * (w[:, None, None, None] if power == 0 else upsampled(coarse, plan.patch)[..., None])
            for k, (a, bands) in enumerate(zip(batch, members[start:start + step])):
                slot = q * halves + parity[k]
                for b in bands:
                    num[a, b, slot] += weighted[k]
                    den[a, b, slot, ..., 0] += coarse[k]


def spectra_batch(side: int) -> int:
    """Patches of ``side`` px transformed and weighted together: about :data:`SPECTRA_PIXELS` pixels, so
    a batch's arrays stay in the core's cache, and at most :data:`SPECTRA_BATCH_MAX`."""
    return max(1, min(SPECTRA_BATCH_MAX, SPECTRA_PIXELS // (side * side)))


def _scale_add(acc: np.ndarray, value: np.ndarray, scale: float) -> None:
    """``acc += scale · value`` in place, float32, in one pass (``acc`` contiguous, ≤ 4 channels)."""
    if acc.flags.c_contiguous and acc.shape == value.shape and acc.ndim == 3 and acc.shape[2] <= 4 \
            and value.dtype == np.float32:
        if acc.shape[2] == 1:  # 2-D views: OpenCV reads a row-strided patch without copying it
            acc, value = acc[..., 0], value[..., 0]
        cv2.scaleAdd(value, float(np.float32(scale)), acc, dst=acc)
    else:
        acc += np.float32(scale) * value


def _add(num, den, sq, idx, pnum, pden, w: float, gain: float) -> None:
    if pden is None:
        _scale_add(num[idx], pnum, w * gain)
    else:
        num[idx] += w * gain * pnum
    if pden is None:
        den[idx] += w
        if sq is not None:
            sq[idx] += np.float32(w * gain * gain) * np.square(pnum)
    else:
        den[idx] += w * pden
        if sq is not None:
            sq[idx] += w * gain * gain * np.divide(np.square(pnum), pden, out=np.zeros(pnum.shape),
                                                   where=pden > 0)


def _add_clipped(num, den, clip: ClipStats, a: int, rank: int, pnum, pden, w) -> None:
    """Add one sample into every size whose count exceeds ``rank``, where within kappa·sigma."""
    value = pnum if pden is None else np.divide(pnum, pden, out=np.zeros(pnum.shape), where=pden > 0)
    dw = np.ones(pnum.shape, np.float32) if pden is None else pden
    for k in range(clip.counts.shape[1]):
        if rank >= clip.counts[a, k]:
            continue
        keep = np.abs(value - clip.mean[a, k]) <= clip.kappa * clip.std[a, k] + 1e-7
        num[a, k] += np.where(keep, w * dw * value, 0.0)
        den[a, k] += np.where(keep, w * dw, 0.0)


def clip_stats(num: np.ndarray, den: np.ndarray, sq: np.ndarray, counts: np.ndarray,
               kappa: float) -> ClipStats:
    """Weighted per-pixel mean and standard deviation from first-pass cumulative sums."""
    mean = np.divide(num, den, out=np.zeros(num.shape), where=den > 0)
    var = np.divide(sq, den, out=np.zeros(num.shape), where=den > 0) - mean ** 2
    return ClipStats(mean, np.sqrt(np.clip(var, 0, None)), counts, kappa)
