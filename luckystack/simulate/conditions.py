"""The simulation's options, and the per-frame observing conditions drawn from them.

Conditions are everything random that varies per frame except the noise: global shift (drift + jitter),
the local displacement field (anisoplanatic seeing), the blur levels and their spatial mix, brightness
(transparency), artifacts and partial frames. They are small arrays, drawn once, and form the truth.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from luckystack.simulate import fields

LAYOUTS = ("mono", "RGGB", "GRBG", "GBRG", "BGGR", "RGB")
# Seeing presets: SimOptions overrides for good, average (the defaults) and poor nights.
SEEING = {"good": {"seeing_scale": 0.8, "local_px": 0.6},
          "average": {},
          "poor": {"seeing_scale": 2.2, "local_px": 1.5}}
ARTIFACTS = {0: "none", 1: "dropped rows (a band of zeros)", 2: "torn frame (lower part shifted sideways)"}


@dataclass(frozen=True)
class SimOptions:
    """Every knob of the simulation, with realistic defaults (px are frame pixels, levels the 0..1 scale)."""

    planet_diameter: float = 0.4  # jupiter: equatorial diameter (saturn: half the rings' span) as a fraction of the frame width
    optics_px: float = 0.5  # Gaussian sigma of the telescope's own blur, part of the truth
    exposure: float = 0.8  # brightest scene level on the recording's 0..1 scale
    sky: float = 0.01  # sky background level (planets)
    drift_px: float = 6.0  # largest excursion of the smooth random-walk drift
    jitter_px: float = 1.0  # std of frame-to-frame tip-tilt jitter per axis
    jitter_rho: float = 0.5  # frame-to-frame correlation of the jitter
    local_px: float = 1.0  # rms of the local displacement field per axis
    local_cell: float = 120.0  # knot spacing of the local displacement field (its correlation length)
    local_rho: float = 0.5  # frame-to-frame correlation of the local field
    seeing_best: float = 0.4  # blur sigma of a perfect moment (px)
    seeing_scale: float = 1.4  # median extra blur sigma (px)
    seeing_spread: float = 0.7  # log-normal spread of the extra blur (heavy tail towards bad frames)
    seeing_rho: float = 0.7  # frame-to-frame correlation of the seeing
    field_blur: float = 0.6  # blur in the worse parts of the field is (1 + field_blur) times the best part
    blur_cell: float = 160.0  # knot spacing of the map that mixes the two blur levels
    max_blur: float = 6.0  # cap on blur sigma (px)
    transparency: float = 0.15  # depth of slow brightness dips (thin cloud)
    flicker: float = 0.02  # frame-to-frame brightness noise (std)
    noise: bool = True  # photon and read noise on/off
    photons: float = 800.0  # photo-electrons at full scale (sets the photon noise)
    read_noise: float = 3.0  # read noise, electrons rms
    exact_poisson: bool = False  # draw photon noise exactly (slow) instead of its Gaussian approximation
    banding: float = 0.0  # rms of per-frame row offsets (CMOS banding), 0..1 scale; columns get half
    dispersion_px: float = 0.0  # colour: red plane shifted by +this, blue by -this (atmospheric dispersion)
    dispersion_angle: float = 0.0  # direction of the red shift, degrees from +y (down) towards +x
    torn_frames: int = 0  # frames with a dropped-row band or a tear
    partial_frames: int = 0  # planets: frames where the disc is cut by the frame edge
    declared_depth: int | None = None  # SER header bit depth if it should differ from the data (quirk)
    fps: float = 100.0  # frame rate of the timestamps
    start_unix: float = 1709323200.0  # timestamp of frame 0 (2024-03-01 20:00 UTC)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise ValueError(f"option {f.name} must not be negative, got {value}")
        if self.local_cell < 8 or self.blur_cell < 8:
            raise ValueError("local_cell and blur_cell must be at least 8 px")
        if not 0 < self.planet_diameter <= 1.5 or self.fps <= 0 or self.photons <= 0:
            raise ValueError("planet_diameter must be in (0, 1.5] and fps and photons positive")
        for name in ("jitter_rho", "local_rho", "seeing_rho"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"option {name} must be in [0, 1)")

    @classmethod
    def from_kwargs(cls, options: dict) -> SimOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown simulation option(s): {', '.join(unknown)}")
        return cls(**options)


@dataclass
class Conditions:
    """Per-frame truth other than the image (see :class:`luckystack.simulate.truth.Truth` for meanings)."""

    shifts: np.ndarray  # (N, 2) float64 (dy, dx)
    local_grid: np.ndarray  # (N, gy, gx, 2) float32 B-spline coefficients of the local displacement
    blur: np.ndarray  # (N, 2) float64 blur sigma in the best and the worst parts of the field
    blur_grid: np.ndarray  # (N, by, bx) float32 B-spline coefficients of the blur mix (0 best, 1 worst)
    seeing: np.ndarray  # (N,) float64 effective blur sigma over the frame
    brightness: np.ndarray  # (N,) float64
    artifact: np.ndarray  # (N,) int8, ARTIFACTS codes
    artifact_rows: np.ndarray  # (N, 3) int32 first row, end row, sideways offset of the artifact
    partial: np.ndarray  # (N,) bool


def _random_walk(rng: np.random.Generator, n: int, extent: float) -> np.ndarray:
    """(n, 2) smooth random walk starting at 0 whose largest excursion is ``extent``."""
    velocity = fields.ar1_grids(rng, n, (2,), 1.0, 0.98)
    walk = np.cumsum(velocity, axis=0)
    walk -= walk[0]
    peak = np.abs(walk).max()
    return walk * (extent / peak) if peak > 0 else walk


def blur_mix(field: np.ndarray) -> np.ndarray:
    """The blur mixing weight (0 = best blur level, 1 = worst) for values of the blur-grid B-spline field."""
    return np.clip(0.5 + field, 0.0, 1.0)


def draw_conditions(rng: np.random.Generator, n: int, height: int, width: int, opts: SimOptions,
                    planet: bool) -> Conditions:
    """Draw all per-frame conditions for ``n`` frames of a height x width recording."""
    if n < 1:
        raise ValueError("a recording needs at least one frame")
    shifts = _random_walk(rng, n, opts.drift_px)
    shifts += fields.ar1_grids(rng, n, (2,), opts.jitter_px, opts.jitter_rho)

    gy, gx = fields.grid_size(height, opts.local_cell), fields.grid_size(width, opts.local_cell)
    local = fields.ar1_grids(rng, n, (gy, gx, 2), fields.coefficient_std(opts.local_px), opts.local_rho)
    # Zero mean over the frame, so the global shift is the frame's mean motion (the B-spline basis sums
    # to one over the frame, so subtracting a constant from the coefficients subtracts it from the field).
    wy = fields.basis_matrix(np.arange(height), opts.local_cell, gy).mean(axis=0)
    wx = fields.basis_matrix(np.arange(width), opts.local_cell, gx).mean(axis=0)
    local -= np.einsum("j,njkc,k->nc", wy, local, wx)[:, None, None, :]

    z = fields.ar1_series(rng, n, opts.seeing_rho)
    best = opts.seeing_best + opts.seeing_scale * np.exp(opts.seeing_spread * z)
    blur = np.minimum(np.stack([best, best * (1 + opts.field_blur)], axis=1), opts.max_blur)
    by, bx = fields.grid_size(height, opts.blur_cell), fields.grid_size(width, opts.blur_cell)
    blur_grid = fields.ar1_grids(rng, n, (by, bx), fields.coefficient_std(0.3), 0.5)
    ys, xs = np.linspace(0, height - 1, 24), np.linspace(0, width - 1, 32)
    mix = blur_mix(np.einsum("ij,njk,lk->nil", fields.basis_matrix(ys, opts.blur_cell, by), blur_grid,
                             fields.basis_matrix(xs, opts.blur_cell, bx))).mean(axis=(1, 2))
    seeing = np.sqrt(blur[:, 0] ** 2 * (1 - mix) + blur[:, 1] ** 2 * mix)

    slow = _random_walk(rng, n, 1.0)[:, 0]
    slow = (slow - slow.min()) / max(np.ptp(slow), 1e-12)
    brightness = np.clip(1 - opts.transparency * slow + opts.flicker * rng.standard_normal(n), 0.05, 1.2)

    artifact = np.zeros(n, np.int8)
    rows = np.zeros((n, 3), np.int32)
    partial = np.zeros(n, bool)
    candidates = np.arange(1, n) if n > 1 else np.arange(n)
    if opts.torn_frames:
        if opts.torn_frames > len(candidates):
            raise ValueError(f"torn_frames={opts.torn_frames} exceeds the {n} frames")
        for i in rng.choice(candidates, opts.torn_frames, replace=False):
            artifact[i] = rng.integers(1, 3)
            start = int(rng.integers(height // 6, height * 3 // 4))
            stop = height if artifact[i] == 2 else min(height, start + int(rng.integers(4, max(5, height // 8))))
            rows[i] = (start, stop, int(rng.choice([-1, 1]) * rng.integers(8, 30)))
    if opts.partial_frames:
        if not planet:
            raise ValueError("partial frames need a planet scene (jupiter or saturn)")
        free = np.setdiff1d(candidates, np.flatnonzero(artifact))
        if opts.partial_frames > len(free):
            raise ValueError(f"partial_frames={opts.partial_frames} exceeds the frames available")
        radius = opts.planet_diameter * width / 2
        for i in rng.choice(free, opts.partial_frames, replace=False):
            axis, sign = int(rng.integers(0, 2)), float(rng.choice([-1.0, 1.0]))
            shifts[i, axis] += sign * ((height, width)[axis] / 2 - 0.5 * radius)
            partial[i] = True
    return Conditions(shifts, local.astype(np.float32), blur, blur_grid.astype(np.float32), seeing,
                      brightness, artifact, rows, partial)
