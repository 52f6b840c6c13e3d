"""Reading SER recordings: header checks, frame count repair, trailer timestamps (read-only).

The SER format of :mod:`luckystack.io.formats`: the probe decides where the frames are and what they
mean, and each frame is read in place through a :class:`~luckystack.io.sources.RawReader`. Quirks
handled are listed in the design notes (stacking-anchors §2).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from luckystack.io.formats import Format, Probe, register
from luckystack.io.ser_format import (
    COLOR_IDS, FILE_ID, HEADER_SIZE, HEADER_STRUCT, TICK_MASK, TICKS_PER_SECOND, UNIX_EPOCH_TICKS,
    SerHeader, unix_from_ticks,
)
from luckystack.io.video import GREY_SAMPLES, grey_note

if TYPE_CHECKING:
    from luckystack.io.sources import RawReader

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


def _iso(seconds: float) -> str | None:
    """ISO time of Unix ``seconds``; None past what a date can hold (a garbage timestamp: year > 9999)."""
    try:
        return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):
        return None


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


def _grey_ser(info: SerInfo, path: Path) -> bool:
    """Whether an RGB/BGR SER holds grey frames: :data:`GREY_SAMPLES` frames spread over it (read in
    place) have three identical planes."""
    h = info.header
    dtype = np.dtype("u1" if h.bytes_per_sample == 1 else "<u2")
    frames = np.memmap(path, dtype=dtype, mode="r", offset=HEADER_SIZE, shape=(info.frame_count, h.height, h.width, 3))
    for k in np.unique(np.linspace(0, info.frame_count - 1, GREY_SAMPLES).round().astype(int)):
        f = frames[int(k)]
        if not (np.array_equal(f[..., 0], f[..., 1]) and np.array_equal(f[..., 1], f[..., 2])):
            return False
    return True


def probe_ser(path: Path) -> Probe:
    """The source description of a SER file (see :mod:`luckystack.io.sources`) and what it holds."""
    info = read_ser_info(path)
    h = info.header
    layout = "RGB" if h.layout in ("RGB", "BGR") else h.layout
    grey = layout == "RGB" and _grey_ser(info, path)
    file_dtype = "u1" if h.bytes_per_sample == 1 else ("<u2" if h.little_endian_flag == 0 else ">u2")
    source = {"type": "ser", "offset": HEADER_SIZE, "file_dtype": file_dtype, "frames": info.frame_count,
              "planes": h.planes, "bgr": h.layout == "BGR", "height": h.height, "width": h.width, "flag_byte_order":
              "little" if h.little_endian_flag == 0 else "big"}
    if grey:
        source["grey"] = True
    capture = {"observer": h.observer, "instrument": h.instrument, "telescope": h.telescope,
               "start_utc": info.start_utc, "lu_id": h.lu_id, "color_id_layout": h.layout}
    return Probe(source, "ser", info.frame_count, h.height, h.width, "mono" if grey else layout,
                 "u1" if h.bytes_per_sample == 1 else "u2", h.pixel_depth, info.timestamps, capture,
                 list(info.warnings) + ([grey_note(h.layout)] if grey else []),
                 stored_as=h.layout if grey else None)


def _ser_rows(reader: RawReader, k: int, top: int, bottom: int) -> np.ndarray:
    """Rows ``[top, bottom)`` of SER frame ``k`` in a fresh array: one positioned read from the page
    cache. The trade-off against a memory map: a read costs a copy, but no page faults (about a fifth
    less time per frame), nothing mapped stays resident, and a file cut short under a run is an error
    rather than a SIGBUS."""
    s = reader.source
    dtype = np.dtype(s["file_dtype"])
    row = s["width"] * s["planes"] * dtype.itemsize
    out = np.empty((bottom - top, s["width"]) + ((3,) if s["planes"] == 3 else ()), dtype)
    return reader.read_into(s["offset"] + k * s["height"] * row + top * row, out, f"frame {k}")


def read_ser_frame(reader: RawReader, k: int, ys: slice, xs: slice) -> np.ndarray:
    """Raw SER frame ``k`` cropped to ``ys``/``xs``: RGB order, one plane of a grey colour file."""
    s = reader.source
    if hasattr(os, "preadv"):
        f = _ser_rows(reader, k, ys.start or 0, s["height"] if ys.stop is None else ys.stop)[:, xs]
        return np.ascontiguousarray(f[..., 0]) if s.get("grey") else f[..., ::-1] if s["bgr"] else f
    shape = (s["frames"], s["height"], s["width"]) + ((3,) if s["planes"] == 3 else ())
    f = reader.mapped(s["file_dtype"], s["offset"], shape)[k, ys, xs]
    return np.array(f[..., 0]) if s.get("grey") else f[..., ::-1] if s["bgr"] else f


register(Format("SER", (".ser",), probe_ser, read_ser_frame, "ser"))
