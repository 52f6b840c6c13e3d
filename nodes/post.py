"""The ``post`` node: RGB align, optional sharpening (an extra output), and the image files.

The unsharpened (RGB-aligned) stack is always the main product (``image_{label}``); sharpening adds
``sharp_{label}``. The export writes ``<out_dir>/<label>/<stem>_<label>_ap<size>[_d<z>][_sharp].<ext>``.
Maths: :mod:`luckystack.imaging.rgb_align`, :mod:`luckystack.imaging.sharpen`, :mod:`luckystack.export`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from luckystack import __version__
from luckystack.export import output_name, write_image, write_preview
from luckystack.graph.node import Context, NodeError, Params, Port, Result, node_type
from luckystack.imaging.rgb_align import align_rgb
from luckystack.imaging.sharpen import richardson_lucy, unsharp_mask, wavelet_sharpen


class PostParams(Params):
    rgb_align: Literal["auto", "on", "off"] = Field(
        "auto", description="Register red and blue to green (auto: for colour images).")
    sharpen: Literal["none", "unsharp", "wavelet", "deconvolve"] = Field(
        "none", description="Sharpening for the extra `_sharp` output; none by default.")
    unsharp_sigma: float = Field(1.5, gt=0, le=20, description="Unsharp mask Gaussian sigma (px).")
    unsharp_amount: float = Field(1.0, ge=0, le=20, description="Unsharp mask strength.")
    wavelet_amounts: list[Annotated[float, Field(ge=0, le=20)]] = Field(
        [2.0, 1.5, 1.0, 1.0], min_length=1, max_length=8,
        description="Gain per à trous layer, finest first (1 = unchanged).")
    wavelet_denoise: list[Annotated[float, Field(ge=0, le=20)]] = Field(
        [0.0, 0.0, 0.0, 0.0], min_length=1, max_length=8,
        description="Soft threshold per layer in noise sigmas (0 = none).")
    deconvolve_sigma: float = Field(1.5, gt=0, le=20, description="Gaussian PSF sigma for Richardson–Lucy.")
    deconvolve_iterations: int = Field(30, ge=1, le=500, description="Richardson–Lucy iterations.")
    formats: list[Literal["tiff", "png", "fits"]] = Field(
        ["tiff"], min_length=1, max_length=3, description="Files to write: 16-bit TIFF, 16-bit PNG, 32-bit float FITS.")
    preview: bool = Field(False, description="Also write an auto-stretched 8-bit PNG preview per image.")

    @model_validator(mode="after")
    def _check(self):
        if len(self.wavelet_amounts) != len(self.wavelet_denoise):
            raise ValueError("wavelet_amounts and wavelet_denoise need the same number of layers")
        if not self.formats:
            raise ValueError("give at least one output format")
        return self


MIN_STACK = 3  # fewer frames per AP average too little noise away to be called a stack


def size_warnings(sizes: list[dict[str, Any]]) -> list[str]:
    """Warnings about stack sizes that are too small to be stacks or that take the same frames as another
    size (a short recording: [10, 25, 50] % of 2 frames is 1 frame each)."""
    out = []
    small = [s for s in sizes if s.get("frames") is not None and s["frames"] < MIN_STACK]
    if small:
        out.append(", ".join(f"{s['label']} stacks {s['frames']} frame{'s' if s['frames'] != 1 else ''}"
                             for s in small)
                   + f" per AP: fewer than {MIN_STACK} frames barely reduce noise; record more frames or "
                     "stack a larger share")
    by_count: dict[tuple[int, Any], list[str]] = {}
    for s in sizes:
        if s.get("frames") is not None:  # candidates at several Fourier powers share their frames, not their image
            by_count.setdefault((int(s["frames"]), s.get("power")), []).append(s["label"])
    for (count, _), labels in by_count.items():
        if len(labels) > 1:
            out.append(f"stack sizes {' and '.join(labels)} take the same {count} frame(s) per AP: "
                       "their images are the same")
    return out


def _utc(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _recording_meta(frames: Result | None) -> dict[str, Any]:
    """Scalar capture metadata of the recording (for FITS headers), with ``date_obs`` and ``date_end``:
    the UTC times of the first and last frames selected, from the recording's timestamps."""
    if frames is None:
        return {}
    out: dict[str, Any] = {}
    meta = dict(frames.meta)
    meta.pop("stream", None)
    for source in (meta, meta.get("capture") or {}):
        for k, v in source.items():
            if isinstance(v, (bool, int, float, str)):
                out[k] = v
    if "timestamp" in frames.arrays:
        times = np.asarray(frames.array("timestamp"), np.float64)
        times = times[np.isfinite(times) & (times > 0)]
        if times.size:
            out["date_obs"], out["date_end"] = _utc(float(times.min())), _utc(float(times.max()))
    return out


