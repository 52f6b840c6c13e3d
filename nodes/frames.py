"""How nodes get frames: the one adapter from a node's ``frames`` input to :mod:`luckystack.io`.

The ``reader`` node and the ``calibrate`` node return a *description* of the frames (its meta and small
arrays, never a copy of the recording). Any node that needs pixels calls :func:`open_frames` on that
Result with the run's input file and gets a :class:`~luckystack.io.frames.FrameStream` (the stream
conventions are documented there).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from luckystack.graph.node import NodeError, Result
from luckystack.io.frames import FrameStream
from luckystack.io.stream import open_stream

S = TypeVar("S", bound=Sequence)


def chunked(items: S, size: int) -> list[S]:
    """``items`` cut into consecutive slices of ``size`` (the last may be shorter): the fixed work
    items of ``ctx.map``, so results never depend on the number of jobs."""
    return [items[s:s + size] for s in range(0, len(items), size)]


def memory_frames(stream: FrameStream) -> Result:
    """A ``frames`` Result wrapping an in-memory stream, for tests and notebooks (never cached)."""
    return Result(meta={"stream": stream})


def open_frames(frames: Result, input_file: Path | None) -> FrameStream:
    """Open the stream described by a ``reader`` or ``calibrate`` result for the run's input file."""
    if isinstance(frames.meta.get("stream"), FrameStream):
        return frames.meta["stream"]
    try:
        return open_stream(frames.meta, frames.arrays, input_file)
    except (OSError, ValueError) as exc:
        raise NodeError(f"cannot read frames from {input_file}: {exc}") from exc
