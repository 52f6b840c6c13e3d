"""Reference results a stacker must beat, made with perfect knowledge of the truth.

- ``best_frame``: the single frame with the lowest true seeing, globally aligned by its true shift;
- ``mean_all``: the mean of all usable frames, each aligned by its true global shift;
- ``mean_best``: the mean of the best ``fraction`` (by true seeing) of the usable frames, aligned likewise.

Frames are streamed once; only the running sums are held. Colour mosaics are demosaicked bilinearly.
Images are cropped to the area every aligned frame covers; ``crop`` says where that is in the truth.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from luckystack.simulate.render import CHANNELS
from luckystack.simulate.truth import Truth

_KERNEL = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4.0


def demosaic(mosaic: np.ndarray, pattern: str) -> np.ndarray:
    """(H, W, 3) RGB from a Bayer mosaic by normalised bilinear interpolation of each colour's samples."""
    mosaic = np.asarray(mosaic, np.float32)
    out = np.empty(mosaic.shape + (3,), np.float32)
    for c in range(3):
        mask = np.zeros(mosaic.shape, np.float32)
        for phase, letter in enumerate(pattern):
            if CHANNELS[letter] == c:
                mask[phase // 2::2, phase % 2::2] = 1.0
        num = cv2.filter2D(mosaic * mask, -1, _KERNEL, borderType=cv2.BORDER_REFLECT)
        den = cv2.filter2D(mask, -1, _KERNEL, borderType=cv2.BORDER_REFLECT)
        out[..., c] = num / den
    return out


def to_image(frame: np.ndarray, layout: str, full_scale: int) -> np.ndarray:
    """A recorded frame as an (H, W, C) float32 image on the 0..1 scale."""
    img = np.asarray(frame, np.float32) / np.float32(full_scale)
    if layout == "mono":
        return img[..., None]
    if layout == "RGB":
        return img
    return demosaic(img, layout)


def align(image: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``aligned(p) = image(p + shift)`` (the contract's convention), cubic, per channel."""
    m = np.array([[1, 0, shift[1]], [0, 1, shift[0]]], np.float64)
    planes = [cv2.warpAffine(np.ascontiguousarray(image[..., c]), m, image.shape[1::-1],
                             flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
              for c in range(image.shape[2])]
    return np.stack(planes, axis=-1)


@dataclass
class Baselines:
    best_frame: np.ndarray
    mean_all: np.ndarray
    mean_best: np.ndarray
    crop: tuple[int, int, int, int]  # y0, x0, height, width in truth coordinates
    best_index: int
    best_count: int

    def items(self) -> list[tuple[str, np.ndarray]]:
        return [("best_frame", self.best_frame), ("mean_all", self.mean_all), ("mean_best", self.mean_best)]


def baselines(frames: Iterable[np.ndarray], truth: Truth, fraction: float = 0.1) -> Baselines:
    """The three baselines from the recording's ``frames`` (in order) and its ``truth``."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    usable = np.flatnonzero(truth.usable)
    if len(usable) == 0:
        raise ValueError("the recording has no usable frames")
    order = usable[np.argsort(truth.seeing[usable], kind="stable")]
    best = set(order[:max(1, int(round(fraction * len(usable))))].tolist())
    layout = truth.params.get("layout", "mono")
    sum_all = sum_best = best_frame = None
    for i, frame in enumerate(frames):
        if not truth.usable[i]:
            continue
        img = align(to_image(frame, layout, truth.full_scale), truth.shifts[i])
        sum_all = img.astype(np.float64) if sum_all is None else sum_all + img
        if i in best:
            sum_best = img.astype(np.float64) if sum_best is None else sum_best + img
        if i == order[0]:
            best_frame = img
    if best_frame is None:
        raise ValueError("fewer frames than the truth describes")
    m = int(np.ceil(np.abs(truth.shifts[usable]).max())) + 3
    h, w = best_frame.shape[:2]
    if h <= 2 * m + 16 or w <= 2 * m + 16:
        m = 0
    box = (slice(m, h - m), slice(m, w - m))
    return Baselines(best_frame[box], (sum_all / len(usable)).astype(np.float32)[box],
                     (sum_best / len(best)).astype(np.float32)[box], (m, m, h - 2 * m, w - 2 * m),
                     int(order[0]), len(best))
