"""Figures of merit for a stacked image that need no ground truth.

Used to compare the results of a sweep or of ``luckystack compare``:

* :func:`sharpness` — gradient energy of the signal region, relative to its mean brightness, so a
  brighter image does not look sharper.
* :func:`noise_sigma` — Immerkær's fast noise estimate (1996): the mean absolute response of a
  Laplacian-difference kernel that cancels smooth structure, scaled to a Gaussian sigma.
* :func:`snr` — mean signal over noise sigma.
* :func:`detail` — gradient-weighted spectral power of the object above the noise floor (Wiener
  weighted), relative to its mean brightness.
* :func:`score` — the ranking score, log(detail) (see its docstring).
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


def _radial_power(img: np.ndarray, bins: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hann-windowed power spectrum per pixel (white noise of variance v gives v in every bin),
    averaged over ``bins`` rings of spatial frequency; returns (mean power, bins' pixel counts,
    ring centre frequencies in cycles/px)."""
    g = img.astype(np.float64)
    window = np.outer(np.hanning(g.shape[0]), np.hanning(g.shape[1]))
    power = np.abs(np.fft.rfft2((g - g.mean()) * window)) ** 2 / np.sum(window**2)
    f = np.hypot(np.fft.fftfreq(g.shape[0])[:, None], np.fft.rfftfreq(g.shape[1])[None, :])
    ring = np.minimum((f * 2 * bins).astype(np.intp), bins).ravel()  # ring `bins` holds the corners
    counts = np.bincount(ring, minlength=bins + 1)
    mean = np.bincount(ring, power.ravel(), minlength=bins + 1) / np.maximum(counts, 1)
    return mean, counts, (np.arange(bins + 1) + 0.5) / (2 * bins)


def detail(image: np.ndarray) -> float:
    """Detail that stands above the noise, relative to the squared mean brightness of the object.

    Per ring of spatial frequency f: signal power S = ring mean power − N (N = noise_sigma², white),
    weighted as gradient energy (f²) and by the Wiener fraction S / (S + N): the gradient energy left
    after optimal noise suppression, i.e. the detail sharpening can bring out. Blur lowers it; noise
    lowers it only at frequencies where it drowns the signal (unlike :func:`sharpness`, which noise
    raises).
    """
    img = _grey(image)
    mask = signal_mask(img)
    mean = float(img[mask].mean()) if mask.any() else 0.0
    noise = noise_sigma(img) ** 2
    power, counts, freq = _radial_power(img)
    signal = np.maximum(power - noise, 0.0)
    total = np.sum(counts * freq**2 * signal**2 / np.maximum(signal + noise, 1e-30)) / img.size
    return float(total) / max(mean * mean, 1e-12)


def score(image: np.ndarray) -> float:
    """Ranking score: log(:func:`detail`); higher is better.

    Measured on simulated stack-size sweeps (luckystack.simulate, PSNR against the truth): the earlier
    score log(sharpness) + 0.5·log(SNR) ranked 10/25/50 % stacks in the reverse order of their PSNR
    (Spearman −0.89: it paid too much for SNR once noise was already far below the detail), this one
    in the same order (+0.94).
    """
    return math.log(max(detail(image), 1e-30))


def figures(image: np.ndarray) -> dict[str, float]:
    """All of the above for one image."""
    return {"sharpness": sharpness(image), "noise": noise_sigma(image), "snr": snr(image),
            "score": score(image)}
