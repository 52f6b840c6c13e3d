"""Writing finished images: 16-bit TIFF (default), 16-bit PNG, 32-bit float FITS, and previews.

Images are (H, W, C) float32 on the 0…1 scale of the input bit depth. The main outputs are not
stretched: 16-bit files hold ``round(value · 65535)`` clipped to 0…65535, FITS holds the float values
as they are, with standard keywords in the header (:data:`FITS_KEYS`: DATE-OBS, INSTRUME, TELESCOP,
OBSERVER, NCOMBINE, PROGRAM, ...) and the main settings as readable HISTORY lines. A separate auto-stretched 8-bit PNG preview
is for reports only.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from luckystack.graph.files import WriteFailed, write_file

FORMATS = {"tiff": ".tif", "png": ".png", "fits": ".fits"}


def output_name(stem: str, label: str, ap_size: int | None = None, drizzle: float = 1.0,
                sharpened: bool = False, fmt: str = "tiff") -> str:
    """File name carrying the key settings, e.g. ``jupiter_P25_ap48_d2_sharp.tif``."""
    parts = [stem, label]
    if ap_size:
        parts.append(f"ap{int(ap_size)}")
    if drizzle != 1:
        parts.append(f"d{drizzle:g}".replace(".", "p"))
    if sharpened:
        parts.append("sharp")
    return "_".join(parts) + FORMATS[fmt]


def to_uint16(image: np.ndarray) -> np.ndarray:
    """0…1 float → uint16, ``value · 65535`` rounded and clipped (no stretch)."""
    return np.round(np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0) * 65535.0).astype(np.uint16)


def _squeeze(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    return img[..., 0] if img.ndim == 3 and img.shape[2] == 1 else img


def write_tiff(path: Path, image: np.ndarray) -> None:
    """16-bit TIFF, RGB or greyscale."""
    import tifffile

    data = _squeeze(to_uint16(image))
    buf = io.BytesIO()
    tifffile.imwrite(buf, data, photometric="rgb" if data.ndim == 3 else "minisblack")
    write_file(path, buf.getvalue())


def write_png(path: Path, image: np.ndarray) -> None:
    """16-bit PNG (OpenCV wants BGR order)."""
    data = _squeeze(to_uint16(image))
    if data.ndim == 3:
        data = np.ascontiguousarray(data[..., ::-1])
    write_file(path, encode_png(path, data))


def encode_png(path: Path, data: np.ndarray) -> bytes:
    """PNG bytes of an image in OpenCV's channel order (``path`` names the file in an error)."""
    ok, encoded = cv2.imencode(".png", data)
    if not ok:
        raise WriteFailed(f"cannot write {path}: OpenCV cannot encode a {data.dtype} image of shape {data.shape}")
    return encoded.tobytes()


# Export metadata key → (FITS keyword, comment). Standard keywords (FITS 4.0 and the common
# conventions of capture and stacking programs) so other software reads them.
FITS_KEYS = (
    ("date_obs", "DATE-OBS", "UTC start of the first frame used"),
    ("date_end", "DATE-END", "UTC start of the last frame used"),
    ("instrument", "INSTRUME", "camera"),
    ("telescope", "TELESCOP", "telescope"),
    ("observer", "OBSERVER", "observer"),
    ("object", "OBJECT", "object"),
    ("ncombine", "NCOMBINE", "frames stacked per alignment point"),
    ("stack", "STACKSIZ", "stack size of this image"),
    ("program", "PROGRAM", "software that made this file"),
)


def _card_value(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("ascii", "replace").decode()[:68]
    if isinstance(value, np.generic):
        return value.item()
    return value


def fits_header_cards(meta: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
    """FITS cards from export metadata: the keywords of :data:`FITS_KEYS` that ``meta`` holds (empty and
    non-finite values left out), then one ``HISTORY`` card per line of ``meta["history"]``."""
    cards = []
    for key, name, comment in FITS_KEYS:
        value = meta.get(key)
        if value is None or value == "" or (isinstance(value, float) and not np.isfinite(value)):
            continue
        if isinstance(value, (bool, int, float, str, np.generic)):
            cards.append((name, _card_value(value), comment))
    for line in meta.get("history") or []:
        cards.append(("HISTORY", str(line).encode("ascii", "replace").decode(), ""))  # long lines wrap
    return cards


def write_fits(path: Path, image: np.ndarray, meta: Mapping[str, Any] | None = None) -> None:
    """32-bit float FITS; colour as a (3, H, W) cube; rows flipped so FITS viewers show it upright."""
    from astropy.io import fits

    data = _squeeze(np.asarray(image, dtype=np.float32))
    data = data[::-1] if data.ndim == 2 else np.moveaxis(data[::-1], -1, 0)
    hdu = fits.PrimaryHDU(np.ascontiguousarray(data))
    for name, value, comment in fits_header_cards(meta or {}):
        if name == "HISTORY":
            hdu.header.add_history(value)
        else:
            hdu.header[name] = (value, comment)
    hdu.header["ROWORDER"] = ("BOTTOM-UP", "first row is the image bottom")
    buf = io.BytesIO()
    hdu.writeto(buf)
    write_file(path, buf.getvalue())


def write_image(path: Path, image: np.ndarray, fmt: str = "tiff",
                meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``image`` in ``fmt`` (``tiff``, ``png`` or ``fits``); creates the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "tiff":
        write_tiff(path, image)
    elif fmt == "png":
        write_png(path, image)
    elif fmt == "fits":
        write_fits(path, image, meta)
    else:
        raise ValueError(f"unknown image format {fmt!r}; use one of {sorted(FORMATS)}")
    return path


def write_preview(path: Path, image: np.ndarray, low: float = 0.1, high: float = 99.9) -> Path:
    """8-bit PNG stretched between two percentiles, for reports (not a science product)."""
    img = _squeeze(np.asarray(image, dtype=np.float32))
    lo, hi = np.percentile(img, [low, high])
    data = np.round(np.clip((img - lo) / max(hi - lo, 1e-12), 0, 1) * 255).astype(np.uint8)
    if data.ndim == 3:
        data = np.ascontiguousarray(data[..., ::-1])
    path = Path(path)
    write_file(path, encode_png(path, data))
    return path
