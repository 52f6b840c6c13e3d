"""Sampling one frame onto an output patch grid: interpolation, drizzle, and Bayer drizzle.

Coordinates: pixel centres sit at integer positions. A patch is a ``(n_out_y, n_out_x)`` block of the
output grid, which is the stabilised crop magnified by ``zoom``; its top-left output pixel is
``origin`` (in output pixels). Output pixel ``u`` covers crop coordinates ``[u/z - 0.5, (u+1)/z - 0.5)``.
``offset`` (dy, dx) maps crop coordinates to frame coordinates: ``frame_pos = crop_pos + offset``
(crop origin + global shift + local AP shift, see the shift convention in ``luckystack.nodes``).

Every sampler returns ``(num, den)``: the weighted sum of values and the weight per output pixel and
channel, so stacks accumulate ``Σ w·num`` and ``Σ w·den`` and divide once at the end. For plain
interpolation ``den`` is ``None`` (weight 1 everywhere).

Drizzle (Fruchter & Hook 2002): every input pixel shrinks to a square drop of side ``pixfrac`` (input
pixels) centred on it, is moved by the shift, and adds its value to each output pixel in proportion
to the overlap area. For a pure translation the overlap is separable, so a frame's contribution to a
patch is ``Ky @ P @ Kx.T`` with 1-D overlap matrices; as P output pixels span exactly Q input pixels
(zoom P/Q), those matrices repeat with period P and the product is a polyphase filter of a few taps
(:func:`drizzle_patch`). Bayer drizzle puts each colour-filter sample into
its own colour plane only (no demosaicing): four matrix products per patch, one per CFA phase.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache

import cv2
import numpy as np

INTERPOLATIONS = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}

# colour plane (0=R, 1=G, 2=B) of the CFA sample at (row parity, column parity) for each layout
CFA_PLANES: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "RGGB": ((0, 1), (1, 2)),
    "GRBG": ((1, 0), (2, 1)),
    "GBRG": ((1, 2), (0, 1)),
    "BGGR": ((2, 1), (1, 0)),
}


def _cubic(d: np.ndarray, a: float = -0.75) -> np.ndarray:
    d = np.abs(d)
    return np.where(d <= 1, (a + 2) * d**3 - (a + 3) * d**2 + 1,
                    np.where(d < 2, a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a, 0.0))


def _lanczos4(d: np.ndarray) -> np.ndarray:
    return np.where(np.abs(d) < 4, np.sinc(d) * np.sinc(d / 4), 0.0)


_KERNELS = {"linear": (1, lambda d: np.clip(1 - np.abs(d), 0, None)), "cubic": (2, _cubic),
            "lanczos": (4, _lanczos4)}


TAP_STEPS = 1024  # sub-pixel positions tabulated per pixel (1/1024 px; OpenCV's warps use 1/32)


def _tap_table(interpolation: str) -> tuple[int, np.ndarray]:
    radius, kernel = _KERNELS[interpolation]
    taps = np.arange(-radius + 1, radius + 1)
    frac = np.arange(TAP_STEPS + 1)[:, None] / TAP_STEPS
    w = kernel(taps[None, :] - frac)
    return int(taps[0]), (w / w.sum(1, keepdims=True)).astype(np.float32)


_TAP_TABLES = {name: _tap_table(name) for name in _KERNELS}


def shifted_patches(frame: np.ndarray, positions: np.ndarray, shape: tuple[int, int],
                    interpolation: str = "cubic") -> np.ndarray:
    """(A, ny, nx, C) float32: ``frame`` (H, W, C) sampled at ``positions[a] + (u, v)`` (A, 2), for
    ``u`` < ny and ``v`` < nx; edges replicated.

    A sub-pixel translation is a separable FIR filter of the frame block (exact kernel weights, tabulated
    at 1/:data:`TAP_STEPS` px; no 1/32-pixel quantisation, ~4× faster than ``warpAffine``). The taps of
    all patches are looked up at once; each patch is one filter call.
    """
    positions = np.asarray(positions, np.float64).reshape(-1, 2)
    out = np.empty((len(positions), shape[0], shape[1], frame.shape[2] if frame.ndim == 3 else 1), np.float32)
    for a, patch in enumerate(_shifted(frame, positions, shape, interpolation)):
        out[a] = patch
    return out


def tap_weights(positions: np.ndarray, interpolation: str) -> tuple[np.ndarray, int, np.ndarray]:
    """The whole-pixel part of ``positions`` (A, 2) as (A, 2) ints, the offset of the first tap from it,
    and each position's (A, 2, k) kernel taps along rows and columns: the sample at ``whole + t`` is
    ``Σ_n taps[n] · frame[whole + first + n]`` along each axis."""
    whole = np.floor(positions)
    first, table = _TAP_TABLES[interpolation]
    taps = table[np.rint((positions - whole) * TAP_STEPS).astype(np.intp)]  # (A, 2, k): rows', columns'
    return whole.astype(np.intp), first, taps


def _shifted(frame: np.ndarray, positions: np.ndarray, shape: tuple[int, int],
             interpolation: str) -> Iterator[np.ndarray]:
    """Each patch of :func:`shifted_patches`, (ny, nx, C), a view of its filtered block."""
    whole, first, taps = tap_weights(positions, interpolation)
    ny, nx = shape
    reach = taps.shape[2] - 1
    for a, (iy, ix) in enumerate((whole + first).tolist()):
        block = frame_block(frame, iy, iy + ny + reach, ix, ix + nx + reach)
        filtered = cv2.sepFilter2D(block, cv2.CV_32F, taps[a, 1], taps[a, 0], anchor=(0, 0),
                                   borderType=cv2.BORDER_REPLICATE)
        yield filtered[:ny, :nx].reshape(ny, nx, -1)


def frame_block(frame: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Rows ``[y0, y1)`` and columns ``[x0, x1)`` of ``frame``, edges replicated where they lie outside
    it (a view when they do not)."""
    h, w = frame.shape[:2]
    if y0 >= 0 and x0 >= 0 and y1 <= h and x1 <= w:
        return frame[y0:y1, x0:x1]
    return cv2.copyMakeBorder(frame[max(0, y0):min(h, y1), max(0, x0):min(w, x1)],
                              max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w), cv2.BORDER_REPLICATE)


