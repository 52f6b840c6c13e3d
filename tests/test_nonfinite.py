"""NaN and infinite pixels in float recordings: never a dark smear, always counted in a warning.

A real FITS cube of a simulated Jupiter, once clean and once with a NaN blob on the disc in every 4th
frame (and a few infinite pixels), runs through the shipped planet pipeline; the stacks must agree
where the blob was, and the run must say how many pixels were left out.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from astropy.io import fits

import luckystack.nodes  # noqa: F401  (registers the node types)
from luckystack.graph import api
from luckystack.imaging.calibration import fill_nonfinite
from luckystack.simulate import simulate
from tests.test_end_to_end import PLANET

BLOB = (slice(90, 100), slice(120, 134))  # rows, columns of the frame: on the disc
SETS = {"stack.percent": [50], "stabilize.crop": [8, 8, 230, 170]}  # the same crop for both runs


@pytest.fixture(scope="module")
def cubes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fits")
    sim = simulate("jupiter", 40, 256, 192, seed=3)
    cube = np.stack([np.asarray(f, np.float32) for f in sim.iter_frames()]) / 255.0
    fits.PrimaryHDU(cube).writeto(folder / "clean.fits")
    cube[::4, BLOB[0], BLOB[1]] = np.nan
    cube[1::4, 60, 60] = np.inf
    fits.PrimaryHDU(cube).writeto(folder / "holes.fits")
    return folder / "clean.fits", folder / "holes.fits"


def _stack(path, tmp):
    [run] = api.run(api.load_pipeline(PLANET, SETS), [path], cache=tmp / "cache", out=tmp / "out", jobs=1)
    [tif] = (tmp / "out" / path.stem / "P50").glob("*.tif")
    return run.record, tifffile.imread(tif).astype(np.float64)


def test_a_nan_blob_on_the_disc_leaves_no_smear_and_is_counted(cubes, tmp_path):
    clean, holes = cubes
    _, want = _stack(clean, tmp_path)
    record, got = _stack(holes, tmp_path)
    assert any("1410 non-finite pixels (NaN or infinity) in 20 of 40 frames were left out" in w
               for w in record.warnings()), record.warnings()
    rel = (got - want) / want.max()
    where = (slice(BLOB[0].start - 8 - 4, BLOB[0].stop - 8 + 4), slice(BLOB[1].start - 8 - 4, BLOB[1].stop - 8 + 4))
    # Before: the blob stacked 65 % of the peak darker (NaN replaced by the frame's median, the dark sky).
    assert abs(rel[where].mean()) < 0.005 and rel[where].min() > -0.05, (rel[where].mean(), rel[where].min())
    assert np.isfinite(got).all()


def test_fill_takes_the_neighbours_values_never_the_frames_median():
    rng = np.random.default_rng(0)
    plane = (0.8 + 0.05 * rng.random((40, 50))).astype(np.float32)  # a bright disc...
    plane[:, :10] = 0.01  # ...beside dark sky, which dominates no median here but would in a planet frame
    plane[15:25, 20:32] = np.nan
    plane[0, 0], plane[39, 49] = np.inf, -np.inf
    assert fill_nonfinite(plane) == 122
    assert np.isfinite(plane).all()
    assert 0.8 <= plane[15:25, 20:32].min() and plane[15:25, 20:32].max() <= 0.85


def test_fill_of_a_strided_plane_and_of_nothing_finite():
    rgb = np.ones((6, 7, 3), np.float32)
    rgb[2:4, 2:4, 1] = np.nan
    assert fill_nonfinite(rgb[..., 1]) == 4 and np.array_equal(rgb, np.ones_like(rgb))
    empty = np.full((3, 3), np.nan, np.float32)
    assert fill_nonfinite(empty) == 9 and not empty.any()
    assert fill_nonfinite(np.zeros((2, 2), np.float32)) == 0


def test_float_tiff_frames_count_pixels_and_mask_them(tmp_path):
    from luckystack.io.recording import describe
    from luckystack.io.stream import open_stream
    for i in range(3):
        frame = np.random.default_rng(i).random((12, 16, 3)).astype(np.float32)
        if i == 1:
            frame[2:4, 3:5, 0] = np.nan  # 4 pixels with one bad sample
            frame[7, 7, :] = np.inf  # 1 pixel with three
        tifffile.imwrite(tmp_path / f"f{i}.tif", frame, photometric="rgb")
    meta, arrays, notes = describe(tmp_path)
    assert meta["layout"] == "RGB" and arrays["nonfinite"].tolist() == [0, 5, 0]
    assert notes[-1].startswith("5 non-finite pixels (NaN or infinity) in 1 of 3 frames were left out")
    stream = open_stream(meta, arrays, tmp_path)
    assert np.isfinite(stream.read(1)).all() and stream.nonfinite_mask(0) is None
    mask = stream.nonfinite_mask(1)
    assert mask.sum() == 5 and mask[2:4, 3:5].all() and mask[7, 7]


@pytest.mark.parametrize("data, message", [
    (np.full((3, 8, 8), np.nan, np.float32), "every pixel of the selected frames is NaN or infinite"),
    (np.full((3, 8, 8), 1e300), "every pixel of the selected frames is NaN or infinite"),  # beyond float32
    (np.zeros((0, 8, 8), np.float32), "holds no frame (its image axes are 0 x 8 x 8)"),
])
def test_fits_cubes_with_nothing_to_stack_are_one_sentence(tmp_path, data, message):
    from luckystack.io.recording import describe
    path = tmp_path / "cube.fits"
    fits.PrimaryHDU(data).writeto(path)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        describe(path)


def test_fits_blank_samples_are_pixels_without_a_value(tmp_path):
    from luckystack.io.recording import describe
    from luckystack.io.stream import open_stream
    data = np.full((3, 8, 10), 1000, np.int16)
    data[1, 2:4, 5] = -32768
    hdu = fits.PrimaryHDU(data)
    hdu.header["BLANK"] = -32768
    hdu.writeto(tmp_path / "blank.fits")
    meta, arrays, notes = describe(tmp_path / "blank.fits")
    assert arrays["nonfinite"].tolist() == [0, 2, 0]
    assert notes[-1].startswith("2 non-finite pixels (NaN, infinity or FITS BLANK) in 1 of 3 frames")
    stream = open_stream(meta, arrays, tmp_path / "blank.fits")
    frame = stream.read_mono(1)
    assert np.all(frame == frame[0, 0]) and stream.nonfinite_mask(1).sum() == 2  # no dark spot: filled
