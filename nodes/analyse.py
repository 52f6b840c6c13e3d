"""analyse: one sharpness score per frame, measured on the aligned crop (or the object's box in it), with
artifact checks and ranking, and each frame's brightness (its transparency, which the stack node evens out)."""

from __future__ import annotations

import math
from functools import partial
from typing import Literal

import numpy as np
from pydantic import Field

from luckystack.graph.node import Context, NodeError, Params, Port, Result, node_type
from luckystack.imaging.quality import (
    ARTIFACT_REASONS, BINNED_SCALE, bin2, binned_brightness, binned_smooth, cell_sums, crop_brightness,
    detail_energy, detect_artifacts, frame_score, inner_gradient_rms,
)
from luckystack.imaging.registration import aligned_box
from luckystack.nodes.frames import chunked, open_frames

CHUNK = 32
CELL = 4  # binned px (8 full-resolution px): the smallest side of the cells of the detail maps
MAX_CELLS = 2048  # about, per frame and map: larger regions get larger cells (~8 kB per frame and map)
MAP_CHUNK = 8  # work items per stored chunk of the detail maps
STABILIZE_OFFSET = 10  # reason code 10 + k: disabled by stabilize with its reason k
OBJECT_MARGIN = 16  # px around the object's box (the limb blurred by seeing, moved by local distortion)


class AnalyseParams(Params):
    method: Literal["gradient", "laplacian", "edge"] = Field(
        "gradient", description="gradient: RMS gradient (default); laplacian: RMS Laplacian; "
                                "edge: steepest edges (small bright planets)")
    scale: float = Field(4.0, ge=2.0, le=8.0, description="noise-robust scale: larger for noisy data, "
                                                          "2 only for high-SNR undersampled data; from 4 "
                                                          "on, gradient scores are measured on 2×2-binned "
                                                          "frames (a quarter of the work, the same ranking)")
    normalize: bool = Field(True, description="divide by the frame's brightness, so transparency changes "
                            "(haze, thin cloud, flicker) are not read as sharpness (on simulated Jupiter the "
                            "ranking then agrees with the true seeing at Spearman 0.99, without at 0.95)")
    artifacts: bool = Field(True, description="disable frames with dropped/torn lines or missing data")
    margin: int | None = Field(None, ge=0, le=256, description="crop-edge margin ignored when scoring "
                                                                "(default 2 × scale)")
    region: Literal["object", "crop"] = Field(
        "object", description="object: score and check only the object's box where stabilize found one "
                              f"(a planet's disc and moons, plus {OBJECT_MARGIN} px and the edge margin), "
                              "where the detail is: on simulated Jupiter 38 % of the crop, the same "
                              "ranking; crop: the whole crop (always so without an object box, e.g. Moon "
                              "and Sun)")
    detail_maps: bool = Field(
        False, description="also keep every frame's detail and brightness summed over small cells of its "
        "2×2-binned scored region (gradient scores, scale 4 or more), so align takes each AP's local "
        "quality from them and reads no frame again: faster (2000 frames of 640×480: align 0.1 s instead "
        "of 1.3 s of CPU; the cache grows by ~12 kB a frame) but coarser (measured on simulated Jupiter: "
        "merged P10/P25 PSNR 0.02–0.07 dB lower; Moon and Sun within ±0.02 dB)")


@node_type("analyse", params=AnalyseParams,
           inputs={"frames": Port(kind="frames"), "shifts": Port(doc="stabilize result", kind="shifts")},
           outputs={"quality": "quality"}, version="10", reads_input=True)
def analyse(ctx: Context) -> Result:
    """Score, rank and validity of every frame, measured on the scored region (the object's box or the
    crop)."""
    p: AnalyseParams = ctx.params
    stream = open_frames(ctx.inputs["frames"], ctx.input_file)
    shifts = ctx.inputs["shifts"]
    shift, valid_in = shifts.array("shift"), shifts.array("valid")
    n = stream.count
    if len(shift) != n:
        raise NodeError(f"analyse: stabilize has {len(shift)} frames but the recording has {n}")
    crop = [int(v) for v in shifts.meta["crop"]]
    margin = int(round(2 * p.scale)) if p.margin is None else p.margin
    if min(crop[2], crop[3]) <= 2 * margin + 4:
        raise NodeError(f"analyse: the crop {crop[3]}×{crop[2]} is too small for an edge margin of {margin} px")
    obj = shifts.meta.get("object") if p.region == "object" else None
    region = crop if obj is None else object_region(crop, obj, OBJECT_MARGIN + margin, 2 * margin + 4)
    chunks = chunked(range(n), CHUNK)
    cell = cell_side(region) if p.detail_maps and p.method == "gradient" and p.scale >= BINNED_SCALE else 0
    fn = partial(score_chunk, stream, shift=shift, valid=valid_in, region=region, method=p.method,
                 scale=p.scale, margin=margin, normalize=p.normalize, artifacts=p.artifacts, cell=cell)
    maps: dict[str, np.ndarray] = {}
    held: dict[str, list[np.ndarray]] = {name: [] for name in CELL_MAPS}  # parts of the stored chunk filling
    score, reason, brightness = [], [], []
    for k, part in enumerate(ctx.map(fn, chunks, total=len(chunks), label="analyse")):
        score.append(part[0])
        reason.append(part[1])
        brightness.append(part[2])
        for name, cells in zip(CELL_MAPS, part[3:]):
            if name not in maps:
                maps[name] = ctx.create_array("quality", name, (n,) + cells.shape[1:], np.float32,
                                              (MAP_CHUNK * CHUNK,) + cells.shape[1:])
            held[name].append(cells)
            if len(held[name]) == MAP_CHUNK or k == len(chunks) - 1:  # whole stored chunks: one write each
                start = chunks[k + 1 - len(held[name])].start
                maps[name][start:chunks[k].stop] = np.concatenate(held[name])
                held[name] = []
    score = np.concatenate(score)
    reason = np.concatenate(reason).astype(np.int8)
    brightness = np.concatenate(brightness)
    stab_reason = shifts.array("reason").astype(np.int8)
    reason = np.where(valid_in, reason, STABILIZE_OFFSET + stab_reason).astype(np.int8)
    valid = reason == 0
    score[~valid] = np.nan
    if not valid.any():
        raise NodeError("analyse: every frame is disabled")
    order = np.lexsort((np.arange(n), np.where(valid, -score, np.inf)))
    rank = np.empty(n, np.int32)
    rank[order] = np.arange(n, dtype=np.int32)
    reasons = {str(k): v for k, v in ARTIFACT_REASONS.items()}
    for k, v in (shifts.meta.get("reasons") or {}).items():
        reasons[str(STABILIZE_OFFSET + int(k))] = f"stabilize: {v}"
    bad = int((~valid & valid_in).sum())
    if bad:
        ctx.log(f"{bad} frames disabled for artifacts")
    meta = {"method": p.method, "scale": p.scale, "normalize": p.normalize, "reasons": reasons, "region": region}
    if maps:
        meta["cells"] = {"region": region, "bin": 2, "cell": cell}
    return Result(arrays={"score": score, "rank": rank, "valid": valid, "reason": reason, "brightness": brightness,
                          **maps}, meta=meta)


