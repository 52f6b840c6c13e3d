"""The reader's description of a recording: the probe plus the user's selection and the decisions
taken from the data (byte order, real bit depth, layout): what :func:`luckystack.io.stream.open_stream`
opens a frame stream from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from luckystack.imaging.debayer import PATTERNS, shift_pattern
from luckystack.io.formats import for_source
from luckystack.io.sample_depth import DepthInfo, detect_bit_depth, detect_byte_order, float_scale
from luckystack.io.sources import Probe, RawReader, probe

SAMPLE_FRAMES = 4  # frames inspected for byte order and bit depth
SAMPLE_ROWS = 256  # rows per inspected frame, evenly spaced


def select_frames(count: int, first: int = 0, last: int | None = None, step: int = 1,
                  drop: Sequence[int] = (), allow_empty: bool = False) -> np.ndarray:
    """Original frame numbers kept: first..last (inclusive) every ``step``, minus ``drop``."""
    last = count - 1 if last is None else last
    if not 0 <= first < count:
        raise ValueError(f"first frame {first} is outside the recording's {count} frames")
    if last < first:
        raise ValueError(f"last frame {last} comes before first frame {first}")
    idx = np.arange(first, min(last, count - 1) + 1, max(1, step), dtype=np.int64)
    idx = idx[~np.isin(idx, np.asarray(list(drop), dtype=np.int64))]
    if idx.size == 0 and not allow_empty:
        raise ValueError("the frame selection is empty")
    return idx


def _check_roi(roi: Sequence[int] | None, width: int, height: int) -> list[int]:
    if roi is None:
        return [0, 0, width, height]
    x, y, w, h = (int(v) for v in roi)
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise ValueError(f"ROI {x},{y} {w}x{h} does not fit in the {width}x{height} frame")
    return [x, y, w, h]


def _samples(reader: RawReader, count: int) -> np.ndarray:
    ks = np.unique(np.linspace(0, count - 1, min(SAMPLE_FRAMES, count)).round().astype(int))
    out = []
    for k in ks:
        f = reader.frame(int(k))
        rows = np.unique(np.linspace(0, f.shape[0] - 1, min(SAMPLE_ROWS, f.shape[0])).astype(int))
        out.append(np.asarray(f[rows]))
    return np.stack(out)


def describe(path: Path, *, first: int = 0, last: int | None = None, step: int = 1,
             drop: Sequence[int] = (), roi: Sequence[int] | None = None, byte_order: str = "auto",
             bit_depth: int | None = None, debayer: str = "auto", debayer_method: str = "bilinear",
             create: Callable[[tuple[int, ...], str, tuple[int, ...]], Any] | None = None,
             decode: bool = True) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(meta, arrays, notes) describing the selected frames of ``path``; ValueError for bad input.

    ``create(shape, dtype, chunks)`` makes the array that videos are decoded into (``ctx.create_array``);
    without it they are decoded into memory. ``decode=False`` decodes only a video's first
    :data:`SAMPLE_FRAMES` frames and keeps its announced frame count: a description, not frames to
    stack (``luckystack info``). ``notes`` are the warnings and decisions to show the user.
    """
    p = probe(path)
    notes = list(p.warnings)
    arrays: dict[str, Any] = {}
    source = dict(p.source)
    count = sampled = p.count
    load = for_source(source).load
    if load is not None:
        zeros = lambda shape, dtype, chunks: np.zeros(shape, dtype)  # noqa: E731
        if decode:
            arrays["raw"], count = load(Path(path), source, count, create or zeros, False, notes)
            sampled = count
        else:  # a few frames to look at; the announced count stays
            arrays["raw"], sampled = load(Path(path), source, min(count, SAMPLE_FRAMES), zeros, True, notes)
    reader = RawReader(source, path, arrays.get("raw"))
    samples = _samples(reader, sampled)
    order = "native"
    if source.get("file_dtype") in ("<u2", ">u2"):
        # samples hold values decoded with the flag's byte order (np.stack makes them native)
        little = samples if source["file_dtype"] == "<u2" else samples.byteswap()
        order = _byte_order(source, little, byte_order, p.layout, notes)
        samples = little if order == "little" else little.byteswap()
    depth, scale = _depth(p, samples, bit_depth, notes)
    layout = _layout(p.layout, debayer, roi, notes)
    roi_list = _check_roi(roi, p.width, p.height)
    idx = select_frames(count, first, last, step, drop)
    ts = np.asarray(p.timestamps, np.float64)
    arrays["frame_index"] = idx
    arrays["timestamp"] = ts[idx] if ts.size == count else np.full(idx.size, np.nan)
    fps = _fps(ts) or p.fps
    meta = {
        "format": p.format, "source": source, "byte_order": order, "sample": p.sample,
        "declared_depth": p.declared_depth, "bit_depth": depth.bit_depth, "bit_shift": depth.shift,
        "bit_depth_detected": depth.detected, "scale": scale, "full_width": p.width,
        "full_height": p.height, "roi": roi_list, "width": roi_list[2], "height": roi_list[3],
        "source_layout": p.layout, "stored_as": p.stored_as, "layout": layout, "channels": 1 if layout == "mono" else 3,
        "debayer_method": debayer_method, "recording_frames": count, "count": int(idx.size),
        "frame_rate": fps, "capture": p.capture, "notes": notes,
    }
    if p.sample == "f4":
        arrays["nonfinite"] = _count_nonfinite(reader, idx, roi_list if roi is not None else None)
        bad = arrays["nonfinite"]
        if bad.sum() == idx.size * roi_list[2] * roi_list[3]:
            raise ValueError(f"{Path(path).name}: every pixel of the selected frames is NaN or infinite")
        if bad.any():
            what = "NaN, infinity or FITS BLANK" if source.get("blank") is not None else "NaN or infinity"
            notes.append(f"{int(bad.sum())} non-finite pixels ({what}) in {int(np.count_nonzero(bad))} "
                         f"of {idx.size} frames were left out: each was filled from its finite neighbours")
    return meta, arrays, notes


