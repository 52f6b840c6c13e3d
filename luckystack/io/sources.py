"""Where the raw frames of a recording are, and reading one of them (ROI-cropped, native dtype).

A *source description* is a JSON-able dict (it lives in the reader's Result meta):

* ``ser``   — frames read in place, one positioned read of the ROI's rows each (memory-mapped where the
  OS has no ``preadv``): ``offset``, ``file_dtype`` ("u1", "<u2", ">u2"), ``frames``; ``grey`` when an
  RGB/BGR file holds three equal planes (one is read).
* ``fits``  — a memory-mapped FITS cube: ``offset``, ``file_dtype`` (big-endian), ``sample``, scaling.
* ``files`` — a folder of single-frame images: ``kind`` and ``names`` in natural order, read lazily.
* ``array`` — frames decoded into an array of the Result (videos): read from ``arrays["raw"]``.

Raw frames come back as uint8/uint16/float32 (H, W) or (H, W, 3) in RGB order, and only the ROI is
touched. Files are opened read-only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from luckystack.io.fits import decode_fits_samples, probe_fits_cube
from luckystack.io.folder import KINDS, check_same_shape, list_frames, read_image
from luckystack.io.ser import SerInfo, read_ser_info
from luckystack.io.video import GREY_SAMPLES, VIDEO_SUFFIXES, probe_video

FITS_SUFFIXES = (".fits", ".fit", ".fts")
REMAP_BYTES = 16 << 20


@dataclass
class Probe:
    """What a recording holds, before any user selection."""

    source: dict[str, Any]  # the source description (see module docstring)
    format: str  # "ser", "fits", "tiff", "png", "avi"...
    count: int
    height: int
    width: int
    layout: str  # "mono", a Bayer pattern, "RGB"
    sample: str  # "u1", "u2" or "f4": native sample type after decoding
    declared_depth: int
    timestamps: np.ndarray
    capture: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    fps: float | None = None
    stored_as: str | None = None  # "BGR"/"RGB" for grey frames stored as three equal channels


def probe(path: Path) -> Probe:
    """Inspect ``path`` (a file or a folder); ValueError with one sentence when it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    if path.is_dir():
        return _probe_folder(path)
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ValueError(f"cannot open {path.name}: {exc.strerror or exc}") from exc
    suffix = path.suffix.lower()
    if suffix == ".ser":
        return _probe_ser(path)
    if suffix in FITS_SUFFIXES:
        return _probe_fits(path)
    if suffix in VIDEO_SUFFIXES:
        return _probe_video(path)
    if suffix in KINDS:
        return _probe_folder(path.parent, only=path.name)
    raise ValueError(f"{path.name}: unsupported format {suffix or '(no extension)'}; "
                     "expected SER, AVI, FITS or a folder of TIFF/PNG/FITS frames")


