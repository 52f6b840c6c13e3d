"""FITS cubes (frames memory-mapped in place), single FITS frames, and writing master frames as FITS.

Frames keep the array order astropy reports (row 0 first); nothing is flipped, so a cube written with
astropy reads back identically.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from luckystack.io.formats import Format, Probe, register

if TYPE_CHECKING:
    from luckystack.io.sources import RawReader

FITS_SUFFIXES = (".fits", ".fit", ".fts")


def _fits():
    """astropy.io.fits, imported on first use: it takes ~0.4 s, paid by every process (joblib workers
    too) that imports the readers, though most runs never touch a FITS file."""
    from astropy.io import fits

    return fits

BITPIX_DTYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


def probe_fits_cube(path: Path) -> dict:
    """Where the frames of a FITS file are: offset, dtype, frame shape, count, scaling, header cards."""
    try:
        with _fits().open(path, memmap=False, lazy_load_hdus=True) as hdul:
            hdu = next((h for h in hdul if h.header.get("NAXIS", 0) >= 2), None)
            if hdu is None:
                raise ValueError(f"{path.name} holds no image data")
            hdr = hdu.header
            offset = int(hdu.fileinfo()["datLoc"])
    except OSError as exc:
        raise ValueError(f"{path.name} is not a readable FITS file ({exc})") from exc
    naxis = int(hdr["NAXIS"])
    dims = [int(hdr[f"NAXIS{k}"]) for k in range(naxis, 0, -1)]  # numpy order
    if naxis == 2:
        count, shape = 1, tuple(dims)
    elif naxis == 3:
        count, shape = dims[0], tuple(dims[1:])
    else:
        raise ValueError(f"{path.name} has {naxis} axes; expected a 2-D frame or a 3-D cube of frames")
    if count < 1 or min(shape) < 1:
        raise ValueError(f"{path.name} holds no frame (its image axes are {' x '.join(map(str, dims))})")
    bitpix = int(hdr["BITPIX"])
    if bitpix not in BITPIX_DTYPES:
        raise ValueError(f"{path.name} has unsupported BITPIX {bitpix}")
    bzero, bscale = float(hdr.get("BZERO", 0.0)), float(hdr.get("BSCALE", 1.0))
    blank = int(hdr["BLANK"]) if bitpix > 0 and isinstance(hdr.get("BLANK"), int) else None
    if blank is not None:
        sample = "f4"  # the samples equal to BLANK hold no value: NaN, filled and counted like a float's
    elif bitpix == 16 and bzero == 32768 and bscale == 1:
        sample = "u2"
    elif bitpix == 8 and bzero == 0 and bscale == 1:
        sample = "u1"
    else:
        sample = "f4"
    itemsize = abs(bitpix) // 8
    need = offset + count * int(np.prod(shape)) * itemsize
    size = path.stat().st_size
    if size < need:
        raise ValueError(f"{path.name} is truncated: its header announces {need} bytes, the file has {size}")
    return {
        "offset": offset, "file_dtype": BITPIX_DTYPES[bitpix], "sample": sample, "bzero": bzero,
        "bscale": bscale, "blank": blank, "count": count, "shape": list(shape),
        "meta": {k: str(hdr.get(k, "")) for k in ("OBSERVER", "INSTRUME", "TELESCOP", "DATE-OBS")},
        "bayer": str(hdr.get("BAYERPAT", "")).strip().upper(),
    }


def decode_fits_samples(raw: np.ndarray, desc: dict) -> np.ndarray:
    """Turn on-disk FITS samples into native uint8/uint16 or float32 (NaN and infinity, including
    doubles beyond float32's range, are left for the stream to fill and the reader to count)."""
    if desc["sample"] == "u2":
        return (raw.view(">u2") ^ np.uint16(0x8000)).astype(np.uint16)
    if desc["sample"] == "u1":
        return raw.astype(np.uint8)
    with np.errstate(over="ignore", invalid="ignore"):
        out = raw.astype(np.float32)
    if desc["bscale"] != 1.0:
        out *= np.float32(desc["bscale"])
    if desc["bzero"] != 0.0:
        out += np.float32(desc["bzero"])
    if desc.get("blank") is not None:
        out[raw == desc["blank"]] = np.nan
    return out


def read_fits_frame(path: Path) -> np.ndarray:
    """One 2-D (or 3×H×W colour) FITS image as a native array, (H, W) or (H, W, 3)."""
    data = _fits().getdata(path)
    if data is None:
        raise ValueError(f"{path.name} holds no image data")
    if data.ndim == 3 and data.shape[0] == 3:
        data = np.moveaxis(data, 0, -1)
    data = data.astype(np.float32) if data.dtype.kind == "f" else data.astype(data.dtype.newbyteorder("="))
    return np.ascontiguousarray(data)


def fits_image_shape(path: Path) -> tuple[int, ...]:
    """(H, W) or (H, W, 3) of a single-image FITS file, from its header only."""
    hdr = _fits().getheader(path)
    naxis = int(hdr.get("NAXIS", 0))
    dims = tuple(int(hdr[f"NAXIS{k}"]) for k in range(naxis, 0, -1))
    if naxis == 3 and dims[0] == 3:
        return dims[1:] + (3,)
    if naxis != 2:
        raise ValueError(f"{path.name} is not a single 2-D image")
    return dims


def write_fits_image(path: Path | str, image: np.ndarray, header: dict | None = None) -> Path:
    """Write a float32 image (H, W) or (H, W, C) as FITS (colour as C×H×W); return the path."""
    image = np.asarray(image, dtype=np.float32)
    data = np.moveaxis(image, -1, 0) if image.ndim == 3 else image
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    hdu = _fits().PrimaryHDU(data)
    for key, value in (header or {}).items():
        hdu.header[key[:8].upper()] = value
    path = Path(path)
    hdu.writeto(path, overwrite=True)
    return path


def probe_fits(path: Path) -> Probe:
    """A FITS cube's (or single frame's) source description: samples memory-mapped in place."""
    d = probe_fits_cube(path)
    shape = d["shape"]
    source = {"type": "fits", "offset": d["offset"], "file_dtype": d["file_dtype"], "sample": d["sample"],
              "bzero": d["bzero"], "bscale": d["bscale"], "blank": d["blank"], "frames": d["count"],
              "shape": shape}
    layout = d["bayer"] if d["bayer"] in ("RGGB", "GRBG", "GBRG", "BGGR") else "mono"
    meta = d["meta"]
    capture = {"observer": meta["OBSERVER"], "instrument": meta["INSTRUME"], "telescope": meta["TELESCOP"],
               "start_utc": meta["DATE-OBS"] or None}
    depth = {"u1": 8, "u2": 16, "f4": 32}[d["sample"]]
    return Probe(source, "fits", d["count"], shape[0], shape[1], layout, d["sample"], depth,
                 np.full(d["count"], np.nan), capture)


def read_fits_cube_frame(reader: RawReader, k: int, ys: slice, xs: slice) -> np.ndarray:
    """Frame ``k`` of a FITS cube, cropped and decoded (scaling, BLANK) from the memory map."""
    s = reader.source
    mm = reader.mapped(s["file_dtype"], s["offset"], (s["frames"], *s["shape"]))
    return decode_fits_samples(mm[k, ys, xs], s)


register(Format("FITS", FITS_SUFFIXES, probe_fits, read_fits_cube_frame, "fits"))
