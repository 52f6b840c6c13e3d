"""The ``stack`` node: per-AP stacks of the best frames at several stack sizes, plus the background.

Reads the needed frames in fixed chunks of :data:`CHUNK` frames (``ctx.map``), sums the chunks in order
(the background in float64) per band of ranks, and returns one set of arrays per stack size (see
``luckystack.nodes``).
The background is summed in a pass of its own, then the APs: all in one pass when a chunk's sums of them
fit in :data:`ONE_PASS_BYTES` (a planet's), else (a Moon or Sun surface) in groups whose chunk sums stay
within :data:`GROUP_BYTES`, one pass over the recording per group and each group through to its outputs,
so memory does not grow with the AP count; an AP's sums are the same in any group.

The sums are cumulative float32 "states" on a fixed chain whatever the sizes asked for (see
:mod:`luckystack.nodes.stack_sums`), so a state at a given frame count is the same in every run.
Incremental: the result stores chain states, the highest first while they take at most
:data:`SUMS_SHARE` of the recording's size (or :data:`SUMS_FLOOR`); a rerun stores those of them it
took or made, and never computes a state only to store it. When only the stack sizes change, the chain
states and size outputs that earlier results hold are taken from them, and only the bands from the
nearest state below up to each new state or size are read (at most 10 % of the frames per new size
when the states are there), with the very same arithmetic, so the bits do not depend on what the cache
held. What is taken is taken as it is (the cache then stores links to the earlier arrays, not copies).
The local shifts the passes measure are kept too (16 bytes a frame and AP), so a rerun whose bands
lie within ranks measured before measures none (an AP's shift in a frame depends on that frame and AP
alone: the same bits).
The maths lives in :mod:`luckystack.imaging.stacking` and :mod:`luckystack.imaging.drizzle`.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from luckystack.graph.node import Context, NodeError, Params, Port, Result, node_type
from luckystack.imaging.normalize import normalization
from luckystack.imaging.quality import crop_brightness
from luckystack.imaging.registration import aligned_box
from luckystack.imaging.spectral import from_spectrum
from luckystack.imaging.stacking import (
    PATCH_OVERLAP, ChunkSums, ChunkWork, StackPlan, accumulate_chunk, clip_stats, in_bands, measure_chunk,
    patch_geometry, accumulator_bytes_per_ap, quality_weights, rank_frames, stack_sizes,
)
from luckystack.nodes.bounds import FrameCount, Percent
from luckystack.nodes.align import matching_of
from luckystack.nodes.frames import chunked, open_frames
from luckystack.nodes.stack_sums import (
    Pool, State, Work, chain_counts, earlier_pool, in_memory, keep_shifts, keep_sums, kept_states, offered_shifts,
)

CHUNK = 256  # frames per work item at most; fixed by the frame count alone, so results never depend on the
#             number of workers. An item returns a whole group's partial sums whatever its length, which the
#             caller adds: longer items mean fewer sums to send and add (docs/performance.md)
MIN_ITEMS = 2  # … but a short recording (a Moon's 101 frames) is cut into this many items, at least
MIN_CHUNK = 8  #   this many frames each, so its pass runs on two processes too. Every item allocates and
#                returns a whole group's sums, so more items cost more CPU


PARALLEL_PATCHES = 1500  # a pass over fewer AP patches (~0.5 s in one process) runs in this process: a rerun's
#                          fresh worker would take longer to start than the pass takes
BACKGROUND_FRAME_PATCHES = 3  # a background frame costs about as much as this many patches
SHIFTS_GIVEN_SHARE = 2  # … and a patch whose local shift is given costs about 1 / this of one measured
DEFAULT_SPECTRAL_POWER = 2.0  # of 2, 4 and 6 the one that raised PSNR on every simulated scene
AUTO_SPECTRAL_POWERS = (0.0, 2.0, 4.0)  # the candidates of spectral_weight "auto" (docs/auto-settings.md)
ONE_PASS_BYTES = 16 << 20  # all APs go in one pass over the recording when a chunk's sums of them take at
#                            most this much (a planet's: 23 APs of 132 px at 7 bands, 12.8 MB); else …
GROUP_BYTES = 12 << 20  # … in groups whose chunk sums cover at most this much (a Moon or Sun surface), one
#                         pass over the recording each, so memory does not grow with the APs; smaller groups
#                         mean less memory and more passes (docs/performance.md)
SUMS_SHARE = 0.05  # the sums (and local shifts) kept for incremental reruns take at most this share of the recording's size,
SUMS_FLOOR = 16 << 20  # … or this many bytes, whichever is more (short recordings keep their fast reruns)
SHIFTS_MAX_BYTES = 32 << 20  # the measured local shifts are kept up to this size (N × APs × 16 bytes: a run
#                              holds them all in memory); beyond it, reruns measure their bands again


SpectralPower = Annotated[float, Field(ge=0, le=8)]


class StackParams(Params):
    percent: list[Percent] | None = Field(
        None, min_length=1, max_length=64, description="Stack sizes as percentages of the valid frames, "
        "e.g. [10, 25, 50] (a single number is accepted). Give this or `frames`; default [25].")
    frames: list[FrameCount] | None = Field(
        None, min_length=1, max_length=64,
        description="Stack sizes as frame counts, e.g. [200, 1000] (a single number is accepted).")
    selection: Literal["local", "global"] = Field(
        "local", description="Rank frames per AP by local quality, or by the global frame quality.")
    weight_power: float = Field(
        2.0, ge=0, le=8, description="Weight each frame by (quality / best quality)^power; 0 = plain mean.")
    interpolation: Literal["linear", "cubic", "lanczos"] = Field(
        "cubic", description="Sub-pixel resampling of the patches (without drizzle); cubic measured "
        "sharpest against the truth (PSNR +0.9 dB over lanczos, +2.5 dB over linear).")
    sigma_clip: float | None = Field(
        None, ge=1, le=10, description="Kappa of per-pixel sigma clipping (a second pass); None = off.")
    spectral_weight: SpectralPower | Annotated[list[SpectralPower], Field(min_length=1, max_length=6)] \
        | Literal["auto"] | None = Field(
        None, description="Fourier lucky stacking: weight every frame per spatial frequency by "
        "its (smoothed) spectral amplitude to this power, so each frequency comes mostly from the frames "
        "that kept it best (0 = one weight per frame; higher = sharper but noisier). Default: 2 for "
        "interpolated stacks without sigma clipping (measured on simulated 640×480 recordings: +0.3 to "
        "+0.7 dB PSNR at P10 and +0.6 to +1.1 dB at P25), off for drizzle and sigma clipping, which it "
        "cannot be combined with. A list of powers (0–8), or auto (0, 2 and 4), stacks every size at "
        "each of them in the same pass (each patch transformed once) as candidates labelled P10w2, "
        "P10w4, …, for the choose node.")
    halves: bool = Field(
        False, description="Also stack every candidate in two halves (the frames of even and of odd rank "
        "per AP) and put out half their difference, the candidate's own noise, labelled P10n / P10w4n and "
        "listed in meta halves ({candidate: its noise}); the choose node scores the candidates by it. "
        "Spectral stacks only.")
    drizzle: Literal[1, 1.5, 2, 3] = Field(1, description="Output magnification.")
    drizzle_method: Literal["drizzle", "resample"] = Field(
        "drizzle", description="Real drizzle (drop and overlap) or plain interpolated resampling.")
    pixfrac: float = Field(0.7, gt=0, le=1, description="Drizzle drop size as a fraction of a pixel.")
    bayer_drizzle: bool = Field(
        False, description="For Bayer recordings: drizzle the raw CFA samples into their colour planes "
        "(no demosaicing).")
    match_brightness: bool = Field(
        True, description="Scale every frame to the same brightness (analyse's mean over its region) "
        "before stacking, so transparency changes do not dim or blotch the stack; the common level is "
        "the 90th percentile of the valid frames' brightness (clouds only ever dim), the same whatever "
        "stack sizes are asked for.")
    normalize: float | None = Field(
        None, gt=0, le=1, description="Scale so the brightest part (99.9th percentile) sits at this level.")
    normalize_background: bool = Field(
        False, description="With normalize: also subtract the sky level (5th percentile), for "
        "twilight/daylight recordings.")

    @field_validator("percent", "frames", mode="before")
    @classmethod
    def _as_list(cls, v):
        return [v] if isinstance(v, (int, float, str)) and not isinstance(v, bool) else v

    @field_validator("spectral_weight")
    @classmethod
    def _powers(cls, v):
        if isinstance(v, list) and len(set(v)) != len(v):
            raise ValueError("the spectral weight powers repeat")
        return v[0] if isinstance(v, list) and len(v) == 1 else v

    @model_validator(mode="after")
    def _one_kind(self):
        if self.percent is not None and self.frames is not None:
            raise ValueError("give stack sizes as either percent or frames, not both (set the other to "
                             "null, e.g. --set stack.percent=null)")
        for p in self.percent or []:
            if not 0 < p <= 100:
                raise ValueError("percent values must be in (0, 100]")
        for f in self.frames or []:
            if f < 1:
                raise ValueError("frame counts must be at least 1")
        if self.spectral_weight and not self._spectral_possible():
            raise ValueError("spectral_weight works on interpolated stacks: set drizzle 1, bayer_drizzle "
                             "false and sigma_clip null, or spectral_weight 0")
        if self.halves and not (self.candidate_powers() and self._spectral_possible()):
            raise ValueError("halves needs a spectral stack: a spectral_weight above 0, a list of them or auto")
        if (self.percent is not None and not self.percent) or (self.frames is not None and not self.frames):
            raise ValueError("give at least one stack size")
        return self

    def _spectral_possible(self) -> bool:
        return self.drizzle == 1 and not self.bayer_drizzle and self.sigma_clip is None

    def candidate_powers(self) -> tuple[float, ...]:
        """The powers stacked as candidates in one pass (several powers, or one with halves); () for
        the one power of :meth:`spectral_power`."""
        if self.spectral_weight == "auto":
            return AUTO_SPECTRAL_POWERS
        if isinstance(self.spectral_weight, list):
            return tuple(float(q) for q in self.spectral_weight)
        if self.halves and self.spectral_power() > 0:
            return (self.spectral_power(),)
        return ()

    def spectral(self) -> bool:
        """Whether the patches are summed as spectra."""
        return self.spectral_power() > 0 or bool(self.candidate_powers())

    def spectral_power(self) -> float:
        """The spectral weighting power in effect (the default resolved; 0 with several powers)."""
        if isinstance(self.spectral_weight, (list, str)):
            return 0.0
        if self.spectral_weight is not None:
            return float(self.spectral_weight)
        return DEFAULT_SPECTRAL_POWER if self._spectral_possible() else 0.0


def _inputs(ctx: Context):
    shifts, aps = ctx.inputs["shifts"], ctx.inputs["aps"]
    shift = shifts.array("shift").astype(np.float64)
    valid = shifts.array("valid").astype(bool)
    # Shifts the aps input carries (measured elsewhere, or true ones in tests) are used as they are;
    # align leaves them to this node, which measures them in the frames it stacks.
    local = aps.array("shift").astype(np.float64) if "shift" in aps.arrays else None
    local_q = aps.array("quality").astype(np.float64)
    quality = ctx.inputs.get("quality")
    brightness = quality.array("brightness") if quality is not None and "brightness" in quality.arrays else None
    lengths = {shift.shape[0], valid.shape[0], local_q.shape[0]} | ({local.shape[0]} if local is not None else set())
    if quality is not None:
        lengths.add(quality.array("valid").shape[0])
    if len(lengths) != 1:
        raise NodeError(f"the shifts, aps and quality inputs disagree on the frame count ({sorted(lengths)})")
    if quality is not None:
        valid &= quality.array("valid").astype(bool)
        global_q = quality.array("score").astype(np.float64)
    else:
        with np.errstate(all="ignore"):
            global_q = np.nanmean(np.where(np.isfinite(local_q), local_q, np.nan), axis=1)
    return shifts, aps, shift, valid, local, local_q, global_q, brightness


@node_type("stack", params=StackParams, outputs={"stacks": "stacks"}, version="25", reads_input=True,
           incremental=("percent", "frames"),
           inputs={"frames": Port(kind="frames"), "shifts": Port(kind="shifts"), "aps": Port(kind="aps"),
                   "quality": Port(required=False, doc="global quality; needed for selection=global",
                                   kind="quality")})
def stack(ctx: Context) -> Result:
    """Stack the best frames per AP at every requested size, and a globally aligned background."""
    p: StackParams = ctx.params
    stream = open_frames(ctx.inputs["frames"], ctx.input_file)
    shifts, aps, shift, valid, local, local_q, global_q, brightness = _inputs(ctx)
    n = stream.count
    if shift.shape[0] != n or local_q.shape[0] != n:
        raise NodeError(f"shifts/aps cover {shift.shape[0]}/{local_q.shape[0]} frames but the recording has {n}")
    if p.selection == "global" and "quality" not in ctx.inputs:
        raise NodeError("selection 'global' needs the quality input connected")
    centers = aps.array("center")
    ap_sizes = aps.array("size")
    n_ap = centers.shape[0]
    if n_ap == 0:
        raise NodeError("there are no alignment points to stack")
    bayer = p.bayer_drizzle and stream.layout in ("RGGB", "GRBG", "GBRG", "BGGR")
    if p.bayer_drizzle and not bayer:
        ctx.log(f"bayer_drizzle ignored: the recording layout is {stream.layout}")
    zoom = float(p.drizzle)
    method = "bayer" if bayer else ("drizzle" if zoom != 1 and p.drizzle_method == "drizzle" else "interpolate")
    channels = 3 if bayer else stream.channels

    score = global_q if p.selection == "global" else local_q
    score2 = np.repeat(score[:, None], n_ap, axis=1) if score.ndim == 1 else score
    ap_valid = valid[:, None] & np.isfinite(score2)
    rank = rank_frames(score2, ap_valid)
    n_valid = int(valid.sum())
    try:
        if p.frames is not None:
            sizes = stack_sizes(n_valid, frames=p.frames)
        else:
            sizes = stack_sizes(n_valid, percent=p.percent or [25.0])
    except ValueError as exc:
        raise NodeError(f"cannot stack: {exc}") from exc
    for (label, count), want in zip(sizes, p.frames or []):
        if count < want:
            ctx.log(f"{label}: only {count} valid frames available")
    order = sorted(range(len(sizes)), key=lambda k: sizes[k][1])  # ascending counts
    asc = np.array([sizes[k][1] for k in order])
    incremental = p.sigma_clip is None
    chain = chain_counts(asc, n_valid, incremental)  # (K,) frame counts, ascending, distinct
    ap_frames = ap_valid.sum(0)  # (A,) valid frames per AP
    ap_counts = np.minimum(asc[None, :], ap_frames[:, None])  # (A, S)
    weight = quality_weights(score2, rank, p.weight_power)
    global_rank = rank_frames(global_q, valid)
    del local_q, score, score2, ap_valid  # (N, A) arrays no pass needs: 4 MB at 20,000 frames of 23 APs

    crop = shifts.meta.get("crop") or [0, 0, stream.height, stream.width]
    out_shape = (int(round(crop[2] * zoom)), int(round(crop[3] * zoom)))
    bg_shape = out_shape + (channels if not bayer else 3,)
    origins, side = patch_geometry(centers, ap_sizes, zoom, fft=p.spectral())
    pool = earlier_pool(ctx, chain) if incremental else Pool({}, {})
    linked = {k: pool.outputs[int(sizes[k][1])] for k in order if int(sizes[k][1]) in pool.outputs}
    gain, level = np.ones(n), None  # level: the common brightness, the same for every stack size
    if p.match_brightness:
        gain, level = _frame_gains(ctx, stream, shift, valid, crop, brightness)
    matching = matching_of(aps, crop) if local is None else None
    plan = StackPlan(stream, origins, side, zoom, method, p.pixfrac, p.interpolation, 1,
                     (int(crop[0]), int(crop[1])), out_shape, channels, squares=p.sigma_clip is not None,
                     spectral_power=p.spectral_power(), matching=matching,
                     spectral_powers=p.candidate_powers(), halves=p.halves)
    own_background = {int(sizes[k][1]): f"background_{candidate_labels(sizes[k][0], p)[0][0]}" for k in order} \
        if p.normalize is None else {}
    work = Work(chain, set(pool.states), sorted({int(sizes[k][1]) for k in order if k not in linked}))
    keep, keep_local = [], False
    if incremental:
        state_bytes = n_ap * accumulator_bytes_per_ap(replace(plan, squares=False))
        budget = max(SUMS_SHARE * _recording_bytes(stream), SUMS_FLOOR)
        shift_bytes = n * n_ap * 2 * 8
        keep_local = local is None and shift_bytes <= min(budget, SHIFTS_MAX_BYTES)  # first: they are small
        budget -= shift_bytes if keep_local else 0
        keep = [k for k in kept_states(chain, own_background, state_bytes, int(np.prod(bg_shape)) * 4, budget)
                if k in pool.states or k in work.new]  # never computed only to be kept
    if work.bands:
        lo, hi = (np.array(v, np.int64) for v in zip(*work.bands))
        plan = replace(plan, bands=len(work.bands), band_lo=np.minimum(lo[None, :], ap_frames[:, None]),
                       band_hi=np.minimum(hi[None, :], ap_frames[:, None]), bg_lo=lo, bg_hi=hi)
        if local is None and incremental:  # the shifts earlier runs measured in these bands, if they all are
            local = offered_shifts(pool, in_bands(rank, plan.band_lo, plan.band_hi).any(axis=-1))
            matching = plan.matching if local is None else None
            plan = replace(plan, matching=matching)
    measured_local = np.full((n, n_ap, 2), np.nan) if keep_local and matching is not None and work.bands else None
    held: dict[int, State] = {}  # the new chain states whose sums are kept, for all APs
    groups = _ap_groups(plan, n_ap) if work.bands else [slice(0, n_ap)]
    per_chunk = groups[0].stop - groups[0].start  # a group's patches are one chunk of the stored array
    outputs = _Filled(n_ap, lambda name, shape, dtype: ctx.create_array("stacks", name, shape, dtype,
                                                                        (per_chunk,) + tuple(shape[1:])))
    means: dict[int, np.ndarray] = {}  # background means by frame count: the first group's, for all
    stacked = measured = replaced = 0  # local shifts needed, measured and replaced (this run's passes)
    above = min(lo for lo, _ in work.bands) if work.bands else 0
    if work.bands:  # the background first, in a pass of its own: the AP passes' items then carry no
        #              frame-sized sums (the planet run's stack: 8.6 MB less per item)
        none = slice(0, 0)
        background = _pass(ctx, _for_group(plan, none), none, shift, gain, local, weight, rank, global_rank,
                           f"background above {above} frames" if above else "background")
        for _ in work.walk(pool.states, background, none, means, bg_shape):
            pass  # fills ``means``, the background of every state
        background = None
    if len(groups) > 1 and work.bands and plan.matching is not None:
        # Several AP groups: every frame's shifts are measured once, for all APs, in a pass of their own
        # (a point or neighbour two groups need is measured once, each frame's region read and smoothed
        # once); the group passes are given them and read only their patches. This process's AP templates
        # (a burst of temporaries) are built first, not in that pass while the worker builds its own: the
        # pass's map hands the burst back as it starts.
        plan.matching.needed(np.zeros(plan.matching.count, bool))
        found, stacked, measured, replaced = _shift_pass(ctx, plan, shift, rank, above)
        if measured_local is not None:
            measured_local[:] = found
        local = np.nan_to_num(found, nan=0.0)
        found = None
        plan = replace(plan, matching=None)
    for g in groups:
        sums = clipped = None
        if work.bands:
            what = f"stack above {above} frames" if above else "stack"
            sums = _pass(ctx, _for_group(plan, g), g, shift, gain, local, weight, rank, None, what)
            stacked, measured, replaced = (stacked + sums.stacked, measured + sums.measured,
                                           replaced + sums.replaced)
            if measured_local is not None and sums.local is not None:
                measured_local[:, g] = sums.local
        made = set()  # sizes (by index) put out from this group's states
        fresh: dict[int, State] = {}  # all new chain states, for sigma clipping's second pass
        group_held: dict[int, State] = {}
        for count, k_chain, state in work.walk(pool.states, sums, g, means, bg_shape):
            if k_chain in keep:
                group_held[k_chain] = state
            if p.sigma_clip is not None:  # never incremental: every chain state is new, one per size
                fresh[k_chain] = state
                continue
            for k_sorted, k in enumerate(order):
                if k not in linked and k not in made and int(sizes[k][1]) == count:
                    outputs.put(g, _size_outputs(sizes[k][0], state, None, k_sorted, side, p))
                    made.add(k)
        held = _into(held, group_held, g, n_ap)
        if p.sigma_clip is not None:
            at = np.searchsorted(chain, asc)
            clip_plan = _clip_plan(_for_group(plan, g), [fresh[k] for k in range(len(chain))], sums.sq, at,
                                   ap_counts[g], p.sigma_clip)
            clipped = _pass(ctx, clip_plan, g, shift, gain, local, weight, rank, None, "sigma clip")
        sums = None
        for k_sorted, k in enumerate(order):
            if k not in linked and k not in made:  # on a chain state taken from an earlier result, or clipped
                state = fresh[work.index[int(sizes[k][1])]] if p.sigma_clip is not None else \
                    work.chain_state(work.index[int(sizes[k][1])], pool.states, g)
                outputs.put(g, _size_outputs(sizes[k][0], state, clipped, k_sorted, side, p))
        fresh = group_held = None

    if replaced:
        ctx.log(f"{replaced} of the AP shifts stacked lost track and were replaced from neighbours")
    arrays: dict[str, np.ndarray] = dict(outputs.arrays)
    meta_sizes, halves = [], {}
    for k_sorted, k in enumerate(order):
        label, count = sizes[k]
        for cand, half, power in candidate_labels(label, p):
            meta_sizes.append({"label": cand, "frames": int(count)}
                              | ({} if power is None else {"power": power, "size": label}))
            if half:
                halves[cand] = half
        arrays[f"count_{label}"] = ap_counts[:, k_sorted].astype(np.int32)
        if k in linked:  # an earlier result made this size from the same sums: link its outputs
            theirs, their_label = linked[k]
            their_label = next((s.get("size", s["label"]) for s in theirs.meta["sizes"] if s["label"] == their_label),
                               their_label)  # the size, where the earlier result held candidates of it
            for (out, out_half, _), (their, their_half, _) in zip(candidate_labels(label, p),
                                                                   candidate_labels(their_label, p)):
                for kind in ("patch", "coverage", "background"):
                    arrays[f"{kind}_{out}"] = theirs.arrays[f"{kind}_{their}"]
                    if out_half:
                        arrays[f"{kind}_{out_half}"] = theirs.arrays[f"{kind}_{their_half}"]
    per_size = len(meta_sizes) // len(sizes)
    meta_sizes = [m for k in range(len(sizes))  # back to request order
                  for m in meta_sizes[order.index(k) * per_size:(order.index(k) + 1) * per_size]]
    meta_sums = keep_sums(arrays, chain, {k: held[k] if k in held else pool.states[k] for k in keep},
                          own_background)
    meta_local: dict = {}
    if keep_local:
        keep_shifts(arrays, meta_local, pool, measured_local)
    arrays["origin"] = origins
    arrays["extent"] = np.round(ap_sizes * PATCH_OVERLAP * zoom).astype(np.int32)
    values, freq = np.unique(ap_sizes, return_counts=True)
    meta = {"sizes": meta_sizes, "labels": [s["label"] for s in meta_sizes], "drizzle": zoom,
            "patch_size": side, "ap_size": int(values[np.argmax(freq)]), "method": method,
            "channels": channels, "crop": [int(c) for c in crop], "bit_depth": int(stream.bit_depth),
            "layout": "RGB" if channels == 3 else "mono", "sums": meta_sums, "level": level,
            **({"halves": halves} if halves else {}),
            "shifts": {"stacked": stacked, "measured": measured, "replaced": replaced}, **meta_local}
    return Result(arrays=arrays, meta=meta)


def _mean_patches(num: np.ndarray, den: np.ndarray, side: int, spectral: bool
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per-AP mean patches and their coverage (relative weight per pixel) from the sums (float64, or
    spectral sums in any precision)."""
    if spectral:
        patch = from_spectrum(num, den, side)
        return patch, np.broadcast_to((den[:, :1, :1] > 0).astype(np.float32), patch.shape)
    patch = np.divide(num, den, out=np.zeros(num.shape), where=den > 0)
    peak = den.reshape(den.shape[0], -1).max(1)
    return patch, den / np.where(peak > 0, peak, 1)[:, None, None, None]


