"""Frame streams: how a recording's frames are read one at a time, never held in memory whole.

A recording is described by plain metadata and small arrays (format, offsets, dtype, bit depth, colour
layout, selected frame indices, calibration arrays; see :mod:`luckystack.io.recording`), never a copy
of its frames. :func:`luckystack.io.stream.open_stream` turns such a description and the recording's
file into a :class:`FrameStream`; :class:`ArrayFrameStream` is one over frames already in memory.

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
* A stream may offer ``nonfinite_mask(i)``: the (H, W) pixels of frame ``i`` that held NaN/inf in the
  file, or None where there were none.
* Streams are picklable and cheap to send to worker processes: they reopen their file there.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

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
