"""A small synthetic planet recording with known global shifts and local displacement fields (for tests).

frame_i(q) = scene(q - G_i - D_i(q)) blurred and noisy, so a feature at scene position p appears at
p + G_i + D_i(p) (to second order in the small, smooth field D_i).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Synthetic:
    frames: np.ndarray  # (N, H, W) float32
    shift: np.ndarray  # (N, 2) true global (dy, dx)
    field_amp: np.ndarray  # (N, 2, 2) amplitudes of the local field's sin/cos terms per axis
    phase: np.ndarray  # (N, 2)
    blur: np.ndarray  # (N,) Gaussian sigma of each frame
    period: float

    def displacement(self, i: int, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """True local displacement D_i at scene positions (y, x): (..., 2)."""
        a, ph, k = self.field_amp[i], self.phase[i], 2 * np.pi / self.period
        dy = a[0, 0] * np.sin(k * x + ph[0]) + a[0, 1] * np.cos(k * y + ph[1])
        dx = a[1, 0] * np.sin(k * y + ph[1]) + a[1, 1] * np.cos(k * x + ph[0])
        return np.stack([dy, dx], axis=-1)


def planet_scene(h: int, w: int, radius: float, rng: np.random.Generator) -> np.ndarray:
    """A banded, textured disc on black sky with a small moon."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = h / 2, w / 2
    r = np.hypot(y - cy, x - cx) / radius
    texture = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 2.5)
    texture = (texture - texture.mean()) / texture.std()
    bands = 0.6 + 0.15 * np.sin((y - cy) / radius * 9.0) + 0.05 * texture
    limb = np.clip(1 - r ** 2, 0, 1) ** 0.3
    disc = np.where(r < 1, bands * limb, 0.0)
    moon = np.hypot(y - cy + 0.2 * radius, x - cx - 1.6 * radius) < 0.08 * radius
    img = disc + 0.6 * moon
    return cv2.GaussianBlur(img.astype(np.float32), (0, 0), 0.8)


def make_recording(n: int = 40, h: int = 160, w: int = 200, radius: float = 55, drift: float = 6.0,
                   field: float = 0.8, noise: float = 0.01, seed: int = 0,
                   period: float = 240.0) -> Synthetic:
    rng = np.random.default_rng(seed)
    scene = planet_scene(h, w, radius, rng)
    shift = rng.uniform(-drift, drift, (n, 2))
    amp = rng.uniform(-field, field, (n, 2, 2)) / np.sqrt(2)
    phase = rng.uniform(0, 2 * np.pi, (n, 2))
    blur = rng.uniform(0.6, 2.2, n)
    sim = Synthetic(np.empty((n, h, w), np.float32), shift, amp, phase, blur, period=period)
    qy, qx = np.mgrid[0:h, 0:w].astype(np.float64)
    for i in range(n):
        # Invert q = p + G + D(p) by fixed-point iteration for the source position p.
        py, px = qy - shift[i, 0], qx - shift[i, 1]
        for _ in range(3):
            d = sim.displacement(i, py, px)
            py, px = qy - shift[i, 0] - d[..., 0], qx - shift[i, 1] - d[..., 1]
        img = cv2.remap(scene, px.astype(np.float32), py.astype(np.float32), cv2.INTER_CUBIC,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        img = cv2.GaussianBlur(img, (0, 0), blur[i])
        sim.frames[i] = np.clip(img + rng.normal(0, noise, img.shape), 0, 1)
    return sim
