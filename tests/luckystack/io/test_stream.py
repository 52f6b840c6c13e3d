"""Streams: selection, ROI, Bayer pattern under an odd ROI, pickling, batch reads, speed."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest

from luckystack.imaging.debayer import colour_masks
from luckystack.io.recording import describe, select_frames
from luckystack.io.ser_format import SerHeader, write_ser
from luckystack.io.stream import open_stream


def ser(tmp_path, frames, layout="mono"):
    path = tmp_path / "rec.ser"
    write_ser(path, frames, SerHeader(frames.shape[2], frames.shape[1], layout=layout))
    return path


def stream(path, **kw):
    meta, arrays, _ = describe(path, **kw)
    return open_stream(meta, arrays, path), meta, arrays


def test_selection_roi_and_batch_reads(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (10, 30, 40), dtype=np.uint8)
    path = ser(tmp_path, frames)
    s, meta, arrays = stream(path, first=1, last=8, step=2, drop=[5], roi=(3, 4, 20, 10))
    np.testing.assert_array_equal(arrays["frame_index"], [1, 3, 7])
    assert (s.count, s.height, s.width, s.channels) == (3, 10, 20, 1)
    for i, k in enumerate([1, 3, 7]):
        np.testing.assert_array_equal(np.round(s.read(i)[..., 0] * 255), frames[k, 4:14, 3:23])
    many = s.read_mono_many([2, 0])
    np.testing.assert_array_equal(many[0], s.read_mono(2))
    clone = pickle.loads(pickle.dumps(s))
    np.testing.assert_array_equal(clone.read_mono(1), s.read_mono(1))
    with pytest.raises(IndexError):
        s.read(3)


@pytest.mark.parametrize("bad", [dict(first=10), dict(first=5, last=2), dict(drop=list(range(10))),
                                 dict(roi=(30, 0, 20, 10))])
def test_bad_selection_is_a_clear_error(tmp_path, bad):
    path = ser(tmp_path, np.zeros((10, 30, 40), np.uint8))
    with pytest.raises(ValueError):
        describe(path, **bad)


def test_select_frames_default_is_everything():
    np.testing.assert_array_equal(select_frames(4), [0, 1, 2, 3])


def test_odd_roi_shifts_the_bayer_pattern_and_debayers_correctly(tmp_path):
    h, w = 32, 40
    rgb = np.zeros((h, w, 3), np.float64)
    rgb[...] = [200, 120, 40]  # a flat colour: any correct demosaic returns it exactly
    m = colour_masks("RGGB", h, w)
    cfa = (rgb[..., 0] * m["R"] + rgb[..., 1] * m["G"] + rgb[..., 2] * m["B"]).astype(np.uint8)
    path = ser(tmp_path, np.stack([cfa, cfa]), layout="RGGB")
    for method in ("bilinear", "malvar"):
        s, meta, _ = stream(path, roi=(1, 1, 20, 16), debayer_method=method)
        assert meta["layout"] == "BGGR"
        np.testing.assert_allclose(s.read(0) * 255, np.broadcast_to([200, 120, 40], (16, 20, 3)), atol=1e-3)
        np.testing.assert_allclose(s.read_mono(0) * 255, (200 + 2 * 120 + 40) / 4, atol=1e-3)
        np.testing.assert_array_equal(np.round(s.read_cfa(0) * 255), cfa[1:17, 1:21])


def test_read_speed_8bit_mono_640x480(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (8, 480, 640), dtype=np.uint8)
    s, _, _ = stream(ser(tmp_path, frames))
    s.read_mono(0)
    t = time.perf_counter()
    for k in range(200):
        s.read_mono(k % 8)
    per_frame = (time.perf_counter() - t) / 200
    assert per_frame < 2e-3  # typically ~0.1 ms; loose bound for a shared, busy machine


@pytest.mark.parametrize("layout, depth", [("mono", np.uint8), ("mono", np.uint16), ("RGB", np.uint8),
                                           ("RGGB", np.uint8)])
def test_a_box_reads_the_same_values_as_the_whole_frame(tmp_path, layout, depth):
    rng = np.random.default_rng(1)
    shape = (3, 24, 36, 3) if layout == "RGB" else (3, 24, 36)
    frames = rng.integers(0, np.iinfo(depth).max, shape, dtype=depth)
    s, _, _ = stream(ser(tmp_path, frames, layout), roi=(2, 3, 30, 18))
    for box in ((0, 18, 0, 30), (5, 11, 7, 20), (17, 18, 29, 30)):
        top, bottom, left, right = box
        np.testing.assert_array_equal(s.read(2, box), s.read(2)[top:bottom, left:right])
        np.testing.assert_array_equal(s.read_mono(2, box), s.read_mono(2)[top:bottom, left:right])
    with pytest.raises(IndexError):
        s.read(3, (0, 1, 0, 1))


@pytest.mark.parametrize("layout", ["mono", "RGB", "BGR"])
def test_8bit_frames_scale_to_the_product_of_sample_and_scale(tmp_path, layout):
    """8-bit frames, whole or a box, are the float32 products of sample and scale (in RGB order)."""
    rng = np.random.default_rng(2)
    shape = (2, 20, 30) if layout == "mono" else (2, 20, 30, 3)
    frames = rng.integers(0, 256, shape, dtype=np.uint8)
    frames[0, 0, :2] = np.array([0, 255]).reshape((2,) + (1,) * (frames.ndim - 3))  # both ends of the range
    s, meta, _ = stream(ser(tmp_path, frames, layout), roi=(1, 2, 25, 16))
    scale = np.float32(meta["scale"])
    for i in range(2):
        raw = frames[i, 2:18, 1:26]
        want = np.multiply(raw[..., ::-1] if layout == "BGR" else raw, scale, dtype=np.float32)  # as RGB
        got = s.read(i)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want if layout != "mono" else want[..., None])
        np.testing.assert_array_equal(s.read(i, (3, 9, 4, 20)), got[3:9, 4:20])
