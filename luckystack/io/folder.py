"""Folders of single-frame images (TIFF, PNG, FITS), in natural order (frame2 before frame10)."""

from __future__ import annotations

import re
import struct
from collections import Counter
from pathlib import Path

from typing import TYPE_CHECKING

import cv2
import numpy as np
import tifffile

from luckystack.io.fits import fits_image_shape, read_fits_frame
from luckystack.io.formats import Format, Probe, register

if TYPE_CHECKING:
    from luckystack.io.sources import RawReader

KINDS = {".tif": "tiff", ".tiff": "tiff", ".png": "png", ".fits": "fits", ".fit": "fits", ".fts": "fits"}


def natural_key(name: str) -> list:
    """Sort key that orders embedded numbers by value: frame2 < frame10."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_frames(folder: Path) -> tuple[str, list[str]]:
    """(kind, file names in natural order) of the image files in ``folder``; other files are ignored."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in KINDS]
    if not files:
        raise ValueError(f"folder {folder} holds no TIFF, PNG or FITS images")
    kinds = Counter(KINDS[p.suffix.lower()] for p in files)
    if len(kinds) > 1:
        raise ValueError(f"folder {folder} mixes image formats ({', '.join(sorted(kinds))}); keep one")
    names = sorted((p.name for p in files), key=natural_key)
    return next(iter(kinds)), names


def image_shape(path: Path, kind: str) -> tuple[int, ...]:
    """Shape (H, W) or (H, W, C) of one image, read from its header where the format allows."""
    try:
        if kind == "tiff":
            with tifffile.TiffFile(path) as tf:
                return tuple(tf.pages[0].shape)
        if kind == "png":
            with open(path, "rb") as fh:
                head = fh.read(26)
            if head[:8] != b"\x89PNG\r\n\x1a\n":
                raise ValueError("not a PNG")
            w, h, _, colour = struct.unpack(">IIBB", head[16:26])
            return (h, w) if colour in (0, 4) else (h, w, 3)
        return fits_image_shape(path)
    except (OSError, ValueError, struct.error, tifffile.TiffFileError) as exc:
        raise ValueError(f"cannot read image {path.name}: {exc}") from exc


def check_same_shape(folder: Path, kind: str, names: list[str]) -> tuple[int, ...]:
    """The common shape of all images; ValueError naming the first image that differs."""
    first = image_shape(folder / names[0], kind)
    for name in names[1:]:
        shape = image_shape(folder / name, kind)
        if shape != first:
            raise ValueError(f"folder {folder} holds images of different sizes: {names[0]} is "
                             f"{_dims(first)}, {name} is {_dims(shape)}")
    return first


def _dims(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]}" + (f"x{shape[2]}" if len(shape) == 3 else "")


def read_image(path: Path, kind: str) -> np.ndarray:
    """One image as a native array, (H, W) or (H, W, 3) in RGB order."""
    if kind == "tiff":
        img = tifffile.imread(path)
    elif kind == "png":
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise ValueError(f"cannot decode PNG {path.name}")
        if img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    else:
        img = read_fits_frame(path)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    return img


def probe_folder(path: Path) -> Probe:
    """A folder of frames (or one image file, read as a one-frame recording): names listed, read lazily."""
    folder, only = (path, None) if path.is_dir() else (path.parent, path.name)
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


def read_folder_frame(reader: RawReader, k: int, ys: slice, xs: slice) -> np.ndarray:
    """Frame ``k`` (its file, read now) of a folder of frames, cropped."""
    s = reader.source
    folder = Path(s["folder"]) if s.get("folder") else reader.path
    return read_image(folder / s["names"][k], s["kind"])[ys, xs]


# single FITS files are read as one-frame cubes by the FITS format
register(Format("folder of frames", (".tif", ".tiff", ".png"), probe_folder, read_folder_frame, "files",
                folders=True))
