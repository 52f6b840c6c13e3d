"""Small synthetic lucky-imaging recordings with known truth, for the stack/merge/post tests.

Every frame is the truth blurred by a per-frame seeing blur, moved by a global shift plus a smooth
local displacement field, with Gaussian noise. The true global and per-AP shifts are returned as
``shifts``/``aps``/``quality`` Results laid out exactly as the upstream nodes produce them, so the
stacking quality is tested apart from any alignment error.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from luckystack.graph.node import Result
from luckystack.imaging.colour import grey
from luckystack.imaging.quality import crop_brightness
from luckystack.imaging.registration import aligned_box
from luckystack.io.frames import ArrayFrameStream
from luckystack.nodes.frames import memory_frames


@dataclass
class Synthetic:
    truth: np.ndarray  # (H, W) reference-coordinate truth
    frames: np.ndarray  # (N, H, W[, 3])
    shift: np.ndarray  # (N, 2) true global shifts
    sigma: np.ndarray  # (N,) blur per frame
    crop: list[int]
    inputs: dict[str, Result]

    def truth_crop(self) -> np.ndarray:
        y0, x0, h, w = self.crop
        return self.truth[y0:y0 + h, x0:x0 + w]

    def aligned(self, i: int) -> np.ndarray:
        """Frame i aligned with its true global shift only, over the crop."""
        y0, x0, h, w = self.crop
        dy, dx = self.shift[i]
        m = np.array([[1, 0, x0 + dx], [0, 1, y0 + dy]], dtype=np.float64)
        f = self.frames[i].astype(np.float32)
        return cv2.warpAffine(f, m, (w, h), flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)


def texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A band-limited textured disc on a dark sky, 0…~0.8."""
    t = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1.6)
    t = (t - t.min()) / (t.max() - t.min())
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot((yy - h / 2) / (0.42 * h), (xx - w / 2) / (0.42 * w))
    disc = np.clip((1.0 - r) * 8, 0, 1)
    img = 0.05 + disc * (0.25 + 0.55 * t)
    return cv2.GaussianBlur(img.astype(np.float32), (0, 0), 0.6)


def make(n: int = 40, h: int = 96, w: int = 128, seed: int = 0, noise: float = 0.01,
         local_amp: float = 0.8, ap_size: int = 32, margin: int = 6, constant: float | None = None,
         ap_step: int | None = None, colour: bool = False) -> Synthetic:
    rng = np.random.default_rng(seed)
    truth = np.full((h, w), constant, np.float32) if constant is not None else texture(rng, h, w)
    shift = rng.uniform(-3, 3, size=(n, 2))
    sigma = 0.5 + rng.exponential(1.0, size=n)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 2))
    amp = local_amp * rng.uniform(-1, 1, size=(n, 2))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)

    def local(i, y, x):
        return (amp[i, 0] * np.sin(2 * np.pi * x / w + phase[i, 0]),
                amp[i, 1] * np.sin(2 * np.pi * y / h + phase[i, 1]))

    frames = []
    for i in range(n):
        blurred = cv2.GaussianBlur(truth, (0, 0), sigma[i], borderType=cv2.BORDER_REFLECT)
        ly, lx = local(i, yy, xx)
        my = (yy - shift[i, 0] - ly).astype(np.float32)
        mx = (xx - shift[i, 1] - lx).astype(np.float32)
        f = cv2.remap(blurred, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        if colour:
            f = np.stack([f * 0.9, f, f * 0.8], axis=-1)
        frames.append(f + rng.normal(0, noise, f.shape).astype(np.float32))
    frames = np.clip(np.array(frames), 0, 1).astype(np.float32)

    crop = [margin, margin, h - 2 * margin, w - 2 * margin]
    step = ap_step or ap_size // 2
    cy = np.arange(ap_size // 2, crop[2] - ap_size // 2 + 1, step)
    cx = np.arange(ap_size // 2, crop[3] - ap_size // 2 + 1, step)
    centers = np.array([(y, x) for y in cy for x in cx], dtype=np.int32)
    ly, lx = local(np.arange(n)[:, None], centers[None, :, 0] + margin, centers[None, :, 1] + margin)
    ap_shift = np.stack([ly, lx], axis=-1).astype(np.float32)
    score = 1.0 / sigma + rng.normal(0, 0.01, n)
    local_q = (score[:, None] + rng.normal(0, 0.01, (n, len(centers)))).astype(np.float32)
    rank = np.argsort(np.argsort(-score)).astype(np.int32)
    mono = [grey(f if f.ndim == 3 else f[..., None]) for f in frames]
    boxes = [aligned_box(m.shape, crop, *s) for m, s in zip(mono, shift)]
    brightness = np.array([crop_brightness(m[t:b, l:r], 0) for m, (t, b, l, r) in zip(mono, boxes)])
    inputs = {
        "frames": memory_frames(ArrayFrameStream(frames, bit_depth=8)),
        "shifts": Result(arrays={"shift": shift, "valid": np.ones(n, bool), "reason": np.zeros(n, np.int8)},
                         meta={"crop": crop, "reasons": {}, "mode": "surface"}),
        "aps": Result(arrays={"center": centers, "size": np.full(len(centers), ap_size, np.int32),
                              "shift": ap_shift, "quality": local_q, "ok": np.ones((n, len(centers)), bool)},
                      meta={"replaced": 0, "ap_sizes": [ap_size]}),
        "quality": Result(arrays={"score": score, "rank": rank, "valid": np.ones(n, bool),
                                  "reason": np.zeros(n, np.int8), "brightness": brightness},
                          meta={"method": "true", "scale": 0}),
    }
    return Synthetic(truth, frames, shift, sigma, crop, inputs)


def psnr(image: np.ndarray, truth: np.ndarray, border: int = 4) -> float:
    a = np.asarray(image, np.float64).squeeze()[border:-border, border:-border]
    b = np.asarray(truth, np.float64).squeeze()[border:-border, border:-border]
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def mid_power(image: np.ndarray, truth: np.ndarray, lo: float = 0.05, hi: float = 0.25) -> float:
    """Spectral power of the image in a mid-frequency band (cycles/px) relative to the truth's."""
    def band(img):
        img = np.asarray(img, np.float64).squeeze()
        img = (img - img.mean()) * np.outer(np.hanning(img.shape[0]), np.hanning(img.shape[1]))
        p = np.abs(np.fft.fft2(img)) ** 2
        fy = np.fft.fftfreq(img.shape[0])[:, None]
        fx = np.fft.fftfreq(img.shape[1])[None, :]
        f = np.hypot(fy, fx)
        return p[(f >= lo) & (f < hi)].sum()
    return float(band(image) / band(truth))
