"""The ``reader`` node: describes the selected frames of the input recording (never copies a file).

Videos are the exception: decoding is slow, so they are decoded once into a chunked array of the
result. Everything else is read in place when a stream is opened (:func:`luckystack.nodes.frames.open_frames`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from luckystack.graph.node import Context, NodeError, Params, Result, node_type
from luckystack.io.recording import describe
from luckystack.nodes.bounds import Coordinate, FrameCount, FrameNumber, Side, selection_fits

Pattern = Literal["auto", "none", "RGGB", "GRBG", "GBRG", "BGGR"]


class ReaderParams(Params):
    first: FrameNumber = Field(0, description="First frame number to use (0-based, inclusive).")
    last: FrameNumber | None = Field(None, description="Last frame number to use (inclusive); None = the end.")
    step: FrameCount = Field(1, description="Use every step-th frame.")
    drop: list[FrameNumber] = Field(default_factory=list, max_length=1_000_000,
                                    description="Frame numbers to leave out.")
    roi: tuple[Coordinate, Coordinate, Side, Side] | None = Field(
        None, description="Crop (x, y, width, height) applied before anything else; None = whole frame.")
    byte_order: Literal["auto", "little", "big"] = Field(
        "auto", description="Byte order of 16-bit samples; auto compares the smoothness of both.")
    bit_depth: int | None = Field(
        None, ge=1, le=16, description="Real bits per sample (1.0 = 2**bit_depth - 1); None = detect.")
    debayer: Pattern = Field(
        "auto", description="Bayer pattern: auto = from the file, none = keep raw mono, or force one.")
    debayer_method: Literal["bilinear", "malvar"] = Field(
        "malvar", description="Demosaicing: bilinear (fast) or Malvar-He-Cutler (sharper, fewer fringes).")


@node_type("reader", params=ReaderParams, outputs={"frames": "frames"}, version="3", reads_input=True,
           check_input=selection_fits)
def reader(ctx: Context) -> Result:
    """Describe the recording's selected frames: format, layout, bit depth, timestamps, capture data."""
    p: ReaderParams = ctx.params
    if ctx.input_file is None:
        raise NodeError("the reader needs an input recording")

    def create(shape, dtype, chunks):
        return ctx.create_array("frames", "raw", shape, dtype, chunks)

    try:
        meta, arrays, notes = describe(
            ctx.input_file, first=p.first, last=p.last, step=p.step, drop=p.drop, roi=p.roi,
            byte_order=p.byte_order, bit_depth=p.bit_depth, debayer=p.debayer,
            debayer_method=p.debayer_method, create=create)
    except (OSError, ValueError) as exc:
        raise NodeError(f"cannot read {ctx.input_file}: {exc}") from exc
    for note in notes:
        ctx.log(note)
    return Result(arrays=arrays, meta=meta)
