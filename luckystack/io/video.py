"""AVI and other videos through OpenCV, decoded once (decoding is slow) into a chunked array."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".m4v", ".wmv")


def _capture(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"OpenCV cannot open the video {path.name}")
    return cap


def iter_video(path: Path) -> Iterator[np.ndarray]:
    """Decoded frames in order, (H, W, 3) RGB uint8 (as OpenCV delivers them)."""
    cap = _capture(path)
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if frame.ndim == 3 else frame
    finally:
        cap.release()


def probe_video(path: Path) -> dict:
    """Announced frame count, size and fps, and whether the video is grey (all channels equal)."""
    cap = _capture(path)
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        ok, frame = cap.read()
    finally:
        cap.release()
    if not ok:
        raise ValueError(f"the video {path.name} holds no decodable frame")
    mono = frame.ndim == 2 or bool(np.array_equal(frame[..., 0], frame[..., 1])
                                   and np.array_equal(frame[..., 1], frame[..., 2]))
    h, w = frame.shape[:2]
    return {"count": max(count, 1), "height": h, "width": w, "mono": mono, "fps": fps,
            "dtype": str(frame.dtype)}


def decode_video(path: Path, probe: dict,
                 create: Callable[[tuple[int, ...], str, tuple[int, ...]], object]) -> tuple[object, int]:
    """Decode every frame into ``create(shape, dtype, chunks)`` (one frame per chunk); return (array, count).

    The announced frame count sizes the array; a video that ends early reports the frames it has.
    """
    h, w = probe["height"], probe["width"]
    shape = (probe["count"], h, w) if probe["mono"] else (probe["count"], h, w, 3)
    arr = create(shape, probe["dtype"], (1,) + shape[1:])
    n = 0
    for frame in iter_video(path):
        if n == shape[0]:
            break
        arr[n] = frame[..., 0] if probe["mono"] else frame
        n += 1
    return arr, n
