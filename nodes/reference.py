"""reference: mean of the best globally aligned frames (optionally re-aligned locally once), or an image file."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import cv2
import numpy as np
from pydantic import Field

from luckystack.graph.node import Context, InputFile, NodeError, Params, Port, Result, node_type
from luckystack.imaging.apshift import make_templates, match_blur, measure, replace_lost
from luckystack.imaging.colour import grey, luminance
from luckystack.imaging.drizzle import tap_weights
from luckystack.imaging.placement import NEAREST_REACH, grid_aps, neighbours
from luckystack.imaging.warp import dense_field, warp_field
from luckystack.nodes.bounds import FrameCount
from luckystack.nodes.frames import chunked, open_frames

CHUNK = 32
PHASES = 8  # sub-pixel positions per px the frames are resampled at (1/8 px; OpenCV's warps use 1/32)


class ReferenceParams(Params):
    fraction: float = Field(0.5, gt=0.0, le=1.0, description="average the frames better than this quality "
                                                             "point (0.5: the better half of valid frames)")
    max_frames: FrameCount | None = Field(None, description="at most this many frames (the best ones)")
    local: bool = Field(False, description="re-align the chosen frames locally to the first mean and "
                                           "average again (sharper reference under bad seeing)")
    local_box: int = Field(48, ge=16, le=256, description="box size of the local re-alignment grid (px)")
    search: int = Field(6, ge=2, le=64, description="local re-alignment search radius (px)")
    path: InputFile | None = Field(None, description="use this image (TIFF/PNG/FITS, e.g. a previous stack, "
                                                     "same size as the crop) as the reference instead")


@node_type("reference", params=ReferenceParams,
           inputs={"frames": Port(kind="frames"), "shifts": Port(kind="shifts"), "quality": Port(kind="quality")},
           outputs={"reference": "reference"}, version="10", reads_input=True)
def reference(ctx: Context) -> Result:
    """The reference image over the stabilize crop."""
    p: ReferenceParams = ctx.params
    stream = open_frames(ctx.inputs["frames"], ctx.input_file)
    shifts, quality = ctx.inputs["shifts"], ctx.inputs["quality"]
    crop = [int(v) for v in shifts.meta["crop"]]
    if p.path is not None:
        return Result(arrays={"image": load_reference(p.path, crop, stream.channels)},
                      meta={"frames_used": 0, "source": str(p.path)})
    shift, valid, rank = shifts.array("shift"), quality.array("valid"), quality.array("rank")
    chosen = best_frames(rank, valid, p.fraction, p.max_frames)
    chunks = chunked(chosen, CHUNK)
    position = quantized_positions(shift, crop)
    by_phase = chosen[np.lexsort((chosen, position[chosen, 1] % PHASES, position[chosen, 0] % PHASES))]
    image = _mean(ctx, partial(sum_chunk, stream, position=position, crop=crop), chunked(by_phase, CHUNK))
    iterations = 0
    if p.local:
        mono = grey(image)
        half_box = p.local_box // 2
        centres = grid_aps(mono, p.local_box, margin=p.search + 2, min_brightness=0.05, min_structure=0.02)
        if len(centres) >= 2:
            sizes = np.full(len(centres), p.local_box, np.int32)
            fn = partial(local_sum_chunk, stream, shift=shift, crop=crop, ref_mono=mono, centres=centres,
                         sizes=sizes, search=p.search, sigma=0.75 * p.local_box)
            image = _mean(ctx, fn, chunks)
            iterations = 1
        else:
            ctx.log(f"too little structure for local re-alignment with {half_box * 2} px boxes")
    return Result(arrays={"image": image.astype(np.float32)},
                  meta={"frames_used": len(chosen), "local_iterations": iterations})


def best_frames(rank: np.ndarray, valid: np.ndarray, fraction: float, max_frames: int | None) -> np.ndarray:
    """Indices (sorted by frame number) of the best ``fraction`` of the valid frames, at least one."""
    count = max(1, int(round(fraction * int(valid.sum()))))
    if max_frames:
        count = min(count, max_frames)
    if not valid.any():
        raise NodeError("reference: no valid frame to average")
    return np.sort(np.flatnonzero(valid & (rank < count)))


def _mean(ctx: Context, fn, chunks: list[np.ndarray]) -> np.ndarray:
    total, count = None, 0
    for s, c in ctx.map(fn, chunks, total=len(chunks), label="reference"):
        total = s if total is None else total + s
        count += c
    return (total / count).astype(np.float32)


def quantized_positions(shift: np.ndarray, crop: list[int]) -> np.ndarray:
    """(N, 2) int64: where each frame's crop starts, (y0 + dy, x0 + dx), in 1/:data:`PHASES` px."""
    return np.rint((np.asarray(crop[:2], np.float64) + shift) * PHASES).astype(np.int64)


