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
from luckystack.imaging.drizzle import interpolate_patch
from luckystack.imaging.placement import NEAREST_REACH, grid_aps, neighbours
from luckystack.imaging.warp import dense_field, warp_field
from luckystack.nodes.bounds import FrameCount
from luckystack.nodes.frames import chunked, open_frames

CHUNK = 32


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
           outputs={"reference": "reference"}, version="9", reads_input=True)
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
    image = _mean(ctx, partial(sum_chunk, stream, shift=shift, crop=crop), chunks)
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


def sum_chunk(stream, chunk: np.ndarray, shift: np.ndarray, crop: list[int]) -> tuple[np.ndarray, int]:
    """Sum of the globally aligned crops (bicubic, sub-pixel) of frames ``chunk``."""
    y0, x0, h, w = crop
    acc = np.zeros((h, w, stream.channels), np.float64)
    for i in chunk:
        # Separable cubic FIR at zoom 1: the same resampling as the stack node, ~4× cheaper than warpAffine.
        # cv2.accumulate adds float32 into float64 as np.add does (the same bits), in 2/3 of the time.
        cv2.accumulate(interpolate_patch(stream.read(int(i)), (y0, x0), (h, w), (shift[i, 0], shift[i, 1])),
                       acc)
    return acc, len(chunk)


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