def candidate_labels(label: str, p: StackParams) -> list[tuple[str, str | None, float | None]]:
    """(label, its half's label or None, its power or None) of every candidate of stack size ``label``:
    the size itself, or one per power (``P10w2``) when several are stacked."""
    powers = p.candidate_powers()
    if not powers:
        return [(label, None, None)]
    out = []
    for power in powers:
        cand = label if len(powers) == 1 else f"{label}w{power:g}".replace(".", "p")
        out.append((cand, f"{cand}n" if p.halves else None, power))
    return out


def _slot_outputs(label: str, state: State, side: int, p: StackParams) -> dict[str, np.ndarray]:
    """The outputs of every candidate (and half) of one stack size from a state with slots
    (``StackPlan.slots``: per power, or per power and half)."""
    out: dict[str, np.ndarray] = {}
    halves = 2 if p.halves else 1
    for q, (cand, half, _) in enumerate(candidate_labels(label, p)):
        nums = [in_memory(state.num[:, q * halves + h]) for h in range(halves)]
        dens = [in_memory(state.den[:, q * halves + h]) for h in range(halves)]
        out.update(_size_outputs(cand, State(sum(nums[1:], nums[0]), sum(dens[1:], dens[0]), state.bg), None, 0,
                                 side, p, spectral=True))
        if half:  # half the difference of the halves: the candidate's own noise (and frame-to-frame scatter)
            a, b = (_size_outputs(half, State(nums[h], dens[h], state.bg), None, 0, side, p, spectral=True)
                    for h in (0, 1))
            diff = np.subtract(a[f"patch_{half}"], b[f"patch_{half}"]) * np.float32(0.5)
            out.update({f"patch_{half}": diff, f"coverage_{half}": out[f"coverage_{cand}"],
                        f"background_{half}": np.zeros(np.shape(state.bg), np.float32)})
    return out


