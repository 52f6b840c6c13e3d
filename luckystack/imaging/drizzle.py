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
patch is ``Ky @ P @ Kx.T`` with 1-D overlap matrices. Bayer drizzle puts each colour-filter sample into
its own colour plane only (no demosaicing): four matrix products per patch, one per CFA phase.
"""

from __future__ import annotations

from collections.abc import Iterator

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


def drizzle_patch(frame: np.ndarray, origin: tuple[int, int], shape: tuple[int, int],
                  offset: tuple[float, float], zoom: float, pixfrac: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Drizzle ``frame`` (H, W, C) onto the patch grid; returns ``(num, den)``, each (ny, nx, C)."""
    h, w, c = frame.shape
    ky, y0 = overlap_matrix(shape[0], origin[0], offset[0], zoom, pixfrac, h)
    kx, x0 = overlap_matrix(shape[1], origin[1], offset[1], zoom, pixfrac, w)
    block = frame[y0:y0 + ky.shape[1], x0:x0 + kx.shape[1]].astype(np.float64)
    rows = (ky @ block.reshape(ky.shape[1], kx.shape[1] * c)).reshape(shape[0], kx.shape[1], c)
    num = np.einsum("ujc,vj->uvc", rows, kx, optimize=True)
    den = np.outer(ky.sum(1), kx.sum(1))[:, :, None]
    return num, np.broadcast_to(den, num.shape)


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
