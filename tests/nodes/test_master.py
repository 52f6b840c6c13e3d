"""The master node: mean and median darks, streamed in chunks, identical for any job count, FITS out."""

from __future__ import annotations

import numpy as np
from astropy.io import fits

import luckystack.nodes.master  # noqa: F401
from luckystack.graph.context import run_node
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
