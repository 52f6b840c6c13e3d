"""Stack normalisation: put the brightest part of the object at a chosen level.

Optionally subtracts a bright sky background first (twilight/daylight recordings), estimated as a low
percentile of the image. Returns an affine map ``v → v·scale + offset`` so the same map can be applied
to AP patches and background alike (the merge is a convex combination, so it commutes).
"""

from __future__ import annotations

import numpy as np


def normalization(image: np.ndarray, target: float = 0.9, bright_percentile: float = 99.9,
                  background_percentile: float | None = None) -> tuple[float, float]:
    """``(scale, offset)`` mapping the image's ``bright_percentile`` to ``target``.

    With ``background_percentile`` (e.g. 5) that percentile is mapped to 0 first.
    """
    if not 0 < target <= 1:
        raise ValueError("target must be in (0, 1]")
    bright = float(np.percentile(image, bright_percentile))
    floor = float(np.percentile(image, background_percentile)) if background_percentile is not None else 0.0
    if bright - floor <= 1e-12:
        return 1.0, 0.0
    scale = target / (bright - floor)
    return scale, -floor * scale


def normalize(image: np.ndarray, target: float = 0.9, bright_percentile: float = 99.9,
              background_percentile: float | None = None) -> np.ndarray:
    """The image with :func:`normalization` applied (float32)."""
    scale, offset = normalization(image, target, bright_percentile, background_percentile)
    return (image * scale + offset).astype(np.float32)