def _history(meta: Mapping[str, Any], label: str, frames: int | None, sharp: bool, p: PostParams) -> list[str]:
    """The main settings of an image, one readable line each, for the FITS HISTORY."""
    rec = meta.get("recording", {})
    lines = [f"Stacked by luckystack {__version__} (lucky imaging, per-AP frame selection)"]
    total = rec.get("count")
    lines.append(f"Stack size {label}: the best {frames} frames per alignment point"
                 + (f" of {total} frames" if total else ""))
    if meta.get("ap_size"):
        lines.append(f"Alignment point size {meta['ap_size']} px")
    if meta.get("drizzle", 1.0) != 1:
        lines.append(f"Drizzle {meta['drizzle']:g}x")
    if meta.get("rgb_offsets", {}).get(label):
        (ry, rx), (by, bx) = meta["rgb_offsets"][label]
        lines.append(f"RGB aligned: red shifted by ({ry:+.2f}, {rx:+.2f}) px, blue by ({by:+.2f}, {bx:+.2f}) px")
    lines.append(f"Sharpened: {p.sharpen}" if sharp else "Not sharpened")
    if rec.get("bit_depth"):
        lines.append(f"Recording: {rec.get('format', '')} {rec.get('layout', '')} {rec['bit_depth']}-bit, "
                     "values scaled so 1.0 is the largest the recording could hold")
    return lines


def sharpen_image(image: np.ndarray, p: PostParams) -> np.ndarray:
    """Apply the sharpening the params ask for."""
    if p.sharpen == "unsharp":
        return unsharp_mask(image, p.unsharp_sigma, p.unsharp_amount)
    if p.sharpen == "wavelet":
        return wavelet_sharpen(image, p.wavelet_amounts, p.wavelet_denoise)
    return richardson_lucy(image, p.deconvolve_sigma, p.deconvolve_iterations)


def export_images(results: Mapping[str, Result], params: PostParams, out_dir: Path, stem: str) -> list[Path]:
    """Write every image of the post result; one folder per stack size."""
    res = results["images"]
    meta = res.meta
    written = []
    for label in meta["labels"]:
        folder = Path(out_dir) / label
        frames = next((s["frames"] for s in meta.get("sizes", []) if s["label"] == label), None)
        rec = meta.get("recording", {})
        info = {key: rec.get(key) for key in ("date_obs", "date_end", "instrument", "telescope", "observer")}
        info.update({"stack": label, "ncombine": frames, "program": f"luckystack {__version__}"})
        for key, sharp in ((f"image_{label}", False), (f"sharp_{label}", True)):
            if key not in res.arrays:
                continue
            img = res.array(key)
            for fmt in params.formats:
                name = output_name(stem, label, meta.get("ap_size"), meta.get("drizzle", 1.0), sharp, fmt)
                written.append(write_image(folder / name, img, fmt,
                                           {**info, "history": _history(meta, label, frames, sharp, params)}))
            if params.preview:
                name = output_name(stem, label, meta.get("ap_size"), meta.get("drizzle", 1.0), sharp, "png")
                written.append(write_preview(folder / name.replace(".png", "_preview.png"), img))
    return written


@node_type("post", params=PostParams, outputs={"images": "final-images"}, version="3",
           export=export_images,
           inputs={"images": Port(doc="the merge node's result", kind="images"),
                   "frames": Port(required=False, doc="reader/calibrate result, for file metadata", kind="frames")})
def post(ctx: Context) -> Result:
    """RGB-align the merged stacks, add sharpened versions if asked, and carry metadata for export."""
    p: PostParams = ctx.params
    images = ctx.inputs["images"]
    labels = images.meta.get("labels")
    if not labels:
        raise NodeError("the images input holds no images")
    arrays: dict[str, np.ndarray] = {}
    offsets: dict[str, list] = {}
    for label in labels:
        img = images.array(f"image_{label}").astype(np.float32)
        colour = img.ndim == 3 and img.shape[2] == 3
        if p.rgb_align == "on" and not colour:
            raise NodeError("rgb_align is 'on' but the image is not colour")
        if colour and p.rgb_align != "off":
            img, off = align_rgb(img)
            offsets[label] = [[round(a, 4), round(b, 4)] for a, b in off]
        arrays[f"image_{label}"] = img
        if p.sharpen != "none":
            arrays[f"sharp_{label}"] = sharpen_image(img, p).astype(np.float32)
    for warning in size_warnings(images.meta.get("sizes") or []):
        ctx.log(warning)
    meta = dict(images.meta)
    meta.update({"sharpened": p.sharpen != "none", "rgb_offsets": offsets,
                 "recording": _recording_meta(ctx.inputs.get("frames"))})
    return Result(arrays=arrays, meta=meta)
