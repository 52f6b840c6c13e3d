"""The ``master`` node: a master dark, flat or flat-dark from a calibration recording, streamed.

The master is kept in *raw sample units* (values as stored in the file, byte order resolved, no
bit-depth scaling), so it calibrates a light recording from the same camera exactly, whatever bit depth
was detected for each. ``scale`` in the meta maps it to 0..1 when the formats differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from luckystack.graph.node import Context, InputFile, NodeError, Params, Result, node_type
from luckystack.imaging.calibration import MedianReducer, fill_nonfinite_planes, median_of_stack
from luckystack.io.fits import write_fits_image
from luckystack.io.recording import describe
from luckystack.io.sources import RawReader, probe
from luckystack.io.video import VIDEO_SUFFIXES, iter_video
from luckystack.nodes.frames import chunked

CHUNK = 32  # frames per work item; fixed so results do not depend on the number of jobs


class MasterParams(Params):
    path: InputFile = Field(description="The dark, flat or flat-dark recording (any supported format).")
    kind: Literal["dark", "flat", "flat-dark"] = Field("dark", description="What the recording is.")
    method: Literal["mean", "median"] = Field(
        "median", description="Per-pixel combination: mean, or median (robust to cosmic rays; computed "
                              "as a median of 32-frame chunk medians, with bounded memory).")
    byte_order: Literal["auto", "little", "big"] = Field("auto", description="Byte order of 16-bit samples.")


def _chunk_reduce(args: tuple) -> np.ndarray:
    """Sum (mean) or median (median) of the raw frames ``ks`` of a source, as float64/float32."""
    source, path, raw, ks, method = args
    reader = RawReader(source, path, raw)
    frames = [np.asarray(reader.frame(int(k)), np.float32) for k in ks]
    for f in frames:  # NaN/inf from their neighbours, as the frame stream fills the lights
        fill_nonfinite_planes(f)
    if method == "mean":
        return np.sum(np.stack(frames), axis=0, dtype=np.float64)
    return median_of_stack(np.stack(frames))


def _combine(chunks, method: str, count: int | None) -> np.ndarray:
    """Reduce chunk results in order; for the mean, chunks are (sum, n) pairs when count is None."""
    if method == "mean":
        total, n = None, 0
        for part in chunks:
            if count is None:
                part, k = part
                n += k
            total = part if total is None else total + part
        return (total / (count or n)).astype(np.float32)
    reducer = MedianReducer()
    for part in chunks:
        reducer.add(part)
    return reducer.result()


def write_master_fits(master_result: Result, path: Path | str) -> Path:
    """Write a master (raw sample units, float32) as FITS with its kind, method and frame count."""
    m = master_result.meta
    header = {"IMAGETYP": f"master {m.get('kind', '')}", "COMBINE": m.get("method", ""),
              "NCOMBINE": m.get("frames") or 0, "BITDEPTH": m.get("bit_depth", 0)}
    return write_fits_image(path, master_result.array("image"), header)


def _export(results: Mapping[str, Result], params: MasterParams, out_dir: Path, stem: str) -> list[Path]:
    r = results["master"]
    return [write_master_fits(r, Path(out_dir) / f"{Path(params.path).stem}-master-{params.kind}.fits")]


@node_type("master", params=MasterParams, outputs={"master": "master"}, version="3",
           export=_export)
def master(ctx: Context) -> Result:
    """Combine a calibration recording into one master frame (raw sample units)."""
    p: MasterParams = ctx.params
    path = Path(p.path)
    try:
        if path.suffix.lower() in VIDEO_SUFFIXES:
            image, meta = _video_master(path, p.method)
        else:
            image, meta = _file_master(ctx, path, p)
    except (OSError, ValueError) as exc:
        raise NodeError(f"cannot build a master {p.kind} from {path}: {exc}") from exc
    meta.update(kind=p.kind, method=p.method, name=path.name)
    for note in meta.pop("notes", []):
        ctx.log(note)
    return Result(arrays={"image": image}, meta=meta)


def _file_master(ctx: Context, path: Path, p: MasterParams) -> tuple[np.ndarray, dict[str, Any]]:
    meta, _, notes = describe(path, byte_order=p.byte_order, debayer="none")
    ks = np.arange(meta["recording_frames"])
    items = [(meta["source"], path, None, part, p.method) for part in chunked(ks, CHUNK)]
    image = _combine(ctx.map(_chunk_reduce, items, total=len(items), label=f"master {p.kind}"),
                     p.method, len(ks))
    keep = ("format", "sample", "bit_depth", "bit_shift", "scale", "byte_order", "source_layout")
    out = {k: meta[k] for k in keep}
    out.update(frames=int(len(ks)), width=meta["full_width"], height=meta["full_height"], notes=notes)
    return image, out


def _video_master(path: Path, method: str) -> tuple[np.ndarray, dict[str, Any]]:
    pr = probe(path)

    seen = [0]

    def chunks():
        batch: list[np.ndarray] = []
        for frame in iter_video(path, grey=pr.layout == "mono"):
            batch.append(frame)
            if len(batch) == CHUNK:
                yield _reduce_batch(batch, method)
                seen[0] += len(batch)
                batch = []
        if batch:
            yield _reduce_batch(batch, method)
            seen[0] += len(batch)

    image = _combine(chunks(), method, None)
    count = seen[0]
    return image, {"format": pr.format, "sample": pr.sample, "bit_depth": 8, "bit_shift": 0,
                   "scale": 1 / 255, "byte_order": "native", "source_layout": pr.layout,
                   "frames": count, "width": pr.width, "height": pr.height}


def _reduce_batch(batch: list[np.ndarray], method: str) -> np.ndarray:
    stack = np.stack(batch).astype(np.float32)
    return (stack.sum(axis=0, dtype=np.float64), len(batch)) if method == "mean" else median_of_stack(stack)
