"""Colour conversions shared by the frame streams and the nodes."""

from __future__ import annotations

import numpy as np


LUMA = (0.2126, 0.7152, 0.0722)  # Rec. 709 weights of R, G, B


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 709 luminance of an (H, W, 3) float image; the grey image used for measuring colour frames."""
    r, g, b = LUMA
    return (r * rgb[..., 0] + g * rgb[..., 1] + b * rgb[..., 2]).astype(np.float32)


def grey(image: np.ndarray) -> np.ndarray:
    """(H, W) grey of an (H, W, C) image: its only channel (mono) or :func:`luminance` (RGB)."""
    return image[..., 0] if image.shape[2] == 1 else luminance(image)
