"""Demosaicing raw colour-filter-array (Bayer) frames in float32, without quantising.

Two methods: ``bilinear`` (fast, soft) and ``malvar`` (Malvar, He & Cutler 2004, "High-quality linear
interpolation for demosaicing of Bayer-patterned color images": gradient-corrected 5×5 kernels, much
less colour fringing at the same cost class). Both use reflect-101 borders, which keep the CFA parity.
"""

from __future__ import annotations

import cv2
import numpy as np

PATTERNS = ("RGGB", "GRBG", "GBRG", "BGGR")
METHODS = ("bilinear", "malvar")
_BORDER = cv2.BORDER_REFLECT_101


def shift_pattern(pattern: str, dx: int, dy: int) -> str:
    """The pattern seen at the top-left of a crop starting ``dx`` columns and ``dy`` rows in."""
    p = [[pattern[0], pattern[1]], [pattern[2], pattern[3]]]
    if dx % 2:
        p = [row[::-1] for row in p]
    if dy % 2:
        p = p[::-1]
    return "".join(p[0] + p[1])


def colour_masks(pattern: str, height: int, width: int) -> dict[str, np.ndarray]:
    """float32 0/1 masks where the CFA has R, G and B."""
    masks = {c: np.zeros((height, width), np.float32) for c in "RGB"}
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        masks[pattern[k]][dy::2, dx::2] = 1.0
    return masks


_G_BILINEAR = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4
_RB_BILINEAR = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4
_LUMA = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 16

# Malvar-He-Cutler kernels (coefficients /8).
_G_AT_RB = np.array([[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0],
                     [0, 0, -1, 0, 0]], np.float32) / 8
_RB_AT_G_ROW = np.array([[0, 0, .5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1], [0, -1, 0, -1, 0],
                         [0, 0, .5, 0, 0]], np.float32) / 8  # R at G in an R row (B likewise)
_RB_AT_G_COL = _RB_AT_G_ROW.T.copy()  # R at G in an R column
_RB_AT_BR = np.array([[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5], [0, 2, 0, 2, 0],
                      [0, 0, -1.5, 0, 0]], np.float32) / 8


def cfa_luminance(cfa: np.ndarray) -> np.ndarray:
    """(R + 2G + B) / 4 at every pixel from a Bayer frame in one 3×3 filter: cheap grey for measuring."""
    return cv2.filter2D(np.asarray(cfa, np.float32), -1, _LUMA, borderType=_BORDER)


def debayer(cfa: np.ndarray, pattern: str, method: str = "bilinear",
            masks: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(H, W) float32 CFA frame → (H, W, 3) float32 RGB. ``masks`` may be cached from :func:`colour_masks`."""
    if pattern not in PATTERNS:
        raise ValueError(f"unknown Bayer pattern {pattern!r}; expected one of {', '.join(PATTERNS)}")
    cfa = np.asarray(cfa, np.float32)
    h, w = cfa.shape
    masks = masks or colour_masks(pattern, h, w)
    if method == "bilinear":
        out = np.empty((h, w, 3), np.float32)
        out[..., 0] = cv2.filter2D(cfa * masks["R"], -1, _RB_BILINEAR, borderType=_BORDER)
        out[..., 1] = cv2.filter2D(cfa * masks["G"], -1, _G_BILINEAR, borderType=_BORDER)
        out[..., 2] = cv2.filter2D(cfa * masks["B"], -1, _RB_BILINEAR, borderType=_BORDER)
        return out
    if method == "malvar":
        return _malvar(cfa, pattern, masks)
    raise ValueError(f"unknown debayer method {method!r}; expected one of {', '.join(METHODS)}")


def _malvar(cfa: np.ndarray, pattern: str, masks: dict[str, np.ndarray]) -> np.ndarray:
    estimates = {
        "G@RB": cv2.filter2D(cfa, -1, _G_AT_RB, borderType=_BORDER),
        "row": cv2.filter2D(cfa, -1, _RB_AT_G_ROW, borderType=_BORDER),
        "col": cv2.filter2D(cfa, -1, _RB_AT_G_COL, borderType=_BORDER),
        "opp": cv2.filter2D(cfa, -1, _RB_AT_BR, borderType=_BORDER),
        "cfa": cfa,
    }
    out = np.empty(cfa.shape + (3,), np.float32)
    red_row = pattern.index("R") // 2
    for k, (py, px) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        here = pattern[k]
        if here == "G":
            # Horizontal neighbours share the row: in a red row, R comes from the row kernel.
            r_src, b_src = ("row", "col") if py == red_row else ("col", "row")
            sources = (r_src, "cfa", b_src)
        elif here == "R":
            sources = ("cfa", "G@RB", "opp")
        else:
            sources = ("opp", "G@RB", "cfa")
        for c, name in enumerate(sources):
            out[py::2, px::2, c] = estimates[name][py::2, px::2]
    return out
