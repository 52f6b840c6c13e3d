"""Contact sheets and display stretches: results side by side, the same crop and the same stretch."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

LABEL_HEIGHT = 22


def common_stretch(images: Sequence[np.ndarray], low: float = 0.1, high: float = 99.9) -> tuple[float, float]:
    """One black and white point for all ``images`` (percentiles of their pooled pixels)."""
    sample = np.concatenate([np.asarray(im, dtype=np.float32).ravel()[::7] for im in images])
    lo, hi = np.percentile(sample, [low, high])
    return float(lo), float(max(hi, lo + 1e-6))


def to_display(image: np.ndarray, black: float, white: float) -> np.ndarray:
    """An (H, W, 3) uint8 RGB rendering of an (H, W) or (H, W, C) float image between two points."""
    shown = display_pixels(image, black, white)
    return np.repeat(shown[..., None], 3, axis=2) if shown.ndim == 2 else shown


def display_pixels(image: np.ndarray, black: float, white: float) -> np.ndarray:
    """:func:`to_display`'s pixels without the repeat: (H, W) uint8 grey for a mono image, (H, W, 3) RGB
    for colour (a grey PNG is a third of the bytes to encode)."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    scaled = np.subtract(img, black, dtype=np.float32)
    np.divide(scaled, white - black, out=scaled)
    np.clip(scaled, 0.0, 1.0, out=scaled)
    np.multiply(scaled, 255.0, out=scaled)
    return np.round(scaled, out=scaled).astype(np.uint8)


def fit_common(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Centre-crop every image to the smallest common size (drizzled results are resized first)."""
    base_h = min(im.shape[0] for im in images)
    out = []
    for im in images:
        if im.shape[0] > base_h * 1.2:  # a drizzled result: compare at the common scale
            scale = base_h / im.shape[0]
            im = cv2.resize(im, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            if im.ndim == 2:
                im = im[..., None]
        out.append(im)
    h = min(im.shape[0] for im in out)
    w = min(im.shape[1] for im in out)
    return [im[(im.shape[0] - h) // 2:(im.shape[0] - h) // 2 + h,
               (im.shape[1] - w) // 2:(im.shape[1] - w) // 2 + w] for im in out]


def contact_sheet(images: Sequence[np.ndarray], labels: Sequence[str], columns: int | None = None,
                  tile: int = 320) -> np.ndarray:
    """A grid of labelled tiles (uint8 RGB), each image shown with one common stretch.

    ``tile`` is the largest side of a tile in pixels; images are centre-cropped to a common size.
    """
    if len(images) != len(labels) or not images:
        raise ValueError("contact_sheet needs one label per image and at least one image")
    fitted = [np.asarray(im, dtype=np.float32) for im in fit_common(images)]
    black, white = common_stretch(fitted)
    columns = columns or int(np.ceil(np.sqrt(len(fitted))))
    rows = int(np.ceil(len(fitted) / columns))
    h, w = fitted[0].shape[:2]
    scale = min(1.0, tile / max(h, w))
    th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    sheet = np.full((rows * (th + LABEL_HEIGHT), columns * tw, 3), 32, dtype=np.uint8)
    for k, (img, label) in enumerate(zip(fitted, labels, strict=True)):
        r, c = divmod(k, columns)
        y, x = r * (th + LABEL_HEIGHT), c * tw
        disp = cv2.resize(to_display(img, black, white), (tw, th), interpolation=cv2.INTER_AREA)
        sheet[y:y + th, x:x + tw] = disp
        cv2.putText(sheet, label[: max(4, tw // 8)], (x + 4, y + th + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (235, 235, 235), 1, cv2.LINE_AA)
    return sheet


def detail_crops(images: Sequence[np.ndarray], side: int = 192) -> list[np.ndarray]:
    """The same 1:1 window (at most ``side`` px square) of every same-size image, centred on the first
    image's object (its signal above the noise)."""
    from luckystack.imaging import image_metrics

    first = images[0]
    mask = image_metrics.signal_mask(first)
    h, w = first.shape[:2]
    count = np.count_nonzero(mask)
    if count:  # the mask's centroid, from its row and column counts
        cy = float(np.count_nonzero(mask, axis=1) @ np.arange(h)) / count
        cx = float(np.count_nonzero(mask, axis=0) @ np.arange(w)) / count
    else:
        cy, cx = h / 2, w / 2
    sh, sw = min(side, h), min(side, w)
    y0 = int(np.clip(round(cy - sh / 2), 0, h - sh))
    x0 = int(np.clip(round(cx - sw / 2), 0, w - sw))
    return [im[y0:y0 + sh, x0:x0 + sw] for im in images]


def write_png(path, rgb: np.ndarray) -> None:
    """Write a uint8 image, RGB (H, W, 3) or grey (H, W), as PNG (OpenCV wants BGR)."""
    from luckystack.export import encode_png
    from luckystack.graph.files import write_file

    write_file(path, encode_png(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb))
