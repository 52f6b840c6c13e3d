"""Bounded number types shared by the nodes' params, so every number a pipeline gives has a range.

The limits are what a recording can hold, not what is sensible: a frame side fits in 16 bits (the SER
and FITS readers refuse larger), frame numbers stay below 10**8 (over a week of video at 100 fps).
Params whose range depends on the recording (an AP larger than the frame) are checked again when the
recording is known, before any work (see the node types' ``check``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from luckystack.io.recording import select_frames
from luckystack.io.sources import probe

MAX_SIDE = 1 << 16  # px
MAX_FRAMES = 10**8
MIN_AP = 16  # px: smaller boxes hold too little detail to match
MAX_AP = 4096  # px

FrameNumber = Annotated[int, Field(ge=0, le=MAX_FRAMES)]
FrameCount = Annotated[int, Field(ge=1, le=MAX_FRAMES)]
Coordinate = Annotated[int, Field(ge=0, le=MAX_SIDE)]
Side = Annotated[int, Field(ge=1, le=MAX_SIDE)]
ApSize = Annotated[int, Field(ge=MIN_AP, le=MAX_AP)]
Percent = Annotated[float, Field(gt=0, le=100)]


def ap_sizes_fit(params: Any, input_file: Path) -> None:
    """ValueError when an AP size asked for (``ap_size``, ``manual``) exceeds the recording's frame.

    Reads only the recording's header; a recording that cannot be read is left to the reader node,
    which reports it in its own words.
    """
    sizes = params.ap_size if isinstance(params.ap_size, list) else []  # or None, or "auto"
    asked = [("ap_size", s) for s in sizes] + [("manual", s) for _, _, s in params.manual]
    if not asked:
        return
    try:
        rec = probe(input_file)
    except (OSError, ValueError):
        return
    side = min(rec.width, rec.height)
    for name, size in asked:
        if size > side:
            raise ValueError(f"params.{name}: an AP of {size} px does not fit in the {rec.width}×{rec.height} "
                             f"frame; allowed: a whole number from {MIN_AP} to {max(side, MIN_AP)}")


def selection_fits(params: Any, input_file: Path) -> None:
    """ValueError when the reader's frame selection or ROI cannot apply to the recording (header only;
    asked only when they are set, so a default pipeline reads no header twice)."""
    if params.roi is None and params.first == 0 and params.last is None and not params.drop:
        return
    try:
        rec = probe(input_file)
    except (OSError, ValueError):
        return
    if params.roi is not None:
        x, y, w, h = params.roi
        if x + w > rec.width or y + h > rec.height:
            raise ValueError(f"params.roi: {x},{y} {w}×{h} does not fit in the {rec.width}×{rec.height} frame; "
                             f"allowed: x + width up to {rec.width}, y + height up to {rec.height}")
    last = rec.count - 1
    if params.first > last:
        raise ValueError(f"params.first: frame {params.first} is beyond the recording's {rec.count} frames; "
                         f"allowed: 0 to {last}")
    if params.last is not None and params.last < params.first:
        raise ValueError(f"params.last: frame {params.last} comes before first frame {params.first}; "
                         f"allowed: {params.first} or later, or null")
    if select_frames(rec.count, params.first, params.last, params.step, params.drop, allow_empty=True).size == 0:
        end = last if params.last is None else min(params.last, last)
        every = f", every {params.step}th" if params.step > 1 else ""
        raise ValueError(f"params.drop: leaves none of frames {params.first} to {end}{every}")
