"""Smooth random fields: cubic B-spline fields on a coarse grid, and fractal noise.

A B-spline field is defined by coefficients ``grid`` (gy, gx, ...) with knot spacing ``cell`` px: the value
at (y, x) is ``sum_jk grid[j, k] * B(y / cell + PAD - j) * B(x / cell + PAD - k)`` with B the centred cubic
B-spline. It is C2-smooth, exact to evaluate anywhere (also outside the frame, where it decays to zero) and
separable, so evaluating it on a regular grid is two small matrix products.
"""

from __future__ import annotations

import cv2
import numpy as np

PAD = 2  # knots before position 0, so the field is fully supported over the frame and a margin
BSPLINE_SQUARED_MEAN = 151.0 / 315.0  # mean over positions of sum_j B(t - j)^2, per axis


def bspline(u: np.ndarray) -> np.ndarray:
    """Centred cubic B-spline B(u), support (-2, 2)."""
    a = np.abs(u)
    return np.where(a < 1, 2.0 / 3.0 - a * a + 0.5 * a**3, np.where(a < 2, (2.0 - a) ** 3 / 6.0, 0.0))


def bspline_derivative(u: np.ndarray) -> np.ndarray:
    """dB/du of the centred cubic B-spline."""
    a = np.abs(u)
    s = np.sign(u)
    return np.where(a < 1, s * (-2.0 * a + 1.5 * a * a), np.where(a < 2, -s * 0.5 * (2.0 - a) ** 2, 0.0))


def grid_size(length: int, cell: float) -> int:
    """Number of knots along an axis of ``length`` px so the field covers it plus a margin of one cell."""
    return int(np.floor((length - 1) / cell)) + 2 * PAD + 1


def basis_matrix(coords: np.ndarray, cell: float, n: int, derivative: bool = False) -> np.ndarray:
    """(len(coords), n) weights of each knot at each coordinate (d/dcoord if ``derivative``)."""
    t = np.asarray(coords, dtype=np.float64)[:, None] / cell + PAD - np.arange(n)[None, :]
    return bspline_derivative(t) / cell if derivative else bspline(t)


def evaluate_on_grid(grid: np.ndarray, cell: float, ys: np.ndarray, xs: np.ndarray,
                     dy: bool = False, dx: bool = False) -> np.ndarray:
    """The field (or a first derivative) at all (ys[i], xs[j]): shape (len(ys), len(xs), *grid.shape[2:])."""
    by = basis_matrix(ys, cell, grid.shape[0], dy)
    bx = basis_matrix(xs, cell, grid.shape[1], dx)
    rows = np.tensordot(by, grid, axes=(1, 0))  # (ny, gx, ...)
    return np.moveaxis(np.tensordot(rows, bx, axes=(1, 1)), -1, 1)


def evaluate_at(grid: np.ndarray, cell: float, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The field at scattered points (y, x) (broadcast together): shape (*y.shape, *grid.shape[2:])."""
    y, x = np.broadcast_arrays(np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64))
    by = basis_matrix(y.ravel(), cell, grid.shape[0])
    bx = basis_matrix(x.ravel(), cell, grid.shape[1])
    out = np.einsum("pj,jk...,pk->p...", by, grid, bx, optimize=True)
    return out.reshape(y.shape + grid.shape[2:])


def coefficient_std(rms: float) -> float:
    """Coefficient std that gives a 2-D B-spline field of about ``rms`` (per component)."""
    return rms / BSPLINE_SQUARED_MEAN


def ar1_grids(rng: np.random.Generator, n: int, shape: tuple[int, ...], std: float, rho: float) -> np.ndarray:
    """(n, *shape) coefficient grids evolving as an AR(1) process in time (stationary, std ``std``)."""
    out = np.empty((n,) + shape, dtype=np.float64)
    innovation = np.sqrt(max(0.0, 1.0 - rho * rho))
    current = rng.standard_normal(shape)
    for i in range(n):
        if i:
            current = rho * current + innovation * rng.standard_normal(shape)
        out[i] = current
    return out * std


def ar1_series(rng: np.random.Generator, n: int, rho: float) -> np.ndarray:
    """A stationary unit-variance AR(1) series of length n."""
    return ar1_grids(rng, n, (), 1.0, rho)


def fractal_noise(rng: np.random.Generator, height: int, width: int, scale: float, octaves: int = 4,
                  persistence: float = 0.5, aspect: float = 1.0) -> np.ndarray:
    """Zero-mean, unit-std multi-octave value noise (float32): features about ``scale`` px tall and
    ``scale * aspect`` px wide at the coarsest octave, halving each octave."""
    total = np.zeros((height, width), dtype=np.float32)
    amplitude = 1.0
    for octave in range(octaves):
        sy = max(scale / 2**octave, 1.0)
        sx = max(scale * aspect / 2**octave, 1.0)
        gy, gx = int(np.ceil(height / sy)) + 3, int(np.ceil(width / sx)) + 3
        coarse = rng.standard_normal((gy, gx)).astype(np.float32)
        up = cv2.resize(coarse, (int(round(gx * sx)), int(round(gy * sy))), interpolation=cv2.INTER_CUBIC)
        total += amplitude * up[sy.__ceil__():sy.__ceil__() + height, sx.__ceil__():sx.__ceil__() + width]
        amplitude *= persistence
    total -= total.mean()
    std = float(total.std())
    return total / std if std > 0 else total
