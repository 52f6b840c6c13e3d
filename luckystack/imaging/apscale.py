"""The AP size a recording needs: the scale over which its local shift field is still rigid.

An AP moves its patch by one shift; inside the patch the field keeps varying, and what it varies by is
the misregistration the AP leaves in the stack. :func:`structure` measures the field's mean squared
difference between measurement points ``lag`` px apart (per axis), over a sample of frames; the
measurement noise adds the same amount at every lag (the points' windows do not overlap), so the growth
between two lags is the field's own: ``D(r) ≈ noise + strain² · r²`` for lags well inside the field's
correlation length. How much a misregistration ε costs depends on the detail: a feature of spatial
frequency f loses contrast with the phase error 2π·f·ε, so fine detail (solar granulation) tolerates
less than a planet's soft belts. :func:`detail_frequency` measures the object's typical frequency on the
reference, and :func:`field_scale` gives the largest AP size whose patches keep the rms phase error
within :data:`PHASE` at that frequency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The rms phase error (radians, at the object's typical detail frequency) an AP may leave; calibrated on
# the simulator's Jupiter, Moon and Sun in average and poor seeing (docs/auto-settings.md).
PHASE = 0.025
# The rms distance (in AP sizes) of a patch pixel from the AP's centre, under the blending window.
PATCH_SPREAD = 0.3


@dataclass(frozen=True)
class FieldScale:
    """The local shift field's structure: per lag (px) the mean squared shift difference per axis
    (px²) and the number of point pairs; ``noise``: its value extrapolated to lag 0 (twice the
    measurements' variance); the strain (rms shift gradient, px/px), the object's detail frequency
    (cycles/px) and the AP size they allow (px, before clamping), None where the field showed no
    measurable variation."""

    lags: list[int]
    structure: list[float]
    pairs: list[int]
    noise: float
    strain: float
    frequency: float
    size: float | None

    def as_meta(self) -> dict:
        return {"lags": self.lags, "structure": [round(v, 5) for v in self.structure], "pairs": self.pairs,
                "noise": round(self.noise, 5), "strain": round(self.strain, 6),
                "detail_frequency": round(self.frequency, 5),
                "rigid_size": None if self.size is None else round(self.size, 1)}


def structure(points: np.ndarray, shifts: np.ndarray, ok: np.ndarray, step: int, lags: int = 3
              ) -> tuple[list[int], list[float], list[int]]:
    """Mean squared local shift difference per axis at lags 1…``lags`` grid steps.

    ``points`` (P, 2) measurement positions on a grid of ``step`` px; ``shifts`` (F, P, 2) the local
    shifts in F frames; ``ok`` (F, P) whether each was measured well. Pairs along rows and columns;
    each frame's pairs count where both points were measured well."""
    cell = np.round(np.asarray(points, np.float64) / step).astype(np.int64)
    index = {(int(y), int(x)): k for k, (y, x) in enumerate(cell)}
    out_lags, out_d, out_n = [], [], []
    for k in range(1, lags + 1):
        a, b = [], []
        for (y, x), i in index.items():
            for j in (index.get((y + k, x)), index.get((y, x + k))):
                if j is not None:
                    a.append(i)
                    b.append(j)
        if not a:
            break
        a, b = np.array(a), np.array(b)
        both = ok[:, a] & ok[:, b]  # (F, pairs)
        diff = shifts[:, a] - shifts[:, b]  # (F, pairs, 2)
        n = int(both.sum())
        if n == 0:
            break
        out_lags.append(k * step)
        out_d.append(float(np.sum((diff**2).sum(-1) * both) / (2 * n)))
        out_n.append(n)
    return out_lags, out_d, out_n


def detail_frequency(mono: np.ndarray, centres: np.ndarray, size: int) -> float:
    """The object's typical spatial frequency (cycles/px): per box of ``size`` px around ``centres``
    (y, x), the rms gradient over the rms deviation, / 2π (a sine of frequency f gives f); the median
    over the boxes. 0 without boxes or contrast."""
    img = np.asarray(mono, np.float64)
    gy, gx = np.gradient(img)
    energy = gy**2 + gx**2
    half = size // 2
    values = []
    for y, x in np.asarray(centres, np.int64):
        box = (slice(max(y - half, 0), y - half + size), slice(max(x - half, 0), x - half + size))
        var = float(img[box].var())
        if var > 0:
            values.append(np.sqrt(float(energy[box].mean()) / var) / (2 * np.pi))
    return float(np.median(values)) if values else 0.0


def field_scale(lags: list[int], values: list[float], pairs: list[int], frequency: float) -> FieldScale:
    """The strain from the growth of the structure function between its first two lags, and the AP
    size that keeps the phase error at ``frequency`` within :data:`PHASE`; no growth (a rigid field,
    or noise only) or no detail: no limit."""
    if len(lags) < 2:
        return FieldScale(lags, values, pairs, values[0] if values else 0.0, 0.0, frequency, None)
    r1, r2 = float(lags[0]), float(lags[1])
    growth = (values[1] - values[0]) / (r2 * r2 - r1 * r1)
    strain = float(np.sqrt(growth)) if growth > 0 else 0.0
    noise = max(values[0] - growth * r1 * r1, 0.0)
    size = PHASE / (2 * np.pi * frequency * PATCH_SPREAD * strain) if strain > 0 and frequency > 0 else None
    return FieldScale(lags, values, pairs, noise, strain, frequency, size)


def rigid_size(scale: FieldScale, largest: int, smallest: int = 24) -> int:
    """The AP size (multiple of 8) the field allows, between ``smallest`` and ``largest`` (the size that
    covers the object with enough APs: a larger one gains nothing)."""
    if scale.size is None:
        return int(largest)
    return int(np.clip(8 * np.floor(scale.size / 8), smallest, max(largest, smallest)))