def interpolate_patch(frame: np.ndarray, origin: tuple[int, int], shape: tuple[int, int],
                      offset: tuple[float, float], zoom: float = 1.0,
                      interpolation: str = "cubic") -> np.ndarray:
    """Resample ``frame`` (H, W, C) float32 onto the patch grid; returns (ny, nx, C) float32.

    At zoom 1 a translation: :func:`shifted_patches`; otherwise ``warpAffine``. Edges are replicated,
    so a patch that pokes out of the frame is still filled.
    """
    oy, ox = origin
    c = frame.shape[2] if frame.ndim == 3 else 1
    if zoom == 1:
        return next(_shifted(frame, np.array([[oy + offset[0], ox + offset[1]]]), shape, interpolation))
    s = 1.0 / zoom
    m = np.array([[s, 0.0, (ox + 0.5) * s - 0.5 + offset[1]],
                  [0.0, s, (oy + 0.5) * s - 0.5 + offset[0]]], dtype=np.float64)
    out = cv2.warpAffine(frame, m, (shape[1], shape[0]),
                         flags=INTERPOLATIONS[interpolation] | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(shape[0], shape[1], c)


def overlap_matrix(n_out: int, origin: int, offset: float, zoom: float, pixfrac: float,
                   n_in: int) -> tuple[np.ndarray, int]:
    """1-D drizzle overlap weights ``K[u, j - j0]`` of input pixels ``j0 …`` onto ``n_out`` outputs.

    ``K[u, j]`` is the length (in output pixels) of the overlap between the drop of input pixel ``j``
    and output pixel ``u``. Only input pixels inside ``[0, n_in)`` are used. Returns ``(K, j0)``.
    """
    lo = origin / zoom - 0.5 + offset - pixfrac / 2 - 1
    hi = (origin + n_out) / zoom - 0.5 + offset + pixfrac / 2 + 1
    j0 = max(0, int(np.floor(lo)))
    j1 = min(n_in, int(np.ceil(hi)) + 1)
    if j1 <= j0:
        return np.zeros((n_out, 0)), j0
    j = np.arange(j0, j1, dtype=np.float64)
    a = (j - offset + 0.5 - pixfrac / 2) * zoom - origin  # drop edges in patch output coordinates
    b = a + pixfrac * zoom
    u = np.arange(n_out, dtype=np.float64)[:, None]
    k = np.minimum(b[None, :], u + 1) - np.maximum(a[None, :], u)
    return np.clip(k, 0.0, None), j0


@lru_cache(maxsize=16)
def _ratio(zoom: float) -> tuple[int, int]:
    """``zoom`` as P/Q in lowest terms (1.5 → (3, 2)): P output pixels span Q input pixels exactly."""
    from fractions import Fraction

    f = Fraction(zoom).limit_denominator(16)
    if abs(float(f) - zoom) > 1e-9:
        raise ValueError(f"drizzle zoom {zoom} is not a ratio of small integers")
    return f.numerator, f.denominator


def phase_taps(n_out: int, origin: int, offset: float, zoom: float, pixfrac: float
               ) -> list[tuple[int, np.ndarray, int]]:
    """The 1-D drizzle weights as a polyphase filter: for each output phase ``r`` < P (zoom = P/Q), the
    first input pixel ``m0``, the taps ``w`` (float32) and the number of outputs of that phase, so that
    output pixel ``u = P·q + r`` gets ``Σ_t w[t] · in[Q·q + m0 + t]``. The overlap of a drop with an
    output pixel depends only on the phase, because P outputs span exactly Q inputs. The weights are
    those of :func:`overlap_matrix` (overlap lengths in output pixels). A handful of numbers per phase:
    plain Python floats are cheaper here than numpy's per-call overhead."""
    big_p, _ = _ratio(zoom)
    length = pixfrac * zoom
    c = (-offset + 0.5 - pixfrac / 2) * zoom - origin  # drop of input j starts at z·j + c (output coords)
    phases = []
    for r in range(big_p):
        count = max(0, -(-(n_out - r) // big_p))
        m0 = math.floor((r - c - length) / zoom)
        m1 = math.ceil((r - c + 1) / zoom)
        taps = []
        for m in range(m0, m1 + 1):
            a = zoom * m + c - r  # the drop's start relative to the output pixel
            taps.append(max(0.0, min(a + length, 1.0) - max(a, 0.0)))
        first = next((k for k, t in enumerate(taps) if t > 0), None)
        if first is None:
            phases.append((m0, np.zeros(1, np.float32), count))
            continue
        last = max(k for k, t in enumerate(taps) if t > 0)
        phases.append((m0 + first, np.array(taps[first:last + 1], np.float32), count))
    return phases


def _phase_den(phases: list[tuple[int, np.ndarray, int]], zoom: float, n_out: int, n_in: int) -> np.ndarray:
    """Per output pixel (float32), the summed overlap of the drops of input pixels inside ``[0, n_in)``:
    the phase's tap sum, except where the taps reach past the frame's edge."""
    big_p, big_q = _ratio(zoom)
    den = np.empty(n_out, np.float32)
    for r, (m0, w, count) in enumerate(phases):
        den[r::big_p] = float(w.sum())
        lo = -(-(-m0) // big_q) if m0 < 0 else 0  # first q whose taps all lie at or after pixel 0
        hi = (n_in - m0 - len(w)) // big_q  # last q whose taps all lie before pixel n_in
        for q in [*range(0, min(lo, count)), *range(max(hi + 1, 0), count)]:
            j = big_q * q + m0 + np.arange(len(w))
            den[r + big_p * q] = float(w[(j >= 0) & (j < n_in)].sum())
    return den


def drizzle_patch(frame: np.ndarray, origin: tuple[int, int], shape: tuple[int, int],
                  offset: tuple[float, float], zoom: float, pixfrac: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Drizzle ``frame`` (H, W, C) onto the patch grid; returns ``(num, den)``, each (ny, nx, C) float32.

    Computed as a polyphase filter (:func:`phase_taps`): for every pair of output phases, one separable
    FIR filter of the frame block (a few taps: the drops a pixel overlaps), read every Q-th sample. The
    same sums as ``Ky @ block @ Kx.T`` with the dense overlap matrices, in P² small filter calls instead
    of two matrix products over the whole block; pixels outside the frame add nothing to ``num`` or ``den``.
    """
    h, w, c = frame.shape
    big_p, big_q = _ratio(zoom)
    py = phase_taps(shape[0], origin[0], offset[0], zoom, pixfrac)
    px = phase_taps(shape[1], origin[1], offset[1], zoom, pixfrac)
    y0 = min(m0 for m0, _, _ in py)
    y1 = max(big_q * max(n - 1, 0) + m0 + len(t) for m0, t, n in py)
    x0 = min(m0 for m0, _, _ in px)
    x1 = max(big_q * max(n - 1, 0) + m0 + len(t) for m0, t, n in px)
    block = _zero_block(frame, y0, y1, x0, x1)
    num = np.empty((shape[0], shape[1], c), np.float32)
    for r, (my, ty, ny) in enumerate(py):
        for s, (mx, tx, nx) in enumerate(px):
            if ny == 0 or nx == 0:
                continue
            filtered = cv2.sepFilter2D(block, cv2.CV_32F, tx, ty, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
            filtered = filtered.reshape(block.shape[0], block.shape[1], c)
            num[r::big_p, s::big_p] = filtered[my - y0::big_q][:ny, mx - x0::big_q][:, :nx]
    den = _phase_den(py, zoom, shape[0], h)[:, None, None] * _phase_den(px, zoom, shape[1], w)[None, :, None]
    return num, np.broadcast_to(den, num.shape)


def _zero_block(frame: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Rows ``[y0, y1)`` and columns ``[x0, x1)`` of ``frame`` as float32, zeros outside it."""
    h, w = frame.shape[:2]
    inner = frame[max(0, y0):max(0, min(h, y1)), max(0, x0):max(0, min(w, x1))]
    if y0 >= 0 and x0 >= 0 and y1 <= h and x1 <= w:
        return np.ascontiguousarray(inner, dtype=np.float32)
    out = np.zeros((y1 - y0, x1 - x0) + frame.shape[2:], np.float32)
    if inner.size:
        out[max(0, y0) - y0:max(0, y0) - y0 + inner.shape[0], max(0, x0) - x0:max(0, x0) - x0 + inner.shape[1]] = inner
    return out


def bayer_drizzle_patch(cfa: np.ndarray, layout: str, origin: tuple[int, int], shape: tuple[int, int],
                        offset: tuple[float, float], zoom: float, pixfrac: float
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Drizzle the raw CFA frame (H, W) so each sample lands only in its own colour plane.

    Returns ``(num, den)``, each (ny, nx, 3). The CFA phase is taken in frame coordinates (before the
    shift), which is what makes the colour planes fill in as the frames move.
    """
    if layout not in CFA_PLANES:
        raise ValueError(f"Bayer drizzle needs a Bayer layout, not {layout!r}")
    h, w = cfa.shape
    ky, y0 = overlap_matrix(shape[0], origin[0], offset[0], zoom, pixfrac, h)
    kx, x0 = overlap_matrix(shape[1], origin[1], offset[1], zoom, pixfrac, w)
    block = cfa[y0:y0 + ky.shape[1], x0:x0 + kx.shape[1]].astype(np.float64)
    num = np.zeros((shape[0], shape[1], 3))
    den = np.zeros((shape[0], shape[1], 3))
    for pr in (0, 1):
        ry = ky[:, (pr - y0) % 2::2]
        for pc in (0, 1):
            rx = kx[:, (pc - x0) % 2::2]
            plane = CFA_PLANES[layout][pr][pc]
            num[:, :, plane] += ry @ block[(pr - y0) % 2::2, (pc - x0) % 2::2] @ rx.T
            den[:, :, plane] += np.outer(ry.sum(1), rx.sum(1))
    return num, den
