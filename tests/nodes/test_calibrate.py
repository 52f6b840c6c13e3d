"""The calibrate node on a synthetic recording with known dark, flat, hot pixels and banding."""

from __future__ import annotations

import numpy as np

import luckystack.nodes.calibrate  # noqa: F401
import luckystack.nodes.master  # noqa: F401
import luckystack.nodes.reader  # noqa: F401
from luckystack.graph.context import run_node
from luckystack.io.ser_format import SerHeader, write_ser
from luckystack.nodes.frames import open_frames

H, W, N = 64, 80, 6
NOISE = 2.0


def _scene():
    y, x = np.mgrid[0:H, 0:W]
    return 60 + 1500 * np.clip(1 - ((y - 32) ** 2 + (x - 40) ** 2) / 18.0 ** 2, 0, None) ** 0.5


def _setup(tmp_path, rng):
    dark = 200 + rng.normal(0, 3, (H, W))
    hot = [(10, 10), (50, 70), (5, 60)]
    for y, x in hot:
        dark[y, x] += 2500
    y, x = np.mgrid[0:H, 0:W]
    flat = 1 - 0.3 * (((y - 32) / 64) ** 2 + ((x - 40) / 80) ** 2)  # vignetting
    scene = _scene()
    lights = []
    for _ in range(N):
        bands = rng.normal(0, 8, H)[:, None] + rng.normal(0, 5, W)[None, :]
        lights.append(scene * flat + dark + bands + rng.normal(0, NOISE, (H, W)))
    write = lambda name, fr: write_ser(tmp_path / name, np.clip(np.round(fr), 0, 4095).astype(np.uint16),
                                       SerHeader(W, H, pixel_depth=12)) and tmp_path / name
    darks = [dark + rng.normal(0, NOISE, (H, W)) for _ in range(40)]
    flats = [3000 * flat + 200 + rng.normal(0, NOISE, (H, W)) for _ in range(40)]
    bias = [200 + rng.normal(0, NOISE, (H, W)) for _ in range(40)]
    # a flat normalised to median 1 leaves the image scaled by the flat's median
    return write("light.ser", lights), write("dark.ser", darks), write("flat.ser", flats), \
        write("bias.ser", bias), scene * np.median(flat)


def test_calibration_recovers_the_scene_within_noise(tmp_path):
    rng = np.random.default_rng(0)
    light, dark, flat, bias, scene = _setup(tmp_path, rng)
    frames = run_node("reader", {"bit_depth": 12}, input_file=light)["frames"]
    masters = {k: run_node("master", {"path": p, "kind": kind, "method": "mean"})["master"]
               for k, p, kind in (("dark", dark, "dark"), ("flat", flat, "flat"), ("flat_dark", bias, "flat-dark"))}
    raw = open_frames(frames, light)
    cal = run_node("calibrate", {"hot_pixels": "dark", "pattern_noise": "both"},
                   inputs={"frames": frames, **masters}, input_file=light)["frames"]
    assert cal.meta["calibration"]["bad_pixels"] >= 3
    s = open_frames(cal, light)
    errs = []
    for i in range(N):
        got = s.read_mono(i) * 4095
        resid = got - scene
        resid -= np.median(resid)  # the background level is arbitrary after pattern removal
        errs.append(resid.std())
        assert abs(resid[10, 10]) < 6 * NOISE and abs(resid[50, 70]) < 6 * NOISE  # hot pixels repaired
        before = raw.read_mono(i) * 4095 - scene  # uncalibrated: vignetting, bands and hot pixels
        assert (before - np.median(before)).std() > 5 * NOISE
    # noise: light noise + master noise + flat scaling ≈ 2.1 ADU; allow a little for the estimation
    assert np.mean(errs) < 1.4 * NOISE


def test_nothing_to_do_passes_frames_through(tmp_path):
    path = tmp_path / "rec.ser"
    write_ser(path, np.zeros((2, 4, 4), np.uint8), SerHeader(4, 4))
    frames = run_node("reader", {}, input_file=path)["frames"]
    out = run_node("calibrate", {}, inputs={"frames": frames}, input_file=path)["frames"]
    assert out.meta == frames.meta and set(out.arrays) == set(frames.arrays)


def test_outlier_detection_without_a_dark(tmp_path):
    rng = np.random.default_rng(1)
    frames = np.clip(_scene()[None] + rng.normal(0, NOISE, (N, H, W)), 0, 4095)
    frames[:, 20, 30] = 4000
    path = tmp_path / "rec.ser"
    write_ser(path, np.round(frames).astype(np.uint16), SerHeader(W, H, pixel_depth=12))
    fr = run_node("reader", {"bit_depth": 12}, input_file=path)["frames"]
    cal = run_node("calibrate", {"hot_pixels": "outliers"}, inputs={"frames": fr}, input_file=path)["frames"]
    assert [20, 30] in cal.arrays["bad_pixels"].tolist()
    fixed = open_frames(cal, path).read_mono(0) * 4095
    assert abs(fixed[20, 30] - _scene()[20, 30]) < 20
