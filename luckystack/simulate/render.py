"""Rendering one simulated frame: blur, displacement, brightness, noise, banding, quantisation, artifacts.

Speed matters (benchmarks make thousands of frames), so: the scene is pre-blurred once at a ladder of
Gaussian sigmas and a frame's blur is a per-pixel mix of ladder levels (mixing two Gaussians with the
variance-matching weight keeps the PSF's second moment exact); the displacement map is solved on a coarse
sub-grid and linearly upsampled (the field is smooth, so this is accurate to ~0.005 px); one cubic remap
per colour plane (per CFA phase for Bayer) does the warp; Gaussian noise comes from OpenCV's fast RNG,
seeded per frame so any frame can be rendered alone and reproducibly.
"""

from __future__ import annotations

import cv2
import numpy as np

from luckystack.simulate import fields
from luckystack.simulate.conditions import SimOptions, blur_mix
from luckystack.simulate.truth import Truth

SUBGRID = 4  # px between points where the displacement map is solved exactly
SOLVE_PAD = 4  # extra sub-grid points around the frame where d is evaluated for the solver
SOLVE_ITERATIONS = 3
CHANNELS = {"R": 0, "G": 1, "B": 2}


def blur_ladder(max_sigma: float) -> np.ndarray:
    """Sigmas of the pre-blurred levels: 0, then 0.25 px growing by sqrt(2) to at least max_sigma."""
    sigmas = [0.0, 0.25]
    while sigmas[-1] < max_sigma:
        sigmas.append(sigmas[-1] * np.sqrt(2.0))
    return np.array(sigmas)


def ladder_weights(sigmas: np.ndarray, sigma: float) -> tuple[int, float]:
    """Level k and weight a so (1-a)*level[k] + a*level[k+1] has the variance of a Gaussian of ``sigma``."""
    sigma = float(np.clip(sigma, 0.0, sigmas[-1]))
    k = int(np.clip(np.searchsorted(sigmas, sigma, side="right") - 1, 0, len(sigmas) - 2))
    lo, hi = sigmas[k] ** 2, sigmas[k + 1] ** 2
    return k, float((sigma**2 - lo) / (hi - lo))


