"""stabilize: the global shift of every frame (planet: disc centroid + correlation; surface: anchors)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from luckystack.graph.node import Context, NodeError, Params, Port, Result, node_type
from luckystack.imaging.stabilization import (
    REASONS, common_crop, has_dark_sky, planet_chunk, planet_reference, surface_chunk, surface_reference,
)
from luckystack.nodes.bounds import MAX_SIDE, Coordinate, Side
from luckystack.nodes.frames import chunked, open_frames

CHUNK = 32  # frames per work item; fixed so results do not depend on the number of jobs


class StabilizeParams(Params):
    mode: Literal["auto", "planet", "surface"] = Field(
        "auto", description="planet: centroid of the disc on dark sky; surface: anchor patches (Moon, Sun); "
                            "auto: planet if the object is surrounded by dark sky, else surface")
    threshold: float = Field(0.2, ge=0.05, le=0.95,
                             description="planet: disc threshold as a fraction between background and peak")
    refine: bool = Field(True, description="planet: refine the centroid by sub-pixel correlation with a "
                                           "reference disc (much more precise than the centroid alone)")
    anchor: tuple[Coordinate, Coordinate, Annotated[int, Field(ge=16, le=MAX_SIDE)]] | None = Field(
        None, description="surface: anchor patch (x, y, size) in the first frame; default: chosen "
                          "automatically where the structure in both directions is highest")
    anchor_size: int | None = Field(None, ge=16, le=1024,
                                    description="surface: automatic anchor size in px (default: 2/5 of the "
                                                "smaller frame side)")
    search: int = Field(24, ge=4, le=512, description="surface: largest frame-to-frame drift in px")
    size: tuple[Side, Side] | None = Field(
        None, description="output (width, height) centred in the common area, to speed up processing")
    crop: tuple[Coordinate, Coordinate, Side, Side] | None = Field(
        None, description="output crop (x, y, width, height) in reference coordinates; overrides size")
    reference_frames: int = Field(8, ge=1, le=64,
                                  description="planet: frames averaged into the disc reference")


@node_type("stabilize", params=StabilizeParams, inputs={"frames": Port(doc="reader or calibrate result", kind="frames")},
           outputs={"shifts": "shifts"}, version="7", reads_input=True)
def stabilize(ctx: Context) -> Result:
    """Global sub-pixel shift and validity of every frame, the common crop and (planet) the object's box."""
    p: StabilizeParams = ctx.params
    stream = open_frames(ctx.inputs["frames"], ctx.input_file)
    n = stream.count
    if n == 0:
        raise NodeError("the recording has no frames")
    first = stream.read_mono(0)
    mode = p.mode
    if mode == "auto":
        mode = "planet" if has_dark_sky(first) else "surface"
    chunks = chunked(range(n), CHUNK)
    try:
        if mode == "planet":
            heads = [first] + [stream.read_mono(i) for i in range(1, min(n, p.reference_frames))]
            ref = planet_reference(heads, p.threshold)
            fn = partial(planet_chunk, stream, ref=ref, refine=p.refine)
        else:
            ref = surface_reference(stream.read_samples(0)[0], p.anchor_size, max(2, p.search // 2), p.anchor)
            fn = partial(surface_chunk, stream, ref=ref)
    except ValueError as exc:
        raise NodeError(f"stabilize ({mode}): {exc}") from exc
    parts = list(ctx.map(fn, chunks, total=len(chunks), label="stabilize"))
    shift = np.concatenate([q[0] for q in parts]).astype(np.float64)
    valid = np.concatenate([q[1] for q in parts])
    reason = np.concatenate([q[2] for q in parts]).astype(np.int8)
    if not valid.any():
        raise NodeError(f"stabilize ({mode}): no frame could be aligned ({REASONS[int(np.bincount(reason).argmax())]})")
    # Put the reference origin at the median valid shift so the crop sits in the middle of the drift.
    origin = np.round(np.median(shift[valid], axis=0))
    shift = shift - origin
    try:
        crop = _output_crop(common_crop(shift, valid, stream.height, stream.width), p, ctx)
    except ValueError as exc:
        raise NodeError(f"stabilize: {exc}") from exc
    bad = int((~valid).sum())
    if bad:
        ctx.log(f"{bad} of {n} frames disabled")
    meta = {"crop": crop, "reasons": {str(k): v for k, v in REASONS.items()}, "mode": mode}
    if mode == "planet":  # the object's box, moved with the origin (a point p of the old is p + origin)
        top, bottom, left, right = ref.box
        oy, ox = int(origin[0]), int(origin[1])
        meta["object"] = [top + oy, left + ox, bottom - top, right - left]
    return Result(arrays={"shift": shift, "valid": valid, "reason": reason}, meta=meta)


def _output_crop(common: list[int], p: StabilizeParams, ctx: Context) -> list[int]:
    """The user's crop or size (centred in the common area), else the common area."""
    y0, x0, h, w = common
    if p.crop is not None:
        cx, cy, cw, ch = p.crop
        if cy < y0 or cx < x0 or cy + ch > y0 + h or cx + cw > x0 + w:
            ctx.log("stabilize: the chosen crop reaches outside the area all frames share; "
                    "its edges are filled from the nearest pixels in some frames")
        return [int(cy), int(cx), int(ch), int(cw)]
    if p.size is not None:
        sw, sh = p.size
        sw, sh = min(sw, w), min(sh, h)
        return [y0 + (h - sh) // 2, x0 + (w - sw) // 2, int(sh), int(sw)]
    return common
