"""Frame streams over a described recording: select, crop, scale, calibrate and debayer on the fly.

Per frame, in this order (all in raw sample units until the scaling step):
ROI crop (read alone) → float32 → NaN/inf filled from finite neighbours (float sources; the reader
counts them) → − master dark →
row/column pattern-noise removal (its background mask ignores hot pixels) → bad-pixel repair from
same-colour neighbours (already free of banding) → × gain (1 / normalised flat) × scale to 0..1 →
debayer (``read`` only). Scale is 1 / ((2**bit_depth − 1) · 2**bit_shift): MSB-aligned data (the low
``bit_shift`` bits always zero) and LSB-aligned data both map their largest possible value to 1.0.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from luckystack.imaging.calibration import fill_nonfinite_planes, fix_pixels, neighbour_index
from luckystack.imaging.colour import luminance
from luckystack.imaging.debayer import PATTERNS, cfa_luminance, colour_masks, debayer
from luckystack.imaging.pattern_noise import remove_pattern
from luckystack.io.sources import RawReader


def _small(arrays: Mapping[str, Any], name: str) -> np.ndarray | None:
    return np.asarray(arrays[name][...]) if name in arrays else None


class RecordingStream:
    """A :class:`~luckystack.io.frames.FrameStream` over a described recording (its metadata and
    small arrays, calibration included) and the recording's file."""

    def __init__(self, meta: dict[str, Any], arrays: Mapping[str, Any], input_file: Path | None) -> None:
        src = meta["source"]
        if src["type"] in ("ser", "fits") and input_file is None:
            raise ValueError("the frames description needs the input recording, but no input file was given")
        self.meta = meta
        self.count = int(meta["count"])
        self.height, self.width = int(meta["height"]), int(meta["width"])
        self.layout = str(meta["layout"])
        self.channels = int(meta["channels"])
        self.bit_depth = int(meta["bit_depth"])
        self.frame_index = np.asarray(arrays["frame_index"][...], np.int64)
        self.timestamps = np.asarray(arrays["timestamp"][...], np.float64)
        self._reader = RawReader(src, input_file, arrays.get("raw"))
        self._roi = tuple(meta["roi"]) if meta["roi"] != [0, 0, meta["full_width"], meta["full_height"]] else None
        self._scale = np.float32(meta["scale"])
        self._float_source = meta["sample"] == "f4"
        self._nonfinite = _small(arrays, "nonfinite")  # per selected frame, counted by the reader
        self._pattern = self.layout if self.layout in PATTERNS else None
        self._method = meta.get("debayer_method", "bilinear")
        cal = meta.get("calibration", {})
        self._pattern_mode = cal.get("pattern_noise", "off")
        self._dark = _small(arrays, "dark")
        gain = _small(arrays, "gain")
        self._gain = None if gain is None else (gain * self._scale).astype(np.float32)
        bad = _small(arrays, "bad_pixels")
        self._bad = bad if bad is not None and len(bad) else None
        if self._bad is not None:
            stride = 2 if self._pattern or meta["source_layout"] in PATTERNS else 1
            self._neighbours = neighbour_index(self._bad, (self.height, self.width), stride)
        self._plain = (self._dark is None and self._gain is None and self._bad is None
                       and self._pattern_mode == "off" and not self._float_source)
        self._masks: dict[str, np.ndarray] | None = None

    # -- raw → calibrated 0..1 (H, W) or (H, W, 3) -------------------------------------------------
    def _raw(self, i: int, box: tuple[int, int, int, int] | None) -> np.ndarray:
        """Frame ``i`` as stored, ROI and ``box`` (top, bottom, left, right) applied."""
        if not 0 <= i < self.count:
            raise IndexError(f"frame {i} is outside the selection of {self.count} frames")
        roi = self._roi
        if box is not None:
            top, bottom, left, right = box
            x0, y0 = (roi[0], roi[1]) if roi else (0, 0)
            roi = (x0 + left, y0 + top, right - left, bottom - top)
        return self._reader.frame(int(self.frame_index[i]), roi)

    def _calibrated(self, i: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Frame ``i`` calibrated and scaled; ``box`` (top, bottom, left, right) only for plain streams,
        which then read and convert only those rows and columns."""
        raw = self._raw(i, box)
        if self._plain:
            return np.multiply(raw, self._scale, dtype=np.float32)
        x = raw.astype(np.float32)
        if self._float_source:
            fill_nonfinite_planes(x)
        if self._dark is not None:
            x -= self._dark
        planes = [x] if x.ndim == 2 else [x[..., c] for c in range(x.shape[2])]
        for plane in planes:
            work = plane if plane.flags.c_contiguous else np.ascontiguousarray(plane)
            if self._pattern_mode != "off":
                remove_pattern(work, self._pattern_mode, self._pattern)
            if self._bad is not None:
                fix_pixels(work, self._bad, self._neighbours)
            if work is not plane:
                plane[...] = work
        x *= self._gain if self._gain is not None else self._scale
        return x

    def _reads_boxes(self) -> bool:
        """Whether a box of a frame can be read and converted alone: uncalibrated mono or RGB data (a
        Bayer frame's debayering and grey, and calibration, look beyond the box)."""
        return self._plain and self._pattern is None

    # -- the FrameStream interface ------------------------------------------------------------------
    def read(self, i: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Frame ``i`` of the selection, (H, W, C) float32, debayered for Bayer recordings; with ``box``
        (top, bottom, left, right) only those rows and columns, the same values as the whole frame's.
        Uncalibrated mono and RGB frames then read and convert only the box; others are done whole."""
        if box is not None and not self._reads_boxes():
            top, bottom, left, right = box
            return self.read(i)[top:bottom, left:right]
        x = self._calibrated(i, box)
        if self._pattern:
            if self._masks is None:
                self._masks = colour_masks(self._pattern, self.height, self.width)
            return debayer(x, self._pattern, self._method, self._masks)
        return x[..., None] if x.ndim == 2 else x

    def read_mono(self, i: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """(H, W) float32 grey for measuring: the frame (mono), Rec. 709 luminance (RGB), or
        (R + 2G + B) / 4 from a 3×3 filter of the CFA (Bayer, no full debayer needed); ``box`` as
        for :meth:`read`."""
        if box is not None and not self._reads_boxes():
            top, bottom, left, right = box
            return self.read_mono(i)[top:bottom, left:right]
        x = self._calibrated(i, box)
        if self._pattern:
            return cfa_luminance(x)
        return x if x.ndim == 2 else luminance(x)

    def read_samples(self, i: int, box: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, float]:
        """(samples, factor): frame ``i``'s grey as stored (uint8/uint16, ROI and ``box`` applied, never
        converted) for uncalibrated mono streams, else ``read_mono``'s float32; ``samples × factor`` is
        ``read_mono(i, box)``. For measures that are cheaper on integers or need no scale."""
        if not self._reads_boxes() or self.channels != 1 or self.layout != "mono":
            return self.read_mono(i, box), 1.0
        return self._raw(i, box), float(self._scale)

    def read_cfa(self, i: int) -> np.ndarray:
        """The calibrated raw CFA frame (Bayer) for Bayer drizzle; ``read_mono`` otherwise."""
        return self._calibrated(i) if self._pattern else self.read_mono(i)

    def nonfinite_mask(self, i: int) -> np.ndarray | None:
        """(H, W) bool: the pixels of frame ``i`` that were NaN or infinite in the file (``read`` fills
        them from their neighbours); None when the reader found none in that frame."""
        if self._nonfinite is None or not self._nonfinite[i]:
            return None
        bad = ~np.isfinite(self._reader.frame(int(self.frame_index[i]), self._roi))
        return bad if bad.ndim == 2 else bad.any(axis=2)

    def read_mono_many(self, indices: Any) -> np.ndarray:
        """(n, H, W) float32 ``read_mono`` of several frames."""
        idx = list(indices)
        out = np.empty((len(idx), self.height, self.width), np.float32)
        for k, i in enumerate(idx):
            out[k] = self.read_mono(int(i))
        return out


def open_stream(meta: dict[str, Any], arrays: Mapping[str, Any], input_file: Path | str | None) -> RecordingStream:
    """The frame stream of a described recording: ``meta`` and ``arrays`` as
    :func:`luckystack.io.recording.describe` makes them (and calibration adds to), ``input_file`` the
    recording they describe. ValueError when ``meta`` describes no frames."""
    if "source" not in meta:
        raise ValueError("this description has no frames (expected a recording's description)")
    return RecordingStream(meta, arrays, Path(input_file) if input_file else None)
