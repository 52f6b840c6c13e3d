"""Frame streams: how nodes read the frames of a recording without holding it in memory.

The ``reader`` node and the ``calibrate`` node return a *description* of the frames (format, offsets,
dtype, bit depth, colour layout, selected frame indices, calibration arrays), never a copy of the
recording. Any node that needs pixels calls :func:`open_frames` on that Result with the run's input
file and gets a :class:`FrameStream`.

Conventions for every stream:

* ``read(i)`` returns frame ``i`` of the *selection* (0 … count-1) as float32 of shape (H, W, C),
  C = 1 (mono) or 3 (RGB after debayering), calibrated, scaled so 1.0 is the largest value the
  detected bit depth can hold; ``read(i, box)`` only rows ``top:bottom`` and columns ``left:right``
  of it (``box`` = (top, bottom, left, right) inside the frame), which a stream may read faster.
* ``read_mono(i)`` returns the (H, W) float32 luminance used for measuring (quality, alignment);
  ``read_mono(i, box)`` only a box of it, as ``read``.
* ``read_cfa(i)`` returns the calibrated raw (H, W) colour-filter-array frame of a Bayer recording
  (for Bayer drizzle); for other layouts it equals ``read_mono``.
* ``read_samples(i, box)`` returns ``(samples, factor)``: the grey as stored (uint8/uint16, unconverted)
  where the stream can (uncalibrated mono), else ``read_mono``'s float32; ``samples × factor`` is
  ``read_mono(i, box)``. Measures that need no scale, or are cheaper on integers, use it.
* Streams are picklable and cheap to send to worker processes: they reopen their file there.
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Sequence
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np

from luckystack.graph.node import NodeError, Result
from luckystack.imaging.colour import grey


@runtime_checkable
class FrameStream(Protocol):
    count: int
    height: int
    width: int
    channels: int  # 1 or 3
    layout: str  # "mono", "RGGB", "GRBG", "GBRG", "BGGR", "RGB"
    bit_depth: int

    def read(self, i: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray: ...

    def read_mono(self, i: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray: ...

    def read_cfa(self, i: int) -> np.ndarray: ...

    def read_samples(self, i: int, box: tuple[int, int, int, int] | None = None
                     ) -> tuple[np.ndarray, float]: ...


class ArrayFrameStream:
    """A FrameStream over frames already in memory (tests, small synthetic data).

    ``frames`` is (N, H, W) or (N, H, W, 3), float values already on the 0…1 scale.
    """

    def __init__(self, frames: np.ndarray, layout: str | None = None, bit_depth: int = 16):
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim == 3:
            frames = frames[..., None]
        if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
            raise ValueError("frames must be (N, H, W) or (N, H, W, 3)")
        self._frames = frames
        self.count, self.height, self.width, self.channels = frames.shape
        self.layout = layout or ("mono" if self.channels == 1 else "RGB")
        self.bit_depth = bit_depth

    def read(self, i: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        if box is None:
            return self._frames[i]
        top, bottom, left, right = box
        return self._frames[i, top:bottom, left:right]

    def read_mono(self, i: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        return grey(self.read(i, box))

    def read_cfa(self, i: int) -> np.ndarray:
        return self.read_mono(i)

    def read_samples(self, i: int, box: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, float]:
        return self.read_mono(i, box), 1.0


S = TypeVar("S", bound=Sequence)


def chunked(items: S, size: int) -> list[S]:
    """``items`` cut into consecutive slices of ``size`` (the last may be shorter): the fixed work
    items of ``ctx.map``, so results never depend on the number of jobs."""
    return [items[s:s + size] for s in range(0, len(items), size)]


GAP_KEEP = 0.25  # an AP keeps its frames with gaps when fewer than this share of its valid frames has none


def aps_over_gaps(stream: FrameStream, shift: np.ndarray, valid: np.ndarray, crop: Sequence[int],
                  centres: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """(N, A) bool: where an AP's stacked patch in frame i covers pixels the file held no value for
    (NaN/inf, filled when read). Those frames are left out of that AP's stack, so the fill never
    enters a sum, unless too few frames without gaps would be left (a gap in every frame, e.g. a
    dead sensor area): then the AP keeps them all, as the fill is all there is. Only frames the
    reader found such pixels in are read again.

    A patch spans 1.5 × its AP size (as the stack cuts it) plus 4 px for the local shift; its frame
    position is crop origin + global shift + centre, as in every node.
    """
    out = np.zeros((stream.count, len(centres)), bool)
    masks = getattr(stream, "nonfinite_mask", None)
    if masks is None or len(centres) == 0:
        return out
    half = np.ceil(0.75 * np.asarray(sizes)).astype(np.int64) + 4
    for i in range(stream.count):
        mask = masks(i)
        if mask is None:
            continue
        table = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # summed-area table
        cy = np.rint(crop[0] + shift[i, 0] + centres[:, 0]).astype(np.int64)
        cx = np.rint(crop[1] + shift[i, 1] + centres[:, 1]).astype(np.int64)
        h, w = mask.shape
        a, b = np.clip(cy - half, 0, h), np.clip(cy + half + 1, 0, h)
        c, d = np.clip(cx - half, 0, w), np.clip(cx + half + 1, 0, w)
        out[i] = (table[b, d] - table[a, d] - table[b, c] + table[a, c]) > 0
    valid = np.asarray(valid, bool)[:, None]
    clean = (valid & ~out).sum(axis=0)
    out[:, clean < GAP_KEEP * valid.sum()] = False
    return out


def memory_frames(stream: FrameStream) -> Result:
    """A ``frames`` Result wrapping an in-memory stream, for tests and notebooks (never cached)."""
    return Result(meta={"stream": stream})


def open_frames(frames: Result, input_file: Path | None) -> FrameStream:
    """Open the stream described by a ``reader`` or ``calibrate`` result for the run's input file."""
    if isinstance(frames.meta.get("stream"), FrameStream):
        return frames.meta["stream"]
    from luckystack.io.stream import open_stream  # the io package owns formats and calibration

    try:
        return open_stream(frames, input_file)
    except (OSError, ValueError) as exc:
        raise NodeError(f"cannot read frames from {input_file}: {exc}") from exc
