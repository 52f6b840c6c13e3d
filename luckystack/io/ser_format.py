"""The SER file layout (v3 spec, Wilkens/Hahn 2014) and a streaming SER writer.

The header is 178 bytes, little-endian; frames follow top-left first, rows top to bottom; an optional
trailer holds one int64 timestamp per frame in .NET ticks (100 ns since 0001-01-01).
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HEADER_SIZE = 178
FILE_ID = b"LUCAM-RECORDER"
HEADER_STRUCT = struct.Struct("<14s7i40s40s40sqq")  # FileID, LuID..FrameCount, 3 strings, 2 times

COLOR_IDS: dict[int, str] = {
    0: "mono", 8: "RGGB", 9: "GRBG", 10: "GBRG", 11: "BGGR",
    16: "CYYM", 17: "YCMY", 18: "YMCY", 19: "MYYC", 100: "RGB", 101: "BGR",
}
LAYOUT_IDS: dict[str, int] = {v: k for k, v in COLOR_IDS.items()}

TICKS_PER_SECOND = 10_000_000
UNIX_EPOCH_TICKS = 621_355_968_000_000_000
TICK_MASK = (1 << 62) - 1


def ticks_from_unix(seconds: np.ndarray | float) -> np.ndarray:
    """.NET ticks for Unix-epoch seconds."""
    return np.round(np.asarray(seconds, dtype=np.float64) * TICKS_PER_SECOND).astype(np.int64) + UNIX_EPOCH_TICKS


def unix_from_ticks(ticks: np.ndarray) -> np.ndarray:
    """Unix-epoch seconds for .NET ticks (top two bits masked off, as the spec defines only 62)."""
    t = np.asarray(ticks, dtype=np.int64) & TICK_MASK
    return (t - UNIX_EPOCH_TICKS).astype(np.float64) / TICKS_PER_SECOND


@dataclass(frozen=True)
class SerHeader:
    width: int
    height: int
    layout: str = "mono"  # a COLOR_IDS value
    pixel_depth: int = 8  # bits per sample as declared, 1..16
    frame_count: int = 0
    little_endian_flag: int = 0  # de facto convention: 0 means little-endian 16-bit data
    lu_id: int = 0
    observer: str = ""
    instrument: str = ""
    telescope: str = ""
    date_time: int = 0  # local start time, .NET ticks
    date_time_utc: int = 0  # UTC start time, .NET ticks

    @property
    def planes(self) -> int:
        return 3 if self.layout in ("RGB", "BGR") else 1

    @property
    def bytes_per_sample(self) -> int:
        return 1 if self.pixel_depth <= 8 else 2

    @property
    def frame_bytes(self) -> int:
        return self.width * self.height * self.planes * self.bytes_per_sample

    def pack(self) -> bytes:
        def text(s: str) -> bytes:
            return s.encode("ascii", "replace")[:40].ljust(40, b"\0")

        return HEADER_STRUCT.pack(
            FILE_ID, self.lu_id, LAYOUT_IDS[self.layout], self.little_endian_flag, self.width,
            self.height, self.pixel_depth, self.frame_count, text(self.observer),
            text(self.instrument), text(self.telescope), self.date_time, self.date_time_utc,
        )


def write_ser(path: Path | str, frames: Iterable[np.ndarray], header: SerHeader,
              timestamps: np.ndarray | None = None, big_endian: bool = False) -> int:
    """Write ``frames`` (each (H, W) or (H, W, 3) of uint8/uint16) as a SER file; return the count.

    Frames are streamed to disk one at a time. ``header.frame_count`` is ignored and replaced by the
    real count. ``timestamps`` are Unix seconds per frame and become the trailer. ``big_endian``
    stores 16-bit samples big-endian (the caller sets the flag it wants to test with).
    """
    dtype = np.dtype(np.uint8 if header.bytes_per_sample == 1 else (">u2" if big_endian else "<u2"))
    count = 0
    with open(path, "wb") as fh:
        fh.write(header.pack())
        for frame in frames:
            frame = np.asarray(frame)
            expected = (header.height, header.width) + ((3,) if header.planes == 3 else ())
            if frame.shape != expected:
                raise ValueError(f"frame {count} has shape {frame.shape}, expected {expected}")
            fh.write(np.ascontiguousarray(frame, dtype=dtype).tobytes())
            count += 1
        if timestamps is not None:
            ts = np.asarray(timestamps, dtype=np.float64)
            if len(ts) != count:
                raise ValueError(f"{len(ts)} timestamps for {count} frames")
            fh.write(ticks_from_unix(ts).astype("<i8").tobytes())
        fh.seek(0)
        fh.write(_with_count(header, count).pack())
    return count


def _with_count(header: SerHeader, count: int) -> SerHeader:
    from dataclasses import replace

    return replace(header, frame_count=count)


def ticks_from_datetime(when: dt.datetime) -> int:
    """.NET ticks of an aware or naive datetime (naive is taken as UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return int(ticks_from_unix(when.timestamp()))
