"""What a simulated recording really contains, saved next to it as ``<name>.truth.npz``.

Geometry and scale, precisely:

- ``image`` (H, W, C) float32 is what a perfect frame would show: no noise, no blur other than the
  telescope's (``optics_px``), no displacement (shift 0, local field 0), brightness 1, no dispersion, on
  the recording's 0..1 scale (sample value / ``full_scale``, ``full_scale = 2**bit_depth - 1``). C is 1 for
  mono, 3 (R, G, B) for colour layouts. Pixel (y, x) of the image is pixel (y, x) of the frame at zero shift.
- A feature at image position p = (y, x) appears in frame i at ``p + shifts[i] + true_displacement(i, p)``
  (plus ``dispersion[c]`` in colour plane c), the contract's convention: ``shifts`` are what stabilize
  should find, the local displacement what align should find added to it.
- Frame i's expected value (before noise) is ``brightness[i] * image`` blurred by a Gaussian of sigma
  ``true_blur(i, p)`` (a mix of ``blur[i, 0]`` and ``blur[i, 1]``) and displaced as above.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from luckystack.simulate import fields
from luckystack.simulate.conditions import ARTIFACTS, Conditions, blur_mix

ARRAYS = ("image", "shifts", "local_grid", "blur", "blur_grid", "seeing", "brightness", "artifact",
          "artifact_rows", "partial", "dispersion", "timestamps")


@dataclass
class Truth:
    image: np.ndarray  # (H, W, C) float32
    shifts: np.ndarray  # (N, 2) float64 (dy, dx) true global shift
    local_grid: np.ndarray  # (N, gy, gx, 2) float32 B-spline coefficients, knot spacing local_cell
    blur: np.ndarray  # (N, 2) float64 Gaussian sigma (px) of the best and worst parts of the field
    blur_grid: np.ndarray  # (N, by, bx) float32 B-spline coefficients of the blur mix, spacing blur_cell
    seeing: np.ndarray  # (N,) float64 effective blur sigma (px) over the frame: lower is sharper
    brightness: np.ndarray  # (N,) float64 transparency factor
    artifact: np.ndarray  # (N,) int8 ARTIFACTS code
    artifact_rows: np.ndarray  # (N, 3) int32 (first row, end row, sideways offset)
    partial: np.ndarray  # (N,) bool: the planet is cut by the frame edge
    dispersion: np.ndarray  # (C, 2) float64 extra (dy, dx) of each colour plane
    timestamps: np.ndarray  # (N,) float64 Unix seconds
    local_cell: float
    blur_cell: float
    full_scale: int
    params: dict = field(default_factory=dict)

    @classmethod
    def from_conditions(cls, image: np.ndarray, cond: Conditions, dispersion: np.ndarray,
                        timestamps: np.ndarray, local_cell: float, blur_cell: float, full_scale: int,
                        params: dict) -> Truth:
        return cls(image, cond.shifts, cond.local_grid, cond.blur, cond.blur_grid, cond.seeing,
                   cond.brightness, cond.artifact, cond.artifact_rows, cond.partial, dispersion, timestamps,
                   local_cell, blur_cell, full_scale, params)

    @property
    def frame_count(self) -> int:
        return len(self.shifts)

    @property
    def usable(self) -> np.ndarray:
        """(N,) bool: frames without artifacts and not partial."""
        return (self.artifact == 0) & ~self.partial

    def true_displacement(self, i: int, y: np.ndarray | float, x: np.ndarray | float) -> np.ndarray:
        """Local (dy, dx) of frame i at image positions (y, x) (broadcast), shape (..., 2); added to
        ``shifts[i]`` it is where the feature at (y, x) appears in frame i."""
        return fields.evaluate_at(self.local_grid[i].astype(np.float64), self.local_cell, y, x)

    def true_position(self, i: int, y: np.ndarray | float, x: np.ndarray | float) -> np.ndarray:
        """(..., 2) frame-i position of the feature at image position (y, x)."""
        d = self.true_displacement(i, y, x)
        y, x = np.broadcast_arrays(np.asarray(y, np.float64), np.asarray(x, np.float64))
        return np.stack([y, x], axis=-1) + self.shifts[i] + d

    def true_blur(self, i: int, y: np.ndarray | float, x: np.ndarray | float) -> np.ndarray:
        """Gaussian blur sigma (px) of frame i at image positions (y, x)."""
        mix = blur_mix(fields.evaluate_at(self.blur_grid[i].astype(np.float64), self.blur_cell, y, x))
        return np.sqrt(self.blur[i, 0] ** 2 * (1 - mix) + self.blur[i, 1] ** 2 * mix)

    def save(self, path: Path | str) -> Path:
        """Write the truth as an .npz (arrays + a JSON ``meta`` string)."""
        path = Path(path)
        meta = {"local_cell": self.local_cell, "blur_cell": self.blur_cell, "full_scale": self.full_scale,
                "params": self.params, "artifact_codes": ARTIFACTS}
        with open(path, "wb") as fh:
            np.savez_compressed(fh, meta=np.array(json.dumps(meta)), **{k: getattr(self, k) for k in ARRAYS})
        return path


def truth_path(path: Path | str) -> Path:
    """``<name>.truth.npz`` for ``<name>.ser`` (or the path itself if it already is one)."""
    path = Path(path)
    if path.name.endswith(".truth.npz"):
        return path
    return path.with_name(path.stem + ".truth.npz") if path.suffix.lower() == ".ser" else \
        path.with_name(path.name + ".truth.npz")


def load_truth(path: Path | str) -> Truth:
    """The truth of a simulated recording, from its .ser path or its .truth.npz path."""
    tp = truth_path(path)
    if not tp.is_file():
        raise ValueError(f"no simulation truth at {tp}")
    with np.load(tp, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        arrays = {k: data[k] for k in ARRAYS}
    return Truth(**arrays, local_cell=float(meta["local_cell"]), blur_cell=float(meta["blur_cell"]),
                 full_scale=int(meta["full_scale"]), params=meta["params"])
