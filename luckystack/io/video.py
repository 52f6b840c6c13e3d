"""AVI and other videos through OpenCV, decoded once (decoding is slow) into a chunked array.

Many capture programs store a mono camera's video as three equal colour channels (BGR). Such a video is
read as grey, decided from a few frames spread over it when it is opened. Lossy colour coding may leave
the channels of a grey frame a few levels apart (:data:`GREY_TOLERANCE`); the grey is the frame's
luma, which those codecs carry exactly (and which is the channels' value where they are equal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from typing import TYPE_CHECKING

import cv2
import numpy as np

from luckystack.io.formats import CreateArray, Format, Probe, register

if TYPE_CHECKING:
    from luckystack.io.sources import RawReader

VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".m4v", ".wmv")
GREY_TOLERANCE = 4  # levels (of 8 bits) by which a grey frame's channels may differ after lossy coding
GREY_OUTLIERS = 1e-3  # fraction of a grey frame's pixels allowed beyond the tolerance (codec outliers)
GREY_SAMPLES = 4  # frames sampled when a video is opened
CHECK_ROW_STEP = 4  # every decoded frame of a grey video is checked again on every 4th row


def _capture(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"OpenCV cannot open the video {path.name}")
    return cap


def channel_spread(bgr: np.ndarray, row_step: int = 1) -> tuple[int, float]:
    """(largest difference between a frame's colour channels, the fraction of pixels whose channels
    differ by more than :data:`GREY_TOLERANCE`), on every ``row_step``-th row; (0, 0.0) for grey."""
    if bgr.ndim == 2:
        return 0, 0.0
    rows = bgr[::row_step]
    d = cv2.max(cv2.absdiff(rows[..., 0], rows[..., 1]), cv2.absdiff(rows[..., 2], rows[..., 1]))
    tolerance = GREY_TOLERANCE * (257 if d.dtype == np.uint16 else 1)
    return int(d.max()), cv2.countNonZero(cv2.compare(d, tolerance, cv2.CMP_GT)) / d.size


def _is_grey(spread: tuple[int, float]) -> bool:
    return spread[1] <= GREY_OUTLIERS


def _grey(frame: np.ndarray) -> np.ndarray:
    """The luma of a decoded BGR frame: its value exactly where the channels are equal."""
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def iter_video(path: Path, grey: bool = False) -> Iterator[np.ndarray]:
    """Decoded frames in order: (H, W, 3) RGB uint8 (as OpenCV delivers them), or (H, W) grey."""
    cap = _capture(path)
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            if grey:
                yield _grey(frame)
            else:
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if frame.ndim == 3 else frame
    finally:
        cap.release()


def probe_video(path: Path) -> dict:
    """Announced frame count, size and fps, and whether the video is grey: its first frame and up to
    :data:`GREY_SAMPLES` frames spread over it have equal channels (:data:`GREY_TOLERANCE`); ``spread``
    is the largest channel difference seen, ``stored_channels`` 3 for grey stored as colour."""
    cap = _capture(path)
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        ok, frame = cap.read()
        if not ok:
            raise ValueError(f"the video {path.name} holds no decodable frame")
        spread = channel_spread(frame)
        for k in np.unique(np.linspace(0, max(count - 1, 0), GREY_SAMPLES).round().astype(int))[1:]:
            if not _is_grey(spread) or not cap.set(cv2.CAP_PROP_POS_FRAMES, int(k)):
                break
            ok, sample = cap.read()
            if ok:
                more = channel_spread(sample)
                spread = (max(spread[0], more[0]), max(spread[1], more[1]))
    finally:
        cap.release()
    h, w = frame.shape[:2]
    return {"count": max(count, 1), "height": h, "width": w, "mono": _is_grey(spread), "fps": fps,
            "dtype": str(frame.dtype), "stored_channels": 1 if frame.ndim == 2 else 3, "spread": spread[0]}


def decode_video(path: Path, probe: dict,
                 create: Callable[[tuple[int, ...], str, tuple[int, ...]], object]) -> tuple[object, int, float]:
    """Decode every frame into ``create(shape, dtype, chunks)`` (one frame per chunk); return (array, count,
    the largest fraction of a grey video's frame whose channels differ beyond the tolerance).

    The announced frame count sizes the array; a video that ends early reports the frames it has. A
    video probed as grey is stored as its luma.
    """
    h, w = probe["height"], probe["width"]
    mono = probe["mono"]
    shape = (probe["count"], h, w) if mono else (probe["count"], h, w, 3)
    arr = create(shape, probe["dtype"], (1,) + shape[1:])
    n, spread = 0, (0, 0.0)
    cap = _capture(path)
    try:
        while n < shape[0]:
            ok, frame = cap.read()
            if not ok:
                break
            if mono:
                more = channel_spread(frame, CHECK_ROW_STEP)
                spread = (max(spread[0], more[0]), max(spread[1], more[1]))
                arr[n] = _grey(frame)
            else:
                arr[n] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if frame.ndim == 3 else frame
            n += 1
    finally:
        cap.release()
    return arr, n, spread[1]


def grey_note(stored: str, spread: int = 0) -> str:
    """The note that a grey recording stored as three colour channels is read as mono."""
    equal = f"channels at most {spread} levels apart, as lossy coding leaves them" if spread else "equal channels"
    return f"grey frames stored as {stored} ({equal}): read and stacked as mono"


def probe_video_source(path: Path) -> Probe:
    """A video's source description: frames to be decoded into the Result's ``raw`` array."""
    v = probe_video(path)
    source = {"type": "array", "video": v}
    notes = []
    if v["mono"] and v["stored_channels"] == 3:
        notes.append(grey_note("BGR", v["spread"]))
    return Probe(source, "avi", v["count"], v["height"], v["width"], "mono" if v["mono"] else "RGB",
                 "u1" if v["dtype"] == "uint8" else "u2", 8 if v["dtype"] == "uint8" else 16,
                 np.full(v["count"], np.nan), warnings=notes, fps=v["fps"] or None,
                 stored_as="BGR" if v["mono"] and v["stored_channels"] == 3 else None)


def read_decoded_frame(reader: RawReader, k: int, ys: slice, xs: slice) -> np.ndarray:
    """Frame ``k`` of a decoded video (the reader's ``raw`` array), cropped."""
    return np.asarray(reader.raw[k, ys, xs])


def load_video(path: Path, source: dict, count: int, create: CreateArray, sample_only: bool,
               notes: list[str]) -> tuple[object, int]:
    """Decode up to ``count`` frames of a probed video into ``create``'s array: (array, frames decoded)."""
    raw, decoded, outliers = decode_video(Path(path), {**source.pop("video"), "count": count}, create)
    if not sample_only and outliers > GREY_OUTLIERS:
        notes.append(f"up to {100 * outliers:.1f} % of a frame's pixels have unequal channels, more than "
                     "in the frames sampled: every frame was read as grey (its luma)")
    if decoded == 0:
        raise ValueError(f"{Path(path).name}: no frame could be decoded")
    if not sample_only and decoded < count:
        notes.append(f"the video announces {count} frames but only {decoded} could be decoded")
    source["frames"] = decoded
    return raw, decoded


register(Format("video", VIDEO_SUFFIXES, probe_video_source, read_decoded_frame, "array", load=load_video))
