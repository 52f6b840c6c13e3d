"""Colour conversions shared by the frame streams and the nodes."""

from __future__ import annotations

import numpy as np


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 709 luminance of an (H, W, 3) float image; the grey image used for measuring colour frames."""
    return (0.2126 * rgb[..., 0] + 0.7152 * rgb[..., 1] + 0.0722 * rgb[..., 2]).astype(np.float32)


def grey(image: np.ndarray) -> np.ndarray:
    """(H, W) grey of an (H, W, C) image: its only channel (mono) or :func:`luminance` (RGB)."""
    return image[..., 0] if image.shape[2] == 1 else luminance(image)
