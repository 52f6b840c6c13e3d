"""The master node: mean and median darks, streamed in chunks, identical for any job count, FITS out."""

from __future__ import annotations

import numpy as np
from astropy.io import fits

import luckystack.nodes.master  # noqa: F401
from luckystack.graph.context import LocalContext, run_node
from luckystack.graph.node import registry
from luckystack.io.ser_format import SerHeader, write_ser
from luckystack.nodes.master import write_master_fits


def test_master_dark_mean_and_median(tmp_path):
    rng = np.random.default_rng(0)
    pattern = rng.integers(100, 140, (10, 12)).astype(np.float64)
    frames = np.clip(pattern + rng.normal(0, 3, (70, 10, 12)), 0, 4095).round().astype(np.uint16)
    frames[5, 3, 3] = 4000  # a cosmic ray in one frame
    path = tmp_path / "dark.ser"
    write_ser(path, frames, SerHeader(12, 10, pixel_depth=12))
    mean = run_node("master", {"path": path, "kind": "dark", "method": "mean"})["master"]
    np.testing.assert_allclose(mean.array("image"), frames.mean(axis=0), rtol=1e-6)
    assert mean.meta["frames"] == 70 and mean.meta["kind"] == "dark"
    med = run_node("master", {"path": path, "method": "median"}, jobs=1)["master"]
    med2 = run_node("master", {"path": path, "method": "median"}, jobs=2)["master"]
    np.testing.assert_array_equal(med.array("image"), med2.array("image"))
    assert abs(med.array("image")[3, 3] - pattern[3, 3]) < 4  # the cosmic ray is gone
    assert np.abs(med.array("image") - pattern).std() < 1.5
    out = write_master_fits(med, tmp_path / "dark.fits")
    np.testing.assert_array_equal(fits.getdata(out), med.array("image"))
    assert fits.getheader(out)["IMAGETYP"] == "master dark"


def test_a_float_dark_with_holes_is_filled_from_neighbours_and_counted(tmp_path):
    dark = np.full((6, 10, 12), 100.0, np.float32)
    dark[:, :, 6:] = 200.0  # two levels: the frame's median is no fill for either side
    dark[2, 3, 8], dark[4, 5, 2] = np.nan, np.inf
    path = tmp_path / "dark.fits"
    fits.PrimaryHDU(dark).writeto(path)
    node = registry()["master"]
    ctx = LocalContext(node.params(path=path, method="mean"), {}, None, 1, "master")
    image = node.run(ctx)["master"].array("image")
    np.testing.assert_allclose(image, dark[0])
    assert any("2 non-finite pixels (NaN or infinity) in 2 of 6 frames" in m for m in ctx.messages), ctx.messages
