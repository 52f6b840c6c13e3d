"""Reading SER recordings: header checks, frame count repair, trailer timestamps (read-only).

The frames themselves are read by :mod:`luckystack.io.sources`; this module only decides where they are
and what they mean. Quirks handled are listed in the design notes (stacking-anchors §2).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from luckystack.io.ser_format import (
    COLOR_IDS, FILE_ID, HEADER_SIZE, HEADER_STRUCT, TICK_MASK, TICKS_PER_SECOND, UNIX_EPOCH_TICKS,
    SerHeader, unix_from_ticks,
)

MAX_SIDE = 1 << 16  # no camera sensor is wider or taller than this
CMY_LAYOUTS = ("CYYM", "YCMY", "YMCY", "MYYC")


@dataclass
class SerInfo:
    """What a SER file holds, after repairing the header where it disagrees with the file."""

    header: SerHeader
    frame_count: int  # usable complete frames
    timestamps: np.ndarray  # (frame_count,) Unix seconds, NaN where unknown
    warnings: list[str] = field(default_factory=list)

    @property
    def sample_dtype(self) -> str:
        return "u1" if self.header.bytes_per_sample == 1 else "u2"

    @property
    def start_utc(self) -> str | None:
        """ISO start time in UTC: first trailer timestamp, else the header's UTC time."""
        if len(self.timestamps) and np.isfinite(self.timestamps[0]):
            return _iso(float(self.timestamps[0]))
        if self.header.date_time_utc > 0:
            return _iso(float(unix_from_ticks(np.int64(self.header.date_time_utc))))
        return None


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat(timespec="milliseconds")


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("latin-1").strip()


def read_ser_info(path: Path | str) -> SerInfo:
    """Parse and check the header of the SER file ``path``; raise ValueError with one clear sentence."""
    path = Path(path)
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        raw = fh.read(HEADER_SIZE)
    if len(raw) < HEADER_SIZE:
        raise ValueError(f"{path.name} is {size} bytes, shorter than the {HEADER_SIZE}-byte SER header")
    (file_id, lu_id, color_id, le_flag, width, height, depth, count, observer, instrument, telescope,
     date_time, date_time_utc) = HEADER_STRUCT.unpack(raw)
    if file_id != FILE_ID:
        raise ValueError(f"{path.name} is not a SER file (FileID {file_id[:14]!r}, expected {FILE_ID!r})")
    if color_id not in COLOR_IDS:
        raise ValueError(f"{path.name} has unknown SER ColorID {color_id}")
    layout = COLOR_IDS[color_id]
    if layout in CMY_LAYOUTS:
        raise ValueError(f"{path.name} uses the CMY colour filter pattern {layout}, which is not supported")
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ValueError(f"{path.name} announces absurd frame dimensions {width}x{height}")
    if not 1 <= depth <= 16:
        raise ValueError(f"{path.name} announces {depth} bits per pixel; SER allows 1 to 16")
    header = SerHeader(
        width=width, height=height, layout=layout, pixel_depth=depth, frame_count=count,
        little_endian_flag=le_flag, lu_id=lu_id, observer=_text(observer), instrument=_text(instrument),
        telescope=_text(telescope), date_time=date_time, date_time_utc=date_time_utc,
    )
    fb = header.frame_bytes
    _check_geometry(path.name, header, size - HEADER_SIZE)
    available = (size - HEADER_SIZE) // fb
    warnings: list[str] = []
    if available == 0:
        raise ValueError(f"{path.name} holds no complete frame of {width}x{height} "
                         f"({size - HEADER_SIZE} data bytes, one frame needs {fb})")
    if count <= 0:
        warnings.append(f"header frame count is {count}; using {available} frames found in the file")
        n = available
    elif count > available:
        warnings.append(f"header announces {count} frames but the file holds only {available} complete "
                        f"frames (truncated recording); the rest are skipped")
        n = available
    else:
        n = count
    timestamps = _read_trailer(path, header, n, size, count, warnings)
    return SerInfo(header=header, frame_count=n, timestamps=timestamps, warnings=warnings)


def _fits(data: int, count: int, frame_bytes: int) -> bool:
    """Whether ``data`` bytes are exactly ``count`` frames, with or without the timestamp trailer."""
    return data in (count * frame_bytes, count * (frame_bytes + 8))


def _check_geometry(name: str, header: SerHeader, data: int) -> None:
    """ValueError when the header's colour layout or bit depth cannot be what the file holds.

    Only evidence counts: the header's frame count fails to match the data size while another layout
    (mono/RGB) or sample size (8/16 bit) makes exactly that many frames. A file that is merely short
    (a recording cut off) is left alone: its whole frames are read and the rest reported as truncated.
    """
    count = header.frame_count
    if count <= 0 or _fits(data, count, header.frame_bytes):
        return
    for planes, size in ((1, 1), (1, 2), (3, 1), (3, 2)):
        if (planes, size) == (header.planes, header.bytes_per_sample):
            continue
        if _fits(data, count, header.width * header.height * planes * size):
            claim = f"{header.layout} {header.pixel_depth}-bit"
            held = f"{'RGB' if planes == 3 else 'mono or Bayer'} {8 * size}-bit"
            raise ValueError(f"{name}: the header claims {count} {claim} frames of {header.width}x{header.height} "
                             f"({count * header.frame_bytes} bytes) but the file holds {data} bytes of frames: "
                             f"exactly {count} {held} frames; its colour layout or bit depth is wrong")


def _read_trailer(path: Path, header: SerHeader, n: int, size: int, count: int,
                  warnings: list[str]) -> np.ndarray:
    """Trailer timestamps as Unix seconds; NaN when the trailer is missing or partial."""
    nan = np.full(n, np.nan)
    if count <= 0 or n != count:
        return nan  # the trailer position is only known when the header count is right
    start = HEADER_SIZE + n * header.frame_bytes
    if size < start + 8 * n:
        return nan
    with open(path, "rb") as fh:
        fh.seek(start)
        ticks = np.frombuffer(fh.read(8 * n), dtype="<i8") & TICK_MASK
    if not np.all(ticks > 0):
        return nan
    seconds = unix_from_ticks(ticks)
    seconds = seconds + _local_time_correction(header, int(ticks[0]))
    if n > 1 and (np.any(np.diff(seconds) < 0) or np.all(seconds == seconds[0])):
        warnings.append("trailer timestamps are out of order or all identical")
    return seconds


def _local_time_correction(header: SerHeader, first_tick: int) -> float:
    """Seconds to add when the trailer was written in local time (it is nearer DateTime than DateTime_UTC)."""
    local, utc = header.date_time & TICK_MASK, header.date_time_utc & TICK_MASK
    if local <= 0 or utc <= 0 or local == utc:
        return 0.0
    if abs(first_tick - local) < abs(first_tick - utc):
        return (utc - local) / TICKS_PER_SECOND
    return 0.0


__all__ = ["SerInfo", "read_ser_info", "UNIX_EPOCH_TICKS"]