def object_region(crop: list[int], obj: list[int], pad: int, smallest: int) -> list[int]:
    """The object's box (y, x, h, w) grown by ``pad`` px on every side and kept inside ``crop``; the crop
    itself where that leaves a side of ``smallest`` px or less."""
    y0, x0 = max(crop[0], obj[0] - pad), max(crop[1], obj[1] - pad)
    y1 = min(crop[0] + crop[2], obj[0] + obj[2] + pad)
    x1 = min(crop[1] + crop[3], obj[1] + obj[3] + pad)
    if min(y1 - y0, x1 - x0) <= smallest:
        return crop
    return [y0, x0, y1 - y0, x1 - x0]


CELL_MAPS = ("cell_energy", "cell_brightness")


def cell_side(region: list[int]) -> int:
    """The side (binned px) of the detail maps' cells over ``region`` (y, x, h, w): :data:`CELL`, or
    larger where the region would need more than :data:`MAX_CELLS` cells."""
    return max(CELL, math.ceil(math.sqrt((region[2] // 2) * (region[3] // 2) / MAX_CELLS)))


def score_chunk(stream, chunk: range, shift: np.ndarray, valid: np.ndarray, region: list[int], method: str,
                scale: float, margin: int, normalize: bool, artifacts: bool, cell: int = 0
                ) -> tuple[np.ndarray, ...]:
    """Scores, artifact reason codes and brightness (:func:`crop_brightness`) of the aligned ``region``
    (y, x, h, w in reference coordinates) of frames ``chunk`` (frames stabilize disabled are skipped).

    With a ``cell`` side (binned px; a binned gradient score) also the frames' detail maps (n, rows,
    columns) float32: the squared gradient (per full-resolution px, 0…1 scale) and the smoothed
    brightness of the 2×2-binned region summed over cells of that side (NaN for frames not measured), from
    which align takes every AP's local quality without reading the frames again."""
    score = np.full(len(chunk), np.nan)
    reason = np.zeros(len(chunk), np.int8)
    brightness = np.full(len(chunk), np.nan)
    cells = cell > 0
    grid = (-(-(region[2] // 2) // cell), -(-(region[3] // 2) // cell)) if cells else (0, 0)
    energy_cells = np.full((len(chunk),) + grid, np.nan, np.float32) if cells else None
    bright_cells = np.full((len(chunk),) + grid, np.nan, np.float32) if cells else None
    for k, i in enumerate(chunk):
        if not valid[i]:
            continue
        box = aligned_box((stream.height, stream.width), region, *shift[i])
        samples, factor = stream.read_samples(i, box)  # as stored where it can: every measure is scaled after
        code = detect_artifacts(samples) if artifacts else 0
        if code:
            reason[k] = code
            continue
        binned = bin2(samples) if method == "gradient" and scale >= BINNED_SCALE else None
        mean = crop_brightness(samples, margin) if binned is None else binned_brightness(samples, binned, margin)
        brightness[k] = mean * factor
        if binned is not None:
            smoothed = binned_smooth(samples, scale, binned)
            value = inner_gradient_rms(smoothed, margin // 2) / 2  # per full-resolution px
            if normalize:
                value = value / mean if mean > 1e-6 else 0.0
            if cells:
                energy_cells[k] = cell_sums(detail_energy(smoothed), cell) * (factor * factor / 4)
                bright_cells[k] = cell_sums(smoothed, cell) * factor
        else:
            value = frame_score(samples, method, scale, margin, normalize, mean)
        score[k] = value * (1.0 if normalize else factor)
    if cells:
        return score, reason, brightness, energy_cells, bright_cells
    return score, reason, brightness
