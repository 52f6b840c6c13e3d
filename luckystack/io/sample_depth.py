"""Detecting what 16-bit samples really hold: their byte order and their real bit depth.

Capture programs set the SER LittleEndian flag inconsistently and declare 16 bits for 10-, 12- and
14-bit data stored in either the low or the high bits. Both are decided here from a few frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STANDARD_DEPTHS = (8, 10, 12, 14, 16)


def roughness(frames: np.ndarray, step: int = 1) -> float:
    """Mean absolute difference between horizontal neighbours ``step`` apart (same CFA colour for 2)."""
    f = np.asarray(frames, dtype=np.float64)
    return float(np.mean(np.abs(f[..., :, step:] - f[..., :, :-step]))) if f.shape[-1] > step else 0.0


def detect_byte_order(samples: np.ndarray, flag_order: str, step: int = 1) -> tuple[str, bool]:
    """Pick ``"little"`` or ``"big"`` for 16-bit ``samples`` (read as little-endian) by smoothness.

    Real images change slowly between neighbours; the wrong byte order turns low-bit noise into huge
    jumps. Returns the order and whether the data decided it (False: a tie, ``flag_order`` kept).
    """
    little = np.asarray(samples, dtype="<u2")
    big = little.byteswap()
    r_little, r_big = roughness(little, step), roughness(big, step)
    if r_little == r_big:
        return flag_order, False
    return ("little" if r_little < r_big else "big"), True


@dataclass(frozen=True)
class DepthInfo:
    """The real bit depth and alignment of integer samples, and the factor that maps them to 0..1."""

    bit_depth: int  # significant bits
    shift: int  # low bits that are always zero (MSB-aligned data)
    detected: bool  # False when taken from the declaration or the caller

    @property
    def scale(self) -> float:
        """Multiply a raw sample by this to get 0..1: value / ((2**depth - 1) * 2**shift)."""
        return 1.0 / ((2 ** self.bit_depth - 1) * 2 ** self.shift)


def detect_bit_depth(samples: np.ndarray, container_bits: int, declared: int) -> DepthInfo:
    """Real depth of integer ``samples`` stored in ``container_bits`` (8 or 16), declared ``declared``.

    * 8-bit containers hold 8-bit data (the SER spec puts 1–8-bit data in the high bits).
    * MSB-aligned data (the lowest k ≥ 2 bits zero in every sample) has depth 16 − k and shift k.
    * LSB-aligned data keeps a declared depth below 16 when the values fit; otherwise the depth is the
      smallest standard depth (10, 12, 14, 16) that holds the largest sample.
    """
    if container_bits == 8:
        return DepthInfo(8, 0, False)
    s = np.asarray(samples).astype(np.uint16, copy=False)
    ored = int(np.bitwise_or.reduce(s, axis=None)) if s.size else 0
    peak = int(s.max()) if s.size else 0
    if ored:
        zeros = (ored & -ored).bit_length() - 1
        if 2 <= zeros <= 8:
            return DepthInfo(16 - zeros, zeros, True)
    if 8 < declared < 16 and peak < 2 ** declared:
        return DepthInfo(declared, 0, False)
    for d in STANDARD_DEPTHS[1:]:
        if peak < 2 ** d:
            return DepthInfo(d, 0, True)
    return DepthInfo(16, 0, True)


def float_scale(samples: np.ndarray) -> tuple[int, float]:
    """(nominal depth, scale) for float samples: data already on 0..1 is kept, else scaled by its range."""
    finite = np.asarray(samples, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    peak = float(finite.max()) if finite.size else 1.0
    if peak <= 1.5:
        return 16, 1.0
    for d in STANDARD_DEPTHS:
        if peak < 2 ** d:
            return d, 1.0 / (2 ** d - 1)
    return 32, 1.0 / peak