def _size_outputs(label: str, state: State, clipped: ChunkSums | None, k_sorted: int, side: int,
                  p: StackParams, spectral: bool | None = None) -> dict[str, np.ndarray]:
    """``patch_``, ``coverage_`` and ``background_{label}`` of one stack size: from its state, or from the
    sigma-clipped sums (``clipped``, size ``k_sorted`` in ascending order) with the state's background;
    with candidate powers, every candidate's (:func:`_slot_outputs`)."""
    if spectral is None and p.candidate_powers():
        return _slot_outputs(label, state, side, p)
    spectral = p.spectral_power() > 0 if spectral is None else spectral
    if clipped is not None:
        knum = clipped.num[:, k_sorted]
        kden = np.broadcast_to(clipped.den, clipped.num.shape)[:, k_sorted]
    elif spectral:
        knum, kden = state.num, state.den  # from_spectrum works in double precision, a few APs at a time
    else:
        knum = in_memory(state.num).astype(np.float64)
        kden = np.broadcast_to(in_memory(state.den).astype(np.float64), knum.shape)
    patch, coverage = _mean_patches(knum, kden, side, spectral=spectral)
    background = state.bg  # float32; an earlier result's array stays a link to it
    if p.normalize is not None:
        background = in_memory(background)
        scale, offset = normalization(background, p.normalize,
                                      background_percentile=5.0 if p.normalize_background else None)
        patch, background = patch * scale + offset, (background * scale + offset).astype(np.float32)
    # Spectral coverage is a read-only broadcast of one value per AP: written as such, never expanded here.
    return {f"patch_{label}": patch.astype(np.float32, copy=False),
            f"coverage_{label}": coverage if coverage.dtype == np.float32 else coverage.astype(np.float32),
            f"background_{label}": background}


