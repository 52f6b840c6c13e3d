"""Judging a stacked image against the simulation's truth: registration, PSNR, SSIM, mid-band sharpness.

All functions take float images on the 0..1 scale, (H, W) or (H, W, C). A stack usually covers a crop of
the truth at an unknown sub-pixel offset and with a different overall brightness (the frames' mean
transparency), so :func:`compare` first registers the result on the truth (integer offset by template
matching, sub-pixel residual by phase correlation), resamples it, fits gain and offset by least squares,
and scores only the overlap minus a border.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def _as3d(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img, dtype=np.float32)
    return img[..., None] if img.ndim == 2 else img


def _luminance(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(_as3d(img).mean(axis=2))


def psnr(result: np.ndarray, truth: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB."""
    mse = float(np.mean((np.asarray(result, np.float64) - np.asarray(truth, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(data_range**2 / mse)


def ssim(result: np.ndarray, truth: np.ndarray, data_range: float = 1.0, sigma: float = 1.5) -> float:
    """Mean structural similarity (Wang et al. 2004) with a Gaussian window, averaged over channels."""
    a, b = _as3d(result).astype(np.float64), _as3d(truth).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    scores = []
    for c in range(a.shape[2]):
        x, y = a[..., c], b[..., c]

        def blur(z: np.ndarray) -> np.ndarray:
            return cv2.GaussianBlur(z, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)

        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        r = int(np.ceil(3.5 * sigma))  # drop the border where the window leaves the image
        scores.append(float(s[r:-r, r:-r].mean()) if min(s.shape) > 2 * r + 2 else float(s.mean()))
    return float(np.mean(scores))


def _spectra(img: np.ndarray) -> np.ndarray:
    """Windowed 2-D FFT of the luminance (mean removed, Hann window against edge leakage)."""
    g = _luminance(img).astype(np.float64)
    g = g - g.mean()
    window = np.outer(np.hanning(g.shape[0]), np.hanning(g.shape[1]))
    return np.fft.rfft2(g * window)


def _band(shape: tuple[int, int], low: float, high: float) -> np.ndarray:
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    f = np.sqrt(fy * fy + fx * fx)
    return (f >= low) & (f < high)


def midband_power_ratio(result: np.ndarray, truth: np.ndarray, low: float = 0.08, high: float = 0.25) -> float:
    """Spectral power of ``result`` in the band low..high cycles/px relative to the truth's (1 = as sharp
    as the truth; blur lowers it, noise raises it). Images must be registered and of the same size."""
    r, t = _spectra(result), _spectra(truth)
    band = _band(_luminance(truth).shape, low, high)
    return float(np.sum(np.abs(r[band]) ** 2) / max(np.sum(np.abs(t[band]) ** 2), 1e-30))


def midband_transfer(result: np.ndarray, truth: np.ndarray, low: float = 0.08, high: float = 0.25) -> float:
    """Mean transfer function of ``result`` relative to the truth in the band (Re of the cross-spectrum
    over the truth's power): like :func:`midband_power_ratio` but blind to noise, which does not
    correlate with the truth. 1 = all mid-frequency detail present, 0 = none."""
    r, t = _spectra(result), _spectra(truth)
    band = _band(_luminance(truth).shape, low, high)
    return float(np.sum((r[band] * np.conj(t[band])).real) / max(np.sum(np.abs(t[band]) ** 2), 1e-30))


def find_offset(result: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(dy, dx) such that ``result(p) ~ truth(p + (dy, dx))``: the position of the result's pixel (0, 0) in
    the truth. Either image may be the larger; the smaller must fit inside the larger."""
    a, b = _luminance(result), _luminance(truth)
    flip = a.shape[0] > b.shape[0] or a.shape[1] > b.shape[1]
    small, big = (b, a) if flip else (a, b)
    if small.shape[0] > big.shape[0] or small.shape[1] > big.shape[1]:
        raise ValueError(f"cannot register images of shapes {a.shape} and {b.shape}: neither fits in the other")
    score = cv2.matchTemplate(big, small, cv2.TM_CCOEFF_NORMED)
    _, _, _, (ix, iy) = cv2.minMaxLoc(score)
    dy, dx = _refine(small, big, float(iy), float(ix))  # small(p) ~ big(p + (dy, dx))
    return (-dy, -dx) if flip else (dy, dx)


def _normalised(img: np.ndarray) -> np.ndarray:
    return (img - img.mean()) / max(float(img.std()), 1e-12)


def _refine(small: np.ndarray, big: np.ndarray, dy: float, dx: float, iterations: int = 20
            ) -> tuple[float, float]:
    """Sub-pixel (dy, dx) with small(p) ~ big(p + d), by Gauss-Newton on the intensity-normalised
    difference (Lucas-Kanade for a translation; unbiased by symmetric blur differences, ~0.001 px).
    cv2.phaseCorrelate is not used: OpenCV 5.0 returns a 0.5 px bias for some image sizes."""
    m = 3  # ignore a border so samples stay inside ``big`` while d moves by a pixel or two
    h, w = small.shape
    if h <= 2 * m + 8 or w <= 2 * m + 8:
        return dy, dx
    yy, xx = np.mgrid[m:h - m, m:w - m].astype(np.float32)
    target = _normalised(small[m:h - m, m:w - m].astype(np.float64))
    for _ in range(iterations):
        patch = cv2.remap(big, xx + np.float32(dx), yy + np.float32(dy), cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT).astype(np.float64)
        patch = _normalised(patch)
        gy, gx = np.gradient(patch)
        a = np.array([[np.sum(gy * gy), np.sum(gy * gx)], [np.sum(gy * gx), np.sum(gx * gx)]])
        r = target - patch
        try:
            step = np.linalg.solve(a, [np.sum(gy * r), np.sum(gx * r)])
        except np.linalg.LinAlgError:
            break
        step = np.clip(step, -1.0, 1.0)
        dy, dx = dy + float(step[0]), dx + float(step[1])
        if np.abs(step).max() < 1e-4:
            break
    return dy, dx


@dataclass
class Score:
    psnr: float
    ssim: float
    sharpness: float  # midband_power_ratio
    transfer: float  # midband_transfer
    offset: tuple[float, float]
    gain: float
    area: tuple[int, int, int, int]  # y0, x0, height, width of the scored region in truth coordinates


def register(result: np.ndarray, truth: np.ndarray, border: int = 8
             ) -> tuple[np.ndarray, np.ndarray, tuple[float, float], tuple[int, int, int, int]]:
    """The result resampled onto truth pixels over their overlap (minus ``border``), that truth region,
    the offset, and the region (y0, x0, h, w) in truth coordinates."""
    res, tru = _as3d(result), _as3d(truth)
    if res.shape[2] != tru.shape[2]:
        raise ValueError(f"result has {res.shape[2]} channels, truth {tru.shape[2]}")
    dy, dx = find_offset(res, tru)
    # Truth pixel t shows result pixel t - offset; keep t where that lies inside the result, minus border.
    y0 = int(np.ceil(max(0.0, dy))) + border
    x0 = int(np.ceil(max(0.0, dx))) + border
    y1 = int(np.floor(min(tru.shape[0], res.shape[0] + dy - 1))) - border
    x1 = int(np.floor(min(tru.shape[1], res.shape[1] + dx - 1))) - border
    if y1 - y0 < 16 or x1 - x0 < 16:
        raise ValueError("the result overlaps the truth by too little to score")
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    warped = [cv2.remap(np.ascontiguousarray(res[..., c]), xx - np.float32(dx), yy - np.float32(dy),
                        cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT) for c in range(res.shape[2])]
    return np.stack(warped, axis=-1), tru[y0:y1, x0:x1], (dy, dx), (y0, x0, y1 - y0, x1 - x0)


def compare(result: np.ndarray, truth: np.ndarray, fit_gain: bool = True, border: int = 8) -> Score:
    """Register ``result`` on ``truth`` and score the overlap (see the module docstring)."""
    reg, tru, offset, area = register(result, truth, border)
    gain = 1.0
    if fit_gain:  # least-squares gain and offset, so brightness differences are not counted as error
        x, y = reg.ravel().astype(np.float64), tru.ravel().astype(np.float64)
        design = np.stack([x, np.ones_like(x)], axis=1)
        (gain, bias), *_ = np.linalg.lstsq(design, y, rcond=None)
        reg = (reg * gain + bias).astype(np.float32)
    return Score(psnr(reg, tru), ssim(reg, tru), midband_power_ratio(reg, tru), midband_transfer(reg, tru),
                 offset, float(gain), area)
