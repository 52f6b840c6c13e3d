"""Sharpening for finished stacks: unsharp mask, à trous wavelet layers, Richardson–Lucy.

All functions take and return (H, W, C) float32 images on the 0…1 scale and never clip (the export
clips), so they can be chained and compared against the unsharpened stack.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

B3 = np.array([1, 4, 6, 4, 1], dtype=np.float32) / 16.0  # the à trous B3-spline kernel


def _per_channel(image: np.ndarray, fn) -> np.ndarray:
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        return fn(img)
    return np.stack([fn(np.ascontiguousarray(img[..., c])) for c in range(img.shape[2])], axis=-1)


def unsharp_mask(image: np.ndarray, sigma: float = 1.5, amount: float = 1.0) -> np.ndarray:
    """``image + amount · (image − Gaussian(image, sigma))``."""
    def one(ch: np.ndarray) -> np.ndarray:
        blur = cv2.GaussianBlur(ch, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        return ch + amount * (ch - blur)
    return _per_channel(image, one)


def atrous_layers(channel: np.ndarray, levels: int) -> list[np.ndarray]:
    """À trous B3-spline decomposition of a 2-D image: ``levels`` detail layers, then the residual.

    The layers sum exactly to the input (layer k = smooth_{k-1} − smooth_k, scale 2^k).
    """
    smooth = channel.astype(np.float32)
    out = []
    for k in range(levels):
        step = 2 ** k
        kernel = np.zeros(4 * step + 1, dtype=np.float32)
        kernel[::step] = B3
        nxt = cv2.sepFilter2D(smooth, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REFLECT)
        out.append(smooth - nxt)
        smooth = nxt
    out.append(smooth)
    return out


def wavelet_sharpen(image: np.ndarray, amounts: Sequence[float],
                    denoise: Sequence[float] | None = None) -> np.ndarray:
    """Rebuild from à trous layers with per-layer gain ``amounts`` (1 = unchanged, >1 sharpens).

    ``denoise[k]`` soft-thresholds layer k at that many robust noise sigmas (MAD/0.6745) of the layer
    before applying the gain; 0 leaves it alone.
    """
    den = list(denoise) if denoise is not None else [0.0] * len(amounts)
    if len(den) != len(amounts):
        raise ValueError("denoise needs one value per wavelet layer")

    def one(ch: np.ndarray) -> np.ndarray:
        layers = atrous_layers(ch, len(amounts))
        out = layers[-1].copy()
        for layer, gain, d in zip(layers[:-1], amounts, den):
            if d > 0:
                sigma = np.median(np.abs(layer)) / 0.6745
                layer = np.sign(layer) * np.maximum(np.abs(layer) - d * sigma, 0)
            out += gain * layer
        return out
    return _per_channel(image, one)


def richardson_lucy(image: np.ndarray, sigma: float = 1.5, iterations: int = 30) -> np.ndarray:
    """Richardson–Lucy deconvolution with a Gaussian PSF of ``sigma`` pixels.

    Negative input values are treated as 0 (RL needs non-negative data).
    """
    if sigma <= 0 or iterations < 1:
        raise ValueError("sigma must be > 0 and iterations >= 1")
    eps = 1e-7

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)

    def one(ch: np.ndarray) -> np.ndarray:
        data = np.clip(ch, 0, None).astype(np.float32)
        est = np.full_like(data, max(float(data.mean()), eps))
        for _ in range(iterations):
            est *= blur(data / np.maximum(blur(est), eps))
        return est
    return _per_channel(image, one)
