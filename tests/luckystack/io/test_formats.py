"""AVI, FITS cubes and TIFF/PNG/FITS folders read back bit-exact; folder errors are clear."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from astropy.io import fits

from luckystack.io.folder import natural_key
from luckystack.io.recording import describe
from luckystack.io.stream import open_stream


def open_path(path: Path, **kw):
    meta, arrays, notes = describe(path, **kw)
    return open_stream(meta, arrays, path), meta


def frames_u8(n=3, h=20, w=24, planes=1, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, h, w) + ((3,) if planes == 3 else ()), dtype=np.uint8)


def as_ints(x: np.ndarray, peak: int) -> np.ndarray:
    return np.round(x * peak).astype(np.int64)


@pytest.mark.parametrize("fourcc,colour", [("Y800", False), ("FFV1", True)])
def test_avi_is_decoded_into_an_array_and_read_back_exactly(tmp_path, fourcc, colour):
    frames = frames_u8(4, 48, 64, 3 if colour else 1)
    path = tmp_path / "rec.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25, (64, 48), isColor=colour)
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR) if colour else f)
    writer.release()
    s, meta = open_path(path)
    assert meta["format"] == "avi" and s.count == 4 and s.layout == ("RGB" if colour else "mono")
    for i in range(4):
        np.testing.assert_array_equal(as_ints(s.read(i), 255), frames[i].reshape(s.read(i).shape))


def test_fits_cube_uint16_and_float_with_nan(tmp_path):
    cube = np.random.default_rng(2).integers(0, 4096, (3, 16, 20)).astype(np.uint16)
    fits.PrimaryHDU(cube).writeto(tmp_path / "cube.fits")
    s, meta = open_path(tmp_path / "cube.fits")
    assert (s.count, meta["bit_depth"], meta["format"]) == (3, 12, "fits")
    for i in range(3):
        np.testing.assert_array_equal(as_ints(s.read_mono(i), 4095), cube[i])
    fcube = cube.astype(np.float32) / 4095
    fcube[1, 5, 5] = np.nan
    fits.PrimaryHDU(fcube).writeto(tmp_path / "float.fits")
    s, meta = open_path(tmp_path / "float.fits")
    np.testing.assert_array_equal(s.read_mono(0), fcube[0])
    f1 = s.read_mono(1)
    around = fcube[1, 4:7, 4:7]  # a NaN takes the mean of its finite neighbours, never the frame's median
    assert np.all(np.isfinite(f1)) and f1[5, 5] == pytest.approx(np.nanmean(around))


def test_fits_tiff_png_folders_in_natural_order(tmp_path):
    frames16 = np.random.default_rng(3).integers(0, 65536, (11, 10, 12)).astype(np.uint16)
    for kind in ("fits", "tiff"):
        folder = tmp_path / kind
        folder.mkdir()
        for i, f in enumerate(frames16):
            if kind == "fits":
                fits.PrimaryHDU(f).writeto(folder / f"frame{i}.fits")
            else:
                tifffile.imwrite(folder / f"frame{i}.tif", f)
        (folder / "notes.txt").write_text("ignored")
        s, meta = open_path(folder, bit_depth=16)
        assert s.count == 11 and meta["source"]["names"][2] == ("frame2." + ("fits" if kind == "fits" else "tif"))
        for i in (0, 2, 10):  # frame10 must not come before frame2
            np.testing.assert_array_equal(as_ints(s.read_mono(i), 65535), frames16[i])
    colour = frames_u8(3, 10, 12, 3)
    folder = tmp_path / "png"
    folder.mkdir()
    for i, f in enumerate(colour):
        cv2.imwrite(str(folder / f"img_{i}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    s, meta = open_path(folder)
    assert s.layout == "RGB"
    for i in range(3):
        np.testing.assert_array_equal(as_ints(s.read(i), 255), colour[i])
    clone = pickle.loads(pickle.dumps(s))
    np.testing.assert_array_equal(clone.read(2), s.read(2))


def test_natural_sort():
    assert sorted(["f10.png", "f2.png", "f1.png"], key=natural_key) == ["f1.png", "f2.png", "f10.png"]


def test_empty_and_mismatched_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no TIFF, PNG or FITS images"):
        describe(tmp_path / "empty")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    cv2.imwrite(str(mixed / "a1.png"), np.zeros((10, 12), np.uint8))
    cv2.imwrite(str(mixed / "a2.png"), np.zeros((10, 14), np.uint8))
    with pytest.raises(ValueError, match="different sizes: a1.png is 12x10, a2.png is 14x10"):
        describe(mixed)


def _grey_scene(n=4, h=96, w=128, seed=3):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    return [np.clip(110 + 70 * np.sin(x / 6.0 + i) * np.cos(y / 8.0) + rng.normal(0, 6, x.shape), 0, 255)
            .astype(np.uint8) for i in range(n)]


@pytest.mark.parametrize("fourcc,exact", [("FFV1", True), ("MJPG", False)])
def test_grey_avi_stored_as_bgr_is_read_as_mono_and_info_says_so(tmp_path, fourcc, exact):
    from luckystack.info import describe as info

    grey = _grey_scene()
    path = tmp_path / "moon.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25, (128, 96), isColor=True)
    for g in grey:
        writer.write(cv2.cvtColor(g, cv2.COLOR_GRAY2BGR))  # what many capture programs do with a mono camera
    writer.release()
    s, meta = open_path(path)
    assert (s.layout, s.channels, meta["source_layout"], meta["stored_as"]) == ("mono", 1, "mono", "BGR")
    assert any("stored as BGR" in n and "mono" in n for n in meta["notes"])
    cap = cv2.VideoCapture(str(path))
    for i, g in enumerate(grey):
        got = as_ints(s.read(i)[..., 0], 255)
        decoded = cap.read()[1]
        spread = int(np.abs(decoded.astype(int) - decoded[..., 1:2]).max())
        assert spread == 0 if exact else spread <= 4  # lossy coding may leave the channels a little apart
        np.testing.assert_array_equal(got, cv2.cvtColor(decoded, cv2.COLOR_BGR2GRAY))  # the luma
        if exact:
            np.testing.assert_array_equal(got, g)
    text = info(path)
    assert "layout:      mono (grey frames stored as BGR)" in text and "read and stacked as mono" in text


@pytest.mark.parametrize("fourcc", ["FFV1", "MJPG"])
def test_a_faintly_coloured_avi_stays_colour(tmp_path, fourcc):
    path = tmp_path / "jupiter.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25, (128, 96), isColor=True)
    for g in _grey_scene():
        writer.write(np.clip(np.stack([g * 0.96, g, g * 1.04], axis=-1), 0, 255).astype(np.uint8))  # a 4 % tint
    writer.release()
    s, meta = open_path(path)
    assert (s.layout, s.channels, meta["stored_as"]) == ("RGB", 3, None)
    assert not any("mono" in n for n in meta["notes"])


def test_grey_ser_stored_as_rgb_reads_one_plane(tmp_path):
    from luckystack.io.ser_format import SerHeader, write_ser

    grey = np.stack(_grey_scene(5))
    path = tmp_path / "grey.ser"
    write_ser(path, [np.repeat(g[..., None], 3, axis=2) for g in grey], SerHeader(128, 96, layout="BGR"))
    s, meta = open_path(path)
    assert (s.layout, s.channels, meta["stored_as"]) == ("mono", 1, "BGR")
    for i in range(5):
        np.testing.assert_array_equal(as_ints(s.read_mono(i), 255), grey[i])
        samples, factor = s.read_samples(i, (10, 50, 20, 90))
        assert samples.dtype == np.uint8 and factor == pytest.approx(1 / 255)
        np.testing.assert_array_equal(samples, grey[i, 10:50, 20:90])
    colour = grey[..., None].repeat(3, axis=3)
    colour[3, 40, 50, 2] += 1  # one sample of one frame differs: a colour recording
    write_ser(path, colour, SerHeader(128, 96, layout="RGB"))
    s, meta = open_path(path)
    assert (s.layout, meta["stored_as"]) == ("RGB", None)


def test_a_video_is_described_from_its_first_frames_without_decoding_it_all(tmp_path):
    from luckystack.info import describe as info
    from luckystack.io.recording import SAMPLE_FRAMES

    path = tmp_path / "long.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 25, (128, 96), isColor=True)
    for g in _grey_scene(12):
        writer.write(cv2.cvtColor(g, cv2.COLOR_GRAY2BGR))
    writer.release()
    meta, arrays, _ = describe(path, decode=False)
    assert arrays["raw"].shape[0] == SAMPLE_FRAMES < 12 and meta["recording_frames"] == 12
    assert (meta["layout"], meta["bit_depth"]) == ("mono", 8)
    assert "frames:      12 (as the video announces them)" in info(path)
