"""The ``calibrate`` node: adds calibration to a frames description; frames are calibrated when read.

Nothing is copied: the result is the reader's description plus small arrays (``dark`` and ``gain`` in
raw sample units over the ROI, ``bad_pixels`` (K, 2) y, x) and the pattern-noise mode, which the
stream applies per frame (see :mod:`luckystack.io.stream` for the order of operations).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from luckystack.graph.node import Context, NodeError, Params, Port, Result, node_type
from luckystack.imaging.calibration import MIN_FLAT, flat_gain, hot_pixels_from_dark, outlier_pixels
from luckystack.imaging.debayer import PATTERNS
from luckystack.io.sources import RawReader


class CalibrateParams(Params):
    hot_pixels: Literal["off", "dark", "outliers"] = Field(
        "off", description="Hot/cold pixel repair: off; from the master dark; or pixels that stand out "
                           "from their same-colour neighbours in most of a sample of frames.")
    hot_sigma: float = Field(8.0, gt=0, le=100, description="Robust sigmas above which a pixel is bad.")
    outlier_frames: int = Field(16, ge=1, le=256, description="Frames sampled for outlier detection.")
    pattern_noise: Literal["off", "rows", "columns", "both"] = Field(
        "off", description="Remove CMOS row/column offsets estimated per frame from the sky background.")
    min_flat: float = Field(MIN_FLAT, gt=0, lt=1, description="Normalised flat values below this are "
                                                              "treated as dead pixels, not divided by.")


@node_type("calibrate", params=CalibrateParams, outputs={"frames": "frames"}, version="1", inputs={
    "frames": Port(doc="the reader's frames", kind="frames"),
    "dark": Port(required=False, doc="a master dark", kind="master"),
    "flat": Port(required=False, doc="a master flat", kind="master"),
    "flat_dark": Port(required=False, doc="a master dark for the flat (bias correction)", kind="master"),
})
def calibrate(ctx: Context) -> Result:
    """Attach master dark/flat, bad pixels and pattern-noise removal to the frames description."""
    p: CalibrateParams = ctx.params
    frames = ctx.inputs["frames"]
    meta = dict(frames.meta)
    if "source" not in meta:
        raise NodeError("calibrate needs the frames of a reader node")
    nothing = (p.hot_pixels == "off" and p.pattern_noise == "off"
               and not any(k in ctx.inputs for k in ("dark", "flat", "flat_dark")))
    if nothing:
        return Result(arrays=dict(frames.arrays), meta=meta)
    arrays = dict(frames.arrays)
    dark = _master(ctx, "dark", meta)
    flat = _master(ctx, "flat", meta)
    flat_dark = _master(ctx, "flat_dark", meta)
    pattern = meta["layout"] if meta["layout"] in PATTERNS else (
        meta["source_layout"] if meta["source_layout"] in PATTERNS else None)
    bad: list[np.ndarray] = []
    if dark is not None:
        arrays["dark"] = dark
    if flat is not None:
        if flat_dark is None:
            ctx.log("the flat has no flat-dark: its bias is not removed, so the flat correction is approximate")
        try:
            gain, dead = flat_gain(flat, flat_dark, pattern, p.min_flat)
        except ValueError as exc:
            raise NodeError(str(exc)) from exc
        arrays["gain"] = gain
        bad.append(np.argwhere(dead if dead.ndim == 2 else dead.any(axis=2)).astype(np.int32))
    elif flat_dark is not None:
        ctx.log("a flat-dark was given without a flat; it is ignored")
    if p.hot_pixels == "dark":
        if dark is None:
            raise NodeError("hot_pixels='dark' needs a master dark on the dark input")
        bad.append(hot_pixels_from_dark(dark, p.hot_sigma))
    elif p.hot_pixels == "outliers":
        bad.append(_outliers(ctx, frames, meta, dark, 2 if pattern else 1))
    pixels = np.unique(np.concatenate(bad), axis=0) if bad else np.zeros((0, 2), np.int32)
    arrays["bad_pixels"] = pixels.reshape(-1, 2).astype(np.int32)
    meta["calibration"] = {"dark": dark is not None, "flat": flat is not None,
                           "flat_dark": flat_dark is not None, "hot_pixels": p.hot_pixels,
                           "bad_pixels": int(len(pixels)), "pattern_noise": p.pattern_noise}
    if len(pixels):
        ctx.log(f"{len(pixels)} bad pixels will be repaired")
    return Result(arrays=arrays, meta=meta)


def _master(ctx: Context, port: str, meta: dict) -> np.ndarray | None:
    """The master on ``port`` in the frames' raw units, cropped to the frames' ROI."""
    if port not in ctx.inputs:
        return None
    m = ctx.inputs[port]
    image = np.asarray(m.array("image"), np.float32)
    x, y, w, h = meta["roi"]
    full = (meta["full_height"], meta["full_width"])
    if image.shape[:2] == full:
        image = image[y:y + h, x:x + w]
    elif image.shape[:2] != (h, w):
        raise NodeError(f"the master on {port} is {image.shape[1]}x{image.shape[0]} but the frames are "
                        f"{full[1]}x{full[0]} (ROI {w}x{h})")
    rgb = meta["source_layout"] == "RGB"
    if rgb != (image.ndim == 3):
        raise NodeError(f"the master on {port} is {'colour' if image.ndim == 3 else 'mono'} but the frames "
                        f"are {'colour' if rgb else 'mono or raw Bayer'}")
    mm = m.meta
    if mm.get("sample") != meta["sample"]:
        image = image * np.float32(mm.get("scale", 1.0) / meta["scale"])  # via 0..1 when formats differ
    return np.ascontiguousarray(image, np.float32)


def _outliers(ctx: Context, frames: Result, meta: dict, dark: np.ndarray | None, stride: int) -> np.ndarray:
    idx = np.asarray(frames.arrays["frame_index"][...])
    ks = idx[np.unique(np.linspace(0, len(idx) - 1, min(ctx.params.outlier_frames, len(idx))).astype(int))]
    reader = RawReader(meta["source"], ctx.input_file, frames.arrays.get("raw"))
    x, y, w, h = meta["roi"]
    d = None if dark is None else (dark if dark.ndim == 2 else dark.sum(axis=2))
    samples = []
    for k in ks:
        f = np.asarray(reader.frame(int(k), (x, y, w, h)), np.float32)
        f = f.sum(axis=2) if f.ndim == 3 else f
        samples.append(f if d is None else f - d)
    return outlier_pixels(np.stack(samples), stride, ctx.params.hot_sigma)
