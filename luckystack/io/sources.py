"""Where the raw frames of a recording are, and reading one of them (ROI-cropped, native dtype).

A *source description* is a JSON-able dict (it lives in the reader's Result meta); its ``type`` names
the registered format (:mod:`luckystack.io.formats`) that wrote it and reads its frames:

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
from pathlib import Path
from typing import Any

import numpy as np

from luckystack.io.formats import Probe, for_path, for_source
from luckystack.io.video import grey_note

__all__ = ["Probe", "RawReader", "grey_note", "probe"]

REMAP_BYTES = 16 << 20


def probe(path: Path) -> Probe:
    """Inspect ``path`` (a file or a folder); ValueError with one sentence when it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    if not path.is_dir():
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ValueError(f"cannot open {path.name}: {exc.strerror or exc}") from exc
    return for_path(path).probe(path)


class RawReader:
    """Reads raw frames (by original frame number) of a described source; picklable, reopens lazily.

    The source's format reads each frame, through the services this reader keeps open between frames:
    :meth:`read_into` (positioned reads) and :meth:`mapped` (a memory map remapped as it is read).
    """

    def __init__(self, source: dict[str, Any], path: Path | None, raw: Any = None) -> None:
        self.source = source
        self.path = Path(path) if path is not None else None
        self.raw = raw
        self._read = for_source(source).read
        self._map: np.ndarray | None = None
        self._touched = 0  # bytes read through the current mapping
        self._fd: int | None = None

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

    def read_into(self, offset: int, out: np.ndarray, what: str = "data") -> np.ndarray:
        """Fill ``out`` with the file's bytes at ``offset`` (one positioned read); OSError naming ``what``
        was read when the file ends first."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        view = memoryview(out).cast("B")
        got = os.preadv(self._fd, [view], offset)
        if got != view.nbytes:
            raise OSError(f"{what} of {self.path} is cut short ({got} of {view.nbytes} bytes)")
        return out

    def mapped(self, dtype: np.dtype | str, offset: int, shape: tuple[int, ...]) -> np.ndarray:
        """The file as a read-only memory map of ``shape`` frames, for reading one frame of it."""
        # Mapped pages that were read count in the resident set until unmapped: remap every
        # REMAP_BYTES so streaming a 20 GB recording keeps memory flat.
        if self._map is not None and self._touched > REMAP_BYTES:
            self._map, self._touched = None, 0
        if self._map is None:
            self._map = np.memmap(self.path, dtype=np.dtype(dtype), mode="r", offset=offset, shape=shape)
        self._touched += self._map[0].nbytes
        return self._map

    def frame(self, k: int, roi: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Raw frame ``k``: a view where possible (memory-mapped FITS), else a fresh array."""
        ys, xs = (slice(roi[1], roi[1] + roi[3]), slice(roi[0], roi[0] + roi[2])) if roi else (
            slice(None), slice(None))
        return self._read(self, k, ys, xs)

    def frames(self, ks: np.ndarray, roi: tuple[int, int, int, int] | None = None) -> list[np.ndarray]:
        return [self.frame(int(k), roi) for k in ks]
