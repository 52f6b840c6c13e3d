import cv2
import numpy as np
import pytest
import tifffile
from astropy.io import fits

from luckystack.export import output_name, write_image, write_preview


@pytest.fixture
def rgb():
    img = np.zeros((30, 40, 3), np.float32)
    img[..., 0] = np.linspace(0, 1, 40)[None, :]
    img[..., 1] = 0.5
    img[5, 7, 2] = 1.5  # out of range: clipped in 16-bit files, kept in FITS
    return img


def test_names_carry_settings():
    assert output_name("jupiter", "P25", 48) == "jupiter_P25_ap48.tif"
    assert output_name("moon", "F200", 64, 1.5, True, "fits") == "moon_F200_ap64_d1p5_sharp.fits"


def test_tiff_roundtrip_is_16_bit_unstretched(tmp_path, rgb):
    path = write_image(tmp_path / "a" / "x.tif", rgb, "tiff")
    back = tifffile.imread(path)
    assert back.dtype == np.uint16 and back.shape == (30, 40, 3)
    assert back[0, -1, 0] == 65535 and back[0, 0, 0] == 0 and back[3, 3, 1] == 32768
    assert back[5, 7, 2] == 65535
    mono = write_image(tmp_path / "m.tif", rgb[..., 1:2], "tiff")
    assert tifffile.imread(mono).shape == (30, 40)


def test_png_roundtrip_keeps_rgb_order(tmp_path, rgb):
    path = write_image(tmp_path / "x.png", rgb, "png")
    back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back[..., :2], np.round(np.clip(rgb[..., :2], 0, 1) * 65535))


def test_fits_is_float32_with_standard_keys(tmp_path, rgb):
    meta = {"observer": "Ann", "telescope": "C14", "instrument": "", "stack": "P25", "ncombine": 123,
            "date_obs": "2024-03-01T20:00:00.000", "program": "luckystack 1.0", "nested": {"a": 1},
            "history": ["Stack size P25: the best 123 frames per alignment point"]}
    path = write_image(tmp_path / "x.fits", rgb, "fits", meta)
    with fits.open(path) as hdul:
        data, header = hdul[0].data, hdul[0].header
        assert data.dtype == np.dtype(">f4") and data.shape == (3, 30, 40)
        np.testing.assert_array_equal(np.moveaxis(data, 0, -1)[::-1], rgb)
        assert header["OBSERVER"] == "Ann" and header["TELESCOP"] == "C14" and header["NCOMBINE"] == 123
        assert header["DATE-OBS"] == "2024-03-01T20:00:00.000" and header["PROGRAM"] == "luckystack 1.0"
        assert "INSTRUME" not in header and "NESTED" not in header  # empty and structured values left out
        assert list(header["HISTORY"]) == meta["history"]


def test_preview_is_stretched_8_bit(tmp_path):
    img = np.linspace(0.1, 0.2, 100, dtype=np.float32).reshape(10, 10, 1)
    back = cv2.imread(str(write_preview(tmp_path / "p.png", img)), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint8 and back.max() == 255 and back.min() == 0