def _ap_groups(plan: StackPlan, n_ap: int) -> list[slice]:
    """All APs, when their chunk sums stay within :data:`ONE_PASS_BYTES`, else consecutive AP groups, as
    even as possible, whose chunk sums stay within :data:`GROUP_BYTES`."""
    per_ap = max(1, accumulator_bytes_per_ap(plan))
    if n_ap * per_ap <= ONE_PASS_BYTES:
        return [slice(0, n_ap)]
    per_group = max(1, GROUP_BYTES // per_ap)
    count = -(-n_ap // per_group)
    step = -(-n_ap // count)
    return [slice(s, min(n_ap, s + step)) for s in range(0, n_ap, step)]


def _pass(ctx: Context, plan: StackPlan, aps: slice, shift: np.ndarray, gain: np.ndarray, local: np.ndarray | None,
          weight: np.ndarray, rank: np.ndarray, global_rank: np.ndarray | None, label: str) -> ChunkSums:
    """One pass over the recording for the APs ``aps`` (``plan`` holds theirs alone, see
    :func:`_for_group`; none: the background alone), with the background if ``global_rank`` is given;
    the sums (see :meth:`ChunkSums.promote`). An AP's sums do not depend on its group."""
    n = shift.shape[0]
    n_ap = rank.shape[1]
    if global_rank is None:
        global_rank = np.full(n, -1, dtype=np.int32)
        plan = replace(plan, bg_lo=None, bg_hi=None)
    what = label if aps.stop - aps.start in (0, n_ap) else f"{label}, APs {aps.start + 1}–{aps.stop} of {n_ap}"
    patches = int(in_bands(rank[:, aps], plan.band_lo, plan.band_hi).any(axis=-1).sum())
    if local is not None:
        patches //= SHIFTS_GIVEN_SHARE  # no shift to measure (a rerun given the earlier runs' shifts)
    if plan.bg_lo is not None:
        patches += BACKGROUND_FRAME_PATCHES * int(in_bands(global_rank, plan.bg_lo, plan.bg_hi).any(axis=-1).sum())
    work = _chunk_work(plan, shift, gain, None if local is None else local[:, aps], weight[:, aps], rank[:, aps],
                       global_rank)
    step = _chunk_length(n)
    return _reduce(ctx.map(accumulate_chunk, work, total=_chunk_count(n), label=what,
                           parallel=patches >= PARALLEL_PATCHES,
                           sizes=[min(step, n - s) for s in range(0, n, step)]))  # the bar counts frames


def _shift_pass(ctx: Context, plan: StackPlan, shift: np.ndarray, rank: np.ndarray, above: int
                ) -> tuple[np.ndarray, int, int, int]:
    """One pass over the recording measuring the local shifts of every AP in every frame that stacks
    it (in the plan's bands): (N, A, 2) float64, NaN where not stacked; and the shifts stacked,
    measured and replaced (see :class:`ChunkSums`)."""
    n = shift.shape[0]
    step = _chunk_length(n)
    none = np.full(n, -1, dtype=np.int32)
    work = (ChunkWork(replace(plan, bg_lo=None, bg_hi=None), np.arange(s, min(n, s + step)), shift[s:s + step],
                      None, rank[s:s + step], rank[s:s + step], none[s:s + step], np.ones(min(n, s + step) - s))
            for s in range(0, n, step))
    wanted = int(in_bands(rank, plan.band_lo, plan.band_hi).any(axis=-1).sum())
    parts = list(ctx.map(measure_chunk, work, total=_chunk_count(n),
                         label=f"local shifts above {above} frames" if above else "local shifts",
                         parallel=wanted >= PARALLEL_PATCHES // SHIFTS_GIVEN_SHARE,
                         sizes=[min(step, n - s) for s in range(0, n, step)]))
    return (np.concatenate([p.local for p in parts]), sum(p.stacked for p in parts),
            sum(p.measured for p in parts), sum(p.replaced for p in parts))


def _for_group(plan: StackPlan, aps: slice) -> StackPlan:
    """The plan of the APs ``aps`` alone."""
    return replace(plan, origins=plan.origins[aps], band_lo=plan.band_lo[aps], band_hi=plan.band_hi[aps],
                   first_ap=aps.start)


class _Filled:
    """Per-size outputs (``patch_``, ``coverage_``, ``background_``) put together from AP groups (the
    patches written into arrays from ``create``, the context's, when there are several groups); the
    background, the same in every group, is taken from the first. An output that is one value per AP
    broadcast over its patch (spectral coverage) stays that way."""

    def __init__(self, n_ap: int, create=None) -> None:
        self.n_ap = n_ap
        self._create = create  # (name, shape, dtype) → an array the result is written into as it fills
        self._arrays: dict[str, np.ndarray] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}  # broadcast outputs: their full shape

    def put(self, aps: slice, part: dict[str, np.ndarray]) -> None:
        for name, value in part.items():
            if name.startswith("background_") or (aps.start == 0 and aps.stop == self.n_ap):
                self._arrays.setdefault(name, value)
                continue
            if value.ndim == 4 and value.strides[1] == value.strides[2] == 0:
                self._shapes[name] = (self.n_ap,) + value.shape[1:]
                value = value[:, :1, :1]
            whole = self._arrays.get(name)
            if whole is None:
                shape = (self.n_ap,) + value.shape[1:]
                # Patches of many groups (a Moon's 192 APs × 192² px: 28 MB a size) go straight into
                # the result's store rather than being held until the end.
                whole = self._arrays[name] = self._create(name, shape, value.dtype) \
                    if self._create is not None and name.startswith("patch_") else np.empty(shape, value.dtype)
            whole[aps] = value

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.broadcast_to(a, self._shapes[name]) if name in self._shapes else a
                for name, a in self._arrays.items()}


def _into(states: dict[int, State], group: dict[int, State], aps: slice, n_ap: int) -> dict[int, State]:
    """Put one AP group's states into those of all APs (allocated with the first group, whose
    background they keep); the group's own when it is every AP."""
    if aps.start == 0 and aps.stop == n_ap:
        return group
    if not states:
        states = {k: State(np.empty((n_ap,) + s.num.shape[1:], s.num.dtype),
                            np.empty((n_ap,) + s.den.shape[1:], s.den.dtype), s.bg) for k, s in group.items()}
    for k, part in group.items():
        states[k].num[aps], states[k].den[aps] = part.num, part.den
    return states


def _chunk_work(plan: StackPlan, shift: np.ndarray, gain: np.ndarray, local: np.ndarray | None, weight: np.ndarray,
                rank: np.ndarray, global_rank: np.ndarray):
    """The work items of one pass over the recording: :func:`_chunk_length` frames each."""
    n = shift.shape[0]
    step = _chunk_length(n)
    for s in range(0, n, step):
        e = min(n, s + step)
        yield ChunkWork(plan, np.arange(s, e), shift[s:e], None if local is None else local[s:e], rank[s:e],
                        weight[s:e], global_rank[s:e], gain[s:e])


def _chunk_length(n: int) -> int:
    """Frames per work item of a recording of ``n`` frames (see :data:`CHUNK`, :data:`MIN_ITEMS`)."""
    return min(CHUNK, max(MIN_CHUNK, -(-n // MIN_ITEMS)))


def _chunk_count(n: int) -> int:
    return -(-n // _chunk_length(n))


def _clip_plan(plan: StackPlan, states: list[State], sq: np.ndarray, at: np.ndarray, ap_counts: np.ndarray,
               kappa: float) -> StackPlan:
    """The plan of the sigma-clipping pass for the APs of ``plan`` (and of ``states``, ``sq``,
    ``ap_counts``): the first pass's per-size mean and spread per pixel."""
    num = np.stack([states[i].num for i in at], axis=1).astype(np.float64)
    den = np.broadcast_to(np.stack([states[i].den for i in at], axis=1).astype(np.float64), num.shape)
    stats = clip_stats(num, den, np.cumsum(sq, axis=1)[:, at], ap_counts, kappa)
    selected = ap_counts.max(axis=1)[:, None]  # the largest size's frames; _add_clipped puts each into
    #                                             the sizes its rank is within
    return replace(plan, bands=len(at), squares=False, clip=stats, spectral_power=0.0, spectral_powers=(),
                   band_lo=np.zeros_like(selected), band_hi=selected, bg_lo=None, bg_hi=None)


def _recording_bytes(stream) -> int:
    return stream.count * stream.height * stream.width * stream.channels * (1 if stream.bit_depth <= 8 else 2)


def _frame_gains(ctx: Context, stream, shift: np.ndarray, valid: np.ndarray, crop,
                 brightness: np.ndarray | None) -> tuple[np.ndarray, float]:
    """Each frame's factor to the common brightness level, and that level: the 90th percentile of the
    valid frames' brightness (clouds only ever dim). The brightness is analyse's, or measured here when
    the quality input is not connected."""
    if brightness is None:
        chunks = chunked(range(len(valid)), CHUNK)
        fn = partial(brightness_chunk, stream, shift=shift, valid=valid, crop=[int(c) for c in crop])
        brightness = np.concatenate(list(ctx.map(fn, chunks, total=len(chunks), label="brightness")))
    ok = valid & np.isfinite(brightness) & (brightness > 0)
    if not ok.any():
        return np.ones(len(valid)), 1.0
    level = float(np.percentile(brightness[ok], 90))
    return np.where(ok, level / np.where(ok, brightness, 1.0), 1.0), level


def brightness_chunk(stream, chunk: range, shift: np.ndarray, valid: np.ndarray, crop: list[int]) -> np.ndarray:
    """The mean of the crop (at the whole-pixel global shift) of the valid frames ``chunk``, NaN for others."""
    out = np.full(len(chunk), np.nan)
    for k, i in enumerate(chunk):
        if valid[i]:
            out[k] = crop_brightness(stream.read_mono(i, aligned_box((stream.height, stream.width), crop, *shift[i])), 0)
    return out


def _reduce(parts) -> ChunkSums:
    total, local = None, []
    for part in parts:  # ctx.map yields in chunk order, so the sums are reproducible
        local.append(part.local)
        if total is None:
            total = part.promote()
        else:
            total.add(part)
    total.local = None if any(v is None for v in local) else np.concatenate(local)  # by frame, as the chunks
    return total
