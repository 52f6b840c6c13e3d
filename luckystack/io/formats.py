"""The registry of recording formats: a format is one module that calls :func:`register` once.

A :class:`Format` says which file suffixes it claims, how to probe a recording into a :class:`Probe`
(whose ``source["type"]`` names the format's ``source_type``), and how to read one raw frame of such a
source through a :class:`~luckystack.io.sources.RawReader`. :func:`for_path` picks the format of a path,
:func:`for_source` the reader of a source description. The built-in formats (SER, FITS cubes, videos,
folders of frames) register themselves when first looked up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from luckystack.io.sources import RawReader

BUILTIN = ("luckystack.io.ser", "luckystack.io.fits", "luckystack.io.video", "luckystack.io.folder")


@dataclass
class Probe:
    """What a recording holds, before any user selection."""

    source: dict[str, Any]  # the source description (see luckystack.io.sources)
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


ReadFrame = Callable[["RawReader", int, slice, slice], np.ndarray]
CreateArray = Callable[[tuple[int, ...], str, tuple[int, ...]], Any]
Load = Callable[[Path, dict[str, Any], int, CreateArray, bool, list[str]], tuple[Any, int]]


@dataclass(frozen=True)
class Format:
    """One recording format.

    ``probe(path)`` describes a recording (ValueError with one sentence when it cannot);
    ``read(reader, k, rows, cols)`` returns raw frame ``k`` cropped to ``rows``/``cols`` (uint8, uint16 or
    float32, (H, W) or (H, W, 3) RGB). ``folders``: the format also reads directories.

    ``load``, for formats whose frames must be decoded before they can be read one by one (videos):
    ``load(path, source, count, create, sample_only, notes) -> (raw, decoded)`` decodes up to ``count``
    frames into ``create(shape, dtype, chunks)`` (the Result's ``raw`` array), completes ``source``,
    appends notes for the user, and returns the array and the number of frames it holds;
    ``sample_only`` when they are only looked at (``luckystack info``).
    """

    name: str  # for the user: "SER", "FITS cube", "video"...
    suffixes: tuple[str, ...]  # lower case, with the dot
    probe: Callable[[Path], Probe]
    read: ReadFrame
    source_type: str  # the ``type`` of the source descriptions its probe writes
    folders: bool = False
    load: Load | None = None


_formats: list[Format] = []
_loaded = False


def register(fmt: Format) -> Format:
    """Add ``fmt`` after the built-in formats; ValueError when its source type or a suffix is taken."""
    for f in formats():
        if f.source_type == fmt.source_type:
            raise ValueError(f"a format for source type {fmt.source_type!r} is already registered")
        taken = set(f.suffixes) & set(fmt.suffixes)
        if taken:
            raise ValueError(f"{fmt.name}: {', '.join(sorted(taken))} already read by {f.name}")
        if f.folders and fmt.folders:
            raise ValueError(f"{fmt.name}: folders are already read by {f.name}")
    if any(not s.startswith(".") or s != s.lower() for s in fmt.suffixes):
        raise ValueError(f"{fmt.name}: suffixes must be lower case and start with a dot, not {fmt.suffixes}")
    _formats.append(fmt)
    return fmt


def unregister(source_type: str) -> None:
    """Remove the format of ``source_type`` (for tests and plugins that registered one)."""
    _formats[:] = [f for f in _formats if f.source_type != source_type]


def formats() -> list[Format]:
    """The registered formats, built-in ones first."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN:
            importlib.import_module(module)
    return list(_formats)


def suffixes() -> list[str]:
    """Every suffix some format reads, in registration order."""
    return list(dict.fromkeys(s for f in formats() for s in f.suffixes))


def for_path(path: Path) -> Format:
    """The format that reads ``path`` (a file by its suffix, or a folder); ValueError naming the choices."""
    path = Path(path)
    if path.is_dir():
        for f in formats():
            if f.folders:
                return f
        raise ValueError(f"{path.name}: no registered format reads folders")
    suffix = path.suffix.lower()
    for f in formats():
        if suffix in f.suffixes:
            return f
    raise ValueError(f"{path.name}: unsupported format {suffix or '(no extension)'}; expected a folder of "
                     f"frames or one of {', '.join(suffixes())}")


def for_source(source: dict[str, Any]) -> Format:
    """The format whose probe wrote the source description ``source``."""
    for f in formats():
        if f.source_type == source["type"]:
            return f
    raise ValueError(f"no registered format reads sources of type {source['type']!r}")