def _count_nonfinite(reader: RawReader, idx: np.ndarray, roi: Sequence[int] | None) -> np.ndarray:
    """(N,) int64 pixels with a NaN/inf sample per selected frame of a float recording (one pass)."""
    box = tuple(roi) if roi is not None else None
    counts = np.zeros(idx.size, np.int64)
    for n, k in enumerate(idx):
        bad = ~np.isfinite(reader.frame(int(k), box))
        counts[n] = np.count_nonzero(bad if bad.ndim == 2 else bad.any(axis=2))
    return counts


def _byte_order(source: dict, little: np.ndarray, wanted: str, layout: str, notes: list[str]) -> str:
    """Decide the byte order of 16-bit samples (``little``: the file bytes read as little-endian)."""
    flag = source.get("flag_byte_order", "little")
    if wanted not in ("auto", "little", "big"):
        raise ValueError(f"byte_order must be auto, little or big, not {wanted!r}")
    if wanted == "auto":
        order, decided = detect_byte_order(little, flag, 2 if layout in PATTERNS else 1)
        if decided and order != flag:
            notes.append(f"16-bit samples are {order}-endian although the header flag says {flag}-endian; "
                         f"reading them as {order}-endian (set byte_order to override)")
    else:
        order = wanted
    source["file_dtype"] = "<u2" if order == "little" else ">u2"
    return order


def _depth(p: Probe, samples: np.ndarray, wanted: int | None, notes: list[str]) -> tuple[DepthInfo, float]:
    if p.sample == "f4":
        d, scale = float_scale(samples)
        return DepthInfo(d, 0, True), scale
    container = 8 if p.sample == "u1" else 16
    if wanted is not None:
        if not 1 <= wanted <= container:
            raise ValueError(f"bit_depth {wanted} does not fit {container}-bit samples")
        info = DepthInfo(wanted, 0, False)
    else:
        info = detect_bit_depth(samples, container, p.declared_depth)
        if info.detected and (info.bit_depth != p.declared_depth or info.shift):
            align = f"in the high bits (shifted by {info.shift})" if info.shift else "in the low bits"
            notes.append(f"samples declared {p.declared_depth}-bit hold {info.bit_depth}-bit data {align}; "
                         f"1.0 = {2 ** info.bit_depth - 1} (set bit_depth to override)")
    return info, info.scale


def _layout(source_layout: str, wanted: str, roi: Sequence[int] | None, notes: list[str]) -> str:
    if wanted == "none":
        return "mono" if source_layout in PATTERNS else source_layout
    if wanted != "auto":
        if wanted not in PATTERNS:
            raise ValueError(f"debayer must be auto, none or one of {', '.join(PATTERNS)}, not {wanted!r}")
        if source_layout == "RGB":
            raise ValueError("a debayer pattern was given but the recording is already RGB")
        pattern = wanted
    elif source_layout in PATTERNS:
        pattern = source_layout
    else:
        return source_layout
    if roi is not None:
        shifted = shift_pattern(pattern, int(roi[0]), int(roi[1]))
        if shifted != pattern:
            notes.append(f"the ROI starts at an odd offset: Bayer pattern {pattern} becomes {shifted}")
        pattern = shifted
    return pattern


def _fps(ts: np.ndarray) -> float | None:
    ok = ts[np.isfinite(ts)]
    if ok.size < 2 or ok[-1] <= ok[0]:
        return None
    return float((ok.size - 1) / (ok[-1] - ok[0]))