def sum_chunk(stream, chunk: np.ndarray, position: np.ndarray, crop: list[int]) -> tuple[np.ndarray, int]:
    """Sum of the globally aligned crops of frames ``chunk``, resampled (separable cubic, as the stack)
    at their crop positions ``position`` (:func:`quantized_positions`).

    Resampling is linear: the frames at one sub-pixel phase are added as stored, at their whole-pixel
    positions, and the sum is filtered once. Chunks of frames ordered by phase (as the node makes them)
    filter once or twice instead of once per frame."""
    _, _, h, w = crop
    total = np.zeros((h, w, stream.channels), np.float64)
    phase = position[chunk] % PHASES
    for py, px in np.unique(phase, axis=0).tolist():
        whole, first, taps = tap_weights(np.array([[py / PHASES, px / PHASES]]), "cubic")
        reach = taps.shape[2] - 1
        acc = factor = None
        for i in chunk[(phase[:, 0] == py) & (phase[:, 1] == px)]:
            y, x = position[i] // PHASES + first
            block, factor = _block(stream, int(i), y, y + h + reach, x, x + w + reach)
            if acc is None:  # float32 holds the sum of a chunk of 8- and 16-bit samples exactly
                acc = np.zeros(block.shape, np.float32)
            cv2.accumulate(block, acc)
        filtered = cv2.sepFilter2D(acc, cv2.CV_32F, taps[0, 1], taps[0, 0], anchor=(0, 0),
                                   borderType=cv2.BORDER_REPLICATE)[:h, :w]
        total += filtered.reshape(h, w, -1) * factor
    return total, len(chunk)


def _block(stream, i: int, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, float]:
    """Rows ``[y0, y1)`` and columns ``[x0, x1)`` of frame ``i`` (edges replicated beyond the frame) and
    the factor that scales them to 0…1: grey samples as stored for a mono stream, else ``read``'s."""
    box = (max(0, y0), min(stream.height, y1), max(0, x0), min(stream.width, x1))
    if stream.channels == 1:
        part, factor = stream.read_samples(i, box)
    else:
        part, factor = stream.read(i, box), 1.0
    outside = (box[0] - y0, y1 - box[1], box[2] - x0, x1 - box[3])
    if any(outside):
        part = cv2.copyMakeBorder(np.ascontiguousarray(part), *outside, cv2.BORDER_REPLICATE)
    return part, factor


def local_sum_chunk(stream, chunk: np.ndarray, shift: np.ndarray, crop: list[int], ref_mono: np.ndarray,
                    centres: np.ndarray, sizes: np.ndarray, search: int, sigma: float) -> tuple[np.ndarray, int]:
    """Sum of frames re-aligned by a smooth field through their local shifts against the first mean."""
    y0, x0, h, w = crop
    tpl = make_templates(match_blur(ref_mono), centres, sizes, y0, x0)
    nbrs = neighbours(centres, sizes, NEAREST_REACH)
    acc = np.zeros((h, w, stream.channels), np.float64)
    for i in chunk:
        i = int(i)
        gdy, gdx = shift[i]
        loc, score, found = measure(match_blur(stream.read_mono(i)), tpl, gdy, gdx, search)
        loc, _ = replace_lost(loc[None], score[None], found[None], nbrs, 0.5, 3.0)
        field = dense_field(centres, loc[0], h, w, sigma)
        cv2.accumulate(warp_field(stream.read(i), y0 + gdy, x0 + gdx, field).reshape(h, w, -1), acc)
    return acc, len(chunk)


def load_reference(path: Path, crop: list[int], channels: int) -> np.ndarray:
    """A reference image file as (h, w, C) float32 on 0…1, checked against the crop size."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".fits", ".fit", ".fts"):
            from astropy.io import fits
            data = np.asarray(fits.getdata(path), dtype=np.float64)
            if data.ndim == 3 and data.shape[0] in (1, 3):
                data = np.moveaxis(data, 0, -1)
            peak = float(np.nanmax(data)) if data.size else 1.0
            data = data / peak if peak > 1.0 else data
        else:
            if suffix in (".tif", ".tiff"):
                import tifffile
                data = tifffile.imread(path)
            else:
                import cv2
                data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
                if data is None:
                    raise OSError("unreadable image")
                if data.ndim == 3:
                    data = data[..., ::-1]  # OpenCV reads BGR
            scale = float(np.iinfo(data.dtype).max) if np.issubdtype(data.dtype, np.integer) else 1.0
            data = np.asarray(data, dtype=np.float64) / scale
    except (OSError, ValueError) as exc:
        raise NodeError(f"reference: cannot read the reference image {path}: {exc}") from exc
    if data.ndim == 2:
        data = data[..., None]
    h, w = crop[2], crop[3]
    if data.shape[:2] != (h, w):
        raise NodeError(f"reference: the image {path.name} is {data.shape[1]}×{data.shape[0]} but the crop is {w}×{h}")
    data = data.astype(np.float32)
    if data.shape[2] != channels:
        data = luminance(data)[..., None] if channels == 1 else np.repeat(data[..., :1], 3, axis=2)
    return data
