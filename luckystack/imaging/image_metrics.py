"""Figures of merit for a stacked image that need no ground truth.

Used to compare the results of a sweep or of ``luckystack compare``:

* :func:`sharpness` — gradient energy of the signal region, relative to its mean brightness, so a
  brighter image does not look sharper.
* :func:`noise_sigma` — Immerkær's fast noise estimate (1996): the mean absolute response of a
  Laplacian-difference kernel that cancels smooth structure, scaled to a Gaussian sigma.
* :func:`snr` — mean signal over noise sigma.
* :func:`score` — the ranking score: sharpness penalised by noise (see its docstring).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def _grey(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 3:
        img = img.mean(axis=2, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    return img


def signal_mask(image: np.ndarray) -> np.ndarray:
    """Pixels that belong to the object: brighter than a quarter of the 99.5th percentile."""
    img = _grey(image)
    return img > 0.25 * float(np.percentile(img, 99.5))


def noise_sigma(image: np.ndarray) -> float:
    """Gaussian noise sigma estimated from the image alone (Immerkær 1996), in image units."""
    img = _grey(image)
    if min(img.shape) < 3:
        raise ValueError("image too small to estimate noise")
    response = cv2.filter2D(img, cv2.CV_32F, _IMMERKAER, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    return float(math.sqrt(math.pi / 2.0) * np.abs(response).mean() / 6.0)


def sharpness(image: np.ndarray) -> float:
    """Mean squared gradient over the signal region divided by its squared mean brightness."""
    img = _grey(image)
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    mask = signal_mask(img)
    if not mask.any():
        return 0.0
    mean = float(img[mask].mean())
    return float((gx[mask] ** 2 + gy[mask] ** 2).mean()) / max(mean * mean, 1e-12)


def snr(image: np.ndarray) -> float:
    """Mean brightness of the signal region over the noise sigma."""
    img = _grey(image)
    mask = signal_mask(img)
    signal = float(img[mask].mean()) if mask.any() else 0.0
    return signal / max(noise_sigma(img), 1e-12)


def score(image: np.ndarray) -> float:
    """Ranking score: log(sharpness) + 0.5·log(SNR).

    Sharpness alone rewards noise (a tiny stack is "sharp" because it is grainy); weighting the log
    SNR by one half makes doubling the noise cost as much as a 41 % loss of gradient energy.
    """
    return math.log(max(sharpness(image), 1e-12)) + 0.5 * math.log(max(snr(image), 1e-12))


def figures(image: np.ndarray) -> dict[str, float]:
    """All of the above for one image."""
    return {"sharpness": sharpness(image), "noise": noise_sigma(image), "snr": snr(image),
            "score": score(image)}