class FrameRenderer:
    """Renders frames of a recording from its canvas (scene + margin) and its truth."""

    def __init__(self, canvas: np.ndarray, margin: int, truth: Truth, opts: SimOptions, layout: str,
                 bit_depth: int, seed: int, border_value: float | None):
        self.truth, self.opts, self.layout, self.seed = truth, opts, layout, seed
        self.margin = margin
        self.height, self.width = truth.image.shape[:2]
        self.full_scale = 2**bit_depth - 1
        self.dtype = np.uint8 if bit_depth <= 8 else np.uint16
        self.border_value = border_value
        self.sigmas = blur_ladder(float(truth.blur.max()) if len(truth.blur) else 0.0)
        planes = [canvas[..., c] for c in range(canvas.shape[2])]
        self.ladder = [[np.ascontiguousarray(p) if s == 0 else
                        cv2.GaussianBlur(p, (0, 0), s, borderType=cv2.BORDER_REFLECT) for s in self.sigmas]
                       for p in planes]
        hc, wc = canvas.shape[:2]
        nb = truth.blur_grid.shape[1:]
        self._blur_by = fields.basis_matrix(np.arange(hc) - margin, truth.blur_cell, nb[0]).astype(np.float32)
        self._blur_bx = fields.basis_matrix(np.arange(wc) - margin, truth.blur_cell, nb[1]).astype(np.float32)
        self._sub_y = SUBGRID * np.arange(self.height // SUBGRID + 3) - SUBGRID / 2 - 0.5
        self._sub_x = SUBGRID * np.arange(self.width // SUBGRID + 3) - SUBGRID / 2 - 0.5
        rng = np.random.default_rng([seed, 0xBA4D])
        self._columns = (0.5 * opts.banding * rng.standard_normal(self.width)).astype(np.float32)

    # -- geometry ---------------------------------------------------------------------------------
    def _solve(self, i: int) -> np.ndarray:
        """Image positions (x, y) on the sub-grid whose features land on the sub-grid points q of frame i:
        the solution p of ``p + shift + d(p) = q`` by fixed-point iteration, d interpolated (linear) from
        its exact values on a regular grid around ``q - shift`` (converges as |grad d|^k, ~1e-3 px)."""
        sy, sx = self.truth.shifts[i]
        pad = SUBGRID * SOLVE_PAD
        ys = np.concatenate([self._sub_y[0] - pad + SUBGRID * np.arange(SOLVE_PAD), self._sub_y,
                             self._sub_y[-1] + SUBGRID * (1 + np.arange(SOLVE_PAD))]) - sy
        xs = np.concatenate([self._sub_x[0] - pad + SUBGRID * np.arange(SOLVE_PAD), self._sub_x,
                             self._sub_x[-1] + SUBGRID * (1 + np.arange(SOLVE_PAD))]) - sx
        d = fields.evaluate_on_grid(self.truth.local_grid[i].astype(np.float64), self.truth.local_cell,
                                    ys, xs).astype(np.float32)
        inner = (slice(SOLVE_PAD, -SOLVE_PAD), slice(SOLVE_PAD, -SOLVE_PAD))
        base_y, base_x = np.meshgrid(ys[inner[0]], xs[inner[1]], indexing="ij")
        py, px = base_y - d[inner + (0,)], base_x - d[inner + (1,)]
        for _ in range(SOLVE_ITERATIONS):
            fy = ((py - ys[0]) / SUBGRID).astype(np.float32)
            fx = ((px - xs[0]) / SUBGRID).astype(np.float32)
            at = cv2.remap(d, fx, fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            py, px = base_y - at[..., 0], base_x - at[..., 1]
        return np.stack([px, py], axis=-1)

    def _upsample(self, sub: np.ndarray) -> np.ndarray:
        full = cv2.resize(sub.astype(np.float32), (sub.shape[1] * SUBGRID, sub.shape[0] * SUBGRID),
                          interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(full[SUBGRID:SUBGRID + self.height, SUBGRID:SUBGRID + self.width])

    def source_map(self, i: int) -> np.ndarray:
        """(H, W, 2) float32 image position (x, y) -- OpenCV's order -- whose feature lands on each pixel
        of frame i, without dispersion."""
        return self._upsample(self._solve(i))

    # -- image ------------------------------------------------------------------------------------
    def _blurred_plane(self, c: int, mix: np.ndarray, lo: float, hi: float, box: tuple[slice, slice]
                       ) -> np.ndarray:
        levels = [level[box] for level in self.ladder[c]]
        parts = []
        for sigma in (lo, hi):
            k, a = ladder_weights(self.sigmas, sigma)
            parts.append(levels[k] if a == 0 else cv2.addWeighted(levels[k], 1 - a, levels[k + 1], a, 0.0))
        return cv2.add(parts[0], cv2.multiply(mix, cv2.subtract(parts[1], parts[0])))

    def render(self, i: int) -> np.ndarray:
        """Frame i before brightness, noise and quantisation, on the truth's 0..1 scale: (H, W) for mono
        and Bayer (the mosaic), (H, W, 3) for RGB."""
        lo, hi = self.truth.blur[i]
        sub = self._solve(i) + self.margin
        # Blend only the part of the canvas the frame samples (cubic needs 2 px around it).
        hc, wc = self.ladder[0][0].shape
        x0, x1 = float(sub[..., 0].min()), float(sub[..., 0].max())
        y0, y1 = float(sub[..., 1].min()), float(sub[..., 1].max())
        r0, c0 = int(np.clip(np.floor(y0) - 3, 0, hc - 1)), int(np.clip(np.floor(x0) - 3, 0, wc - 1))
        r1, c1 = int(np.clip(np.ceil(y1) + 4, r0 + 1, hc)), int(np.clip(np.ceil(x1) + 4, c0 + 1, wc))
        box = (slice(r0, r1), slice(c0, c1))
        src = self._upsample(sub - np.array([c0, r0]))
        mix = blur_mix(self._blur_by[box[0]] @ self.truth.blur_grid[i] @ self._blur_bx[box[1]].T)
        if self.border_value is None:
            border, value = cv2.BORDER_REFLECT, 0.0
        else:
            border, value = cv2.BORDER_CONSTANT, self.border_value

        def warp(c: int, part: tuple[slice, slice] | None) -> np.ndarray:
            plane = self._blurred_plane(c, mix, lo, hi, box)
            dy, dx = self.truth.dispersion[c]
            where = src if part is None else src[part]
            if dy or dx:
                where = where - np.array([dx, dy], np.float32)
            return cv2.remap(plane, np.ascontiguousarray(where), None, cv2.INTER_CUBIC,
                             borderMode=border, borderValue=value)

        if self.layout == "mono":
            return warp(0, None)
        if self.layout == "RGB":
            return np.stack([warp(c, None) for c in range(3)], axis=-1)
        out = np.empty((self.height, self.width), np.float32)
        for phase, letter in enumerate(self.layout):
            part = (slice(phase // 2, None, 2), slice(phase % 2, None, 2))
            out[part] = warp(CHANNELS[letter], part)
        return out

    def frame(self, i: int) -> np.ndarray:
        """Frame i as the camera records it: uint8 or uint16 samples (LSB-aligned), artifacts included."""
        img = self.render(i) * np.float32(self.truth.brightness[i])
        opts = self.opts
        if opts.noise:
            if opts.exact_poisson:
                rng = np.random.default_rng([self.seed, i, 1])
                electrons = rng.poisson(np.maximum(img, 0) * opts.photons).astype(np.float32)
                electrons += opts.read_noise * rng.standard_normal(img.shape, dtype=np.float32)
                img = electrons / np.float32(opts.photons)
            else:
                cv2.setRNGSeed(int(np.random.SeedSequence([self.seed, i]).generate_state(1)[0] & 0x7FFFFFFF))
                gauss = np.empty(img.shape, np.float32)
                cv2.randn(gauss, 0.0, 1.0)
                variance = np.maximum(img, 0) * np.float32(opts.photons) + np.float32(opts.read_noise**2)
                img = cv2.scaleAdd(cv2.multiply(gauss, cv2.sqrt(variance)), 1.0 / opts.photons, img)
        if opts.banding:
            rows = opts.banding * np.random.default_rng([self.seed, i, 2]).standard_normal(self.height)
            offsets = rows.astype(np.float32)[:, None] + self._columns[None, :]
            img += offsets if img.ndim == 2 else offsets[..., None]
        out = np.clip(img * np.float32(self.full_scale) + np.float32(0.5), 0, self.full_scale).astype(self.dtype)
        kind = self.truth.artifact[i]
        if kind:
            start, stop, offset = self.truth.artifact_rows[i]
            if kind == 1:
                out[start:stop] = 0
            else:
                out[start:stop] = np.roll(out[start:stop], int(offset), axis=1)
        return out