def _probe_ser(path: Path) -> Probe:
    info = read_ser_info(path)
    h = info.header
    layout = "RGB" if h.layout in ("RGB", "BGR") else h.layout
    grey = layout == "RGB" and _grey_ser(info, path)
    file_dtype = "u1" if h.bytes_per_sample == 1 else ("<u2" if h.little_endian_flag == 0 else ">u2")
    source = {"type": "ser", "offset": 178, "file_dtype": file_dtype, "frames": info.frame_count,
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


def _probe_fits(path: Path) -> Probe:
    d = probe_fits_cube(path)
    shape = d["shape"]
    source = {"type": "fits", "offset": d["offset"], "file_dtype": d["file_dtype"], "sample": d["sample"],
              "bzero": d["bzero"], "bscale": d["bscale"], "blank": d["blank"], "frames": d["count"],
              "shape": shape}
    layout = d["bayer"] if d["bayer"] in ("RGGB", "GRBG", "GBRG", "BGGR") else "mono"
    meta = d["meta"]
    capture = {"observer": meta["OBSERVER"], "instrument": meta["INSTRUME"], "telescope": meta["TELESCOP"],
               "start_utc": meta["DATE-OBS"] or None}
    depth = {"u1": 8, "u2": 16, "f4": 32}[d["sample"]]
    return Probe(source, "fits", d["count"], shape[0], shape[1], layout, d["sample"], depth,
                 np.full(d["count"], np.nan), capture)


def _probe_folder(folder: Path, only: str | None = None) -> Probe:
    kind, names = (KINDS[Path(only).suffix.lower()], [only]) if only else list_frames(folder)
    shape = check_same_shape(folder, kind, names)
    first = read_image(folder / names[0], kind)
    if first.shape != shape:
        shape = first.shape
    sample = {"uint8": "u1", "uint16": "u2"}.get(str(first.dtype), "f4")
    source = {"type": "files", "folder": str(folder) if only else None, "kind": kind, "names": names}
    layout = "RGB" if len(shape) == 3 else "mono"
    depth = {"u1": 8, "u2": 16, "f4": 32}[sample]
    return Probe(source, kind, len(names), shape[0], shape[1], layout, sample, depth,
                 np.full(len(names), np.nan))


def _probe_video(path: Path) -> Probe:
    v = probe_video(path)
    source = {"type": "array", "video": v}
    notes = []
    if v["mono"] and v["stored_channels"] == 3:
        notes.append(grey_note("BGR", v["spread"]))
    return Probe(source, "avi", v["count"], v["height"], v["width"], "mono" if v["mono"] else "RGB",
                 "u1" if v["dtype"] == "uint8" else "u2", 8 if v["dtype"] == "uint8" else 16,
                 np.full(v["count"], np.nan), warnings=notes, fps=v["fps"] or None,
                 stored_as="BGR" if v["mono"] and v["stored_channels"] == 3 else None)


def grey_note(stored: str, spread: int = 0) -> str:
    """The note that a grey recording stored as three colour channels is read as mono."""
    equal = f"channels at most {spread} levels apart, as lossy coding leaves them" if spread else "equal channels"
    return f"grey frames stored as {stored} ({equal}): read and stacked as mono"


def _grey_ser(info: SerInfo, path: Path) -> bool:
    """Whether an RGB/BGR SER holds grey frames: :data:`GREY_SAMPLES` frames spread over it (read in
    place) have three identical planes."""
    h = info.header
    dtype = np.dtype("u1" if h.bytes_per_sample == 1 else "<u2")
    frames = np.memmap(path, dtype=dtype, mode="r", offset=178, shape=(info.frame_count, h.height, h.width, 3))
    for k in np.unique(np.linspace(0, info.frame_count - 1, GREY_SAMPLES).round().astype(int)):
        f = frames[int(k)]
        if not (np.array_equal(f[..., 0], f[..., 1]) and np.array_equal(f[..., 1], f[..., 2])):
            return False
    return True


class RawReader:
    """Reads raw frames (by original frame number) of a described source; picklable, reopens lazily."""

    def __init__(self, source: dict[str, Any], path: Path | None, raw: Any = None) -> None:
        self.source = source
        self.path = Path(path) if path is not None else None
        self.raw = raw
        self._map: np.ndarray | None = None
        self._touched = 0  # bytes read through the current mapping
        self._fd: int | None = None  # SER files are read with positioned reads where the OS has them

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_map"] = None
        state["_fd"] = None
        return state

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            try:
                os.close(self._fd)
            except (OSError, TypeError, AttributeError):  # at interpreter exit ``os`` may be gone
                pass
            self._fd = None

    def _ser_rows(self, k: int, top: int, bottom: int) -> np.ndarray:
        """Rows ``[top, bottom)`` of SER frame ``k`` in a fresh array: one positioned read from the page
        cache. The trade-off against a memory map: a read costs a copy, but no page faults (about a fifth
        less time per frame), nothing mapped stays resident, and a file cut short under a run is an error
        rather than a SIGBUS."""
        s = self.source
        dtype = np.dtype(s["file_dtype"])
        row = s["width"] * s["planes"] * dtype.itemsize
        out = np.empty((bottom - top, s["width"]) + ((3,) if s["planes"] == 3 else ()), dtype)
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        view = memoryview(out).cast("B")
        got = os.preadv(self._fd, [view], s["offset"] + k * s["height"] * row + top * row)
        if got != view.nbytes:
            raise OSError(f"frame {k} of {self.path} is cut short ({got} of {view.nbytes} bytes)")
        return out

    def _memmap(self) -> np.ndarray:
        # Mapped pages that were read count in the resident set until unmapped: remap every
        # REMAP_BYTES so streaming a 20 GB recording keeps memory flat.
        if self._map is not None and self._touched > REMAP_BYTES:
            self._map, self._touched = None, 0
        if self._map is None:
            s = self.source
            if s["type"] == "ser":
                h, w = s["height"], s["width"]
                shape = (s["frames"], h, w) + ((3,) if s["planes"] == 3 else ())
            else:
                shape = (s["frames"], *s["shape"])
            self._map = np.memmap(self.path, dtype=np.dtype(s["file_dtype"]), mode="r",
                                  offset=s["offset"], shape=shape)
        return self._map

    def frame(self, k: int, roi: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Raw frame ``k``: a view where possible (memory-mapped FITS), else a fresh array."""
        s = self.source
        ys, xs = (slice(roi[1], roi[1] + roi[3]), slice(roi[0], roi[0] + roi[2])) if roi else (
            slice(None), slice(None))
        t = s["type"]
        if t == "ser" and hasattr(os, "preadv"):
            f = self._ser_rows(k, ys.start or 0, s["height"] if ys.stop is None else ys.stop)[:, xs]
            return np.ascontiguousarray(f[..., 0]) if s.get("grey") else f[..., ::-1] if s["bgr"] else f
        if t in ("ser", "fits"):
            mm = self._memmap()
            self._touched += mm[0].nbytes
        if t == "ser":
            f = mm[k, ys, xs]
            return np.array(f[..., 0]) if s.get("grey") else f[..., ::-1] if s["bgr"] else f
        if t == "fits":
            return decode_fits_samples(mm[k, ys, xs], s)
        if t == "array":
            return np.asarray(self.raw[k, ys, xs])
        folder = Path(s["folder"]) if s.get("folder") else self.path
        return read_image(folder / s["names"][k], s["kind"])[ys, xs]

    def frames(self, ks: np.ndarray, roi: tuple[int, int, int, int] | None = None) -> list[np.ndarray]:
        return [self.frame(int(k), roi) for k in ks]
