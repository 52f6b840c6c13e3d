"""The simulator: determinism, geometry of truth and shifts, local field, noise, SER output."""

import struct

import cv2
import numpy as np
import pytest

from luckystack.io.ser_format import HEADER_SIZE, HEADER_STRUCT, unix_from_ticks
from luckystack.simulate import load_truth, simulate, simulate_command, write_recording
from luckystack.simulate.baselines import align
from luckystack.simulate.metrics import find_offset

STILL = dict(local_px=0.0, seeing_best=0.0, seeing_scale=0.0, noise=False, transparency=0.0, flicker=0.0)


@pytest.mark.parametrize("scene", ["jupiter", "saturn", "moon", "sun"])
def test_same_seed_gives_same_bytes_and_other_seed_differs(tmp_path, scene):
    a = write_recording(tmp_path / "a.ser", simulate(scene, 6, 96, 64, seed=4))
    b = write_recording(tmp_path / "b.ser", simulate(scene, 6, 96, 64, seed=4))
    c = write_recording(tmp_path / "c.ser", simulate(scene, 6, 96, 64, seed=5))
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    sim = simulate(scene, 6, 96, 64, seed=4)
    assert np.array_equal(sim.frame(3), list(sim.iter_frames())[3])  # any frame renders alone


@pytest.mark.parametrize("scene", ["jupiter", "moon"])
def test_still_frame_is_truth_displaced_by_true_shift(scene):
    sim = simulate(scene, 12, 160, 120, seed=2, **STILL)
    truth = sim.truth
    for i in (0, 7, 11):
        sy, sx = truth.shifts[i]
        m = int(np.ceil(np.abs(truth.shifts[i]).max())) + 3
        # frame(q) = truth(q - shift): the same cubic interpolation of the truth reproduces the frame
        expected = cv2.warpAffine(truth.image[..., 0], np.array([[1, 0, -sx], [0, 1, -sy]]), (160, 120),
                                  flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
        assert np.abs(sim.render(i) - expected)[m:-m, m:-m].max() < 1e-4
        # and aligning the frame back by the shift gives the truth, to interpolation accuracy
        diff = align(sim.render(i)[..., None], truth.shifts[i])[m:-m, m:-m] - truth.image[m:-m, m:-m]
        assert np.sqrt(np.mean(diff**2)) < 0.015
        dy, dx = find_offset(sim.render(i)[m:-m, m:-m], truth.image[..., 0])
        assert abs(dy - (m - sy)) < 0.01 and abs(dx - (m - sx)) < 0.01


def test_applied_displacement_matches_true_displacement():
    sim = simulate("moon", 4, 200, 150, seed=3, local_px=1.0, local_cell=60.0)
    truth = sim.truth
    yy, xx = np.mgrid[0:150, 0:200]
    for i in range(4):
        src = sim.renderer.source_map(i)  # image position (x, y) shown at each frame pixel
        landed = truth.true_position(i, src[..., 1], src[..., 0])
        err = np.hypot(landed[..., 0] - yy, landed[..., 1] - xx)
        assert err.max() < 0.03 and np.sqrt(np.mean(err**2)) < 0.01
        assert np.abs(truth.true_displacement(i, yy, xx)).max() > 0.5  # the field really moves things


def test_local_displacement_is_what_patches_show():
    sim = simulate("moon", 3, 240, 180, seed=7, local_px=1.5, local_cell=120.0,
                   **{k: v for k, v in STILL.items() if k != "local_px"})
    truth, i = sim.truth, 2
    frame = sim.render(i)
    errors = []
    for cy in (50, 90, 130):
        for cx in (60, 120, 180):
            r = 12
            aligned_patch = align(frame[..., None], truth.shifts[i])[cy - r:cy + r, cx - r:cx + r, 0]
            dy, dx = find_offset(aligned_patch, truth.image[cy - r - 8:cy + r + 8, cx - r - 8:cx + r + 8, 0])
            measured = np.array([8 - dy, 8 - dx])  # aligned(p + d) = truth(p)
            errors.append(measured - truth.true_displacement(i, cy, cx))
    assert np.sqrt(np.mean(np.square(errors))) < 0.08


def test_noise_statistics_match_photon_and_read_noise():
    photons, read = 400.0, 5.0
    sim = simulate("sun", 2, 128, 96, bit_depth=16, seed=1, photons=photons, read_noise=read,
                   **{k: v for k, v in STILL.items() if k != "noise"})
    expected = sim.render(1) * sim.truth.brightness[1]
    residual = sim.frame(1).astype(np.float64) / sim.truth.full_scale - expected
    predicted = np.sqrt(expected * photons + read**2) / photons
    z = residual / predicted
    assert abs(z.mean()) < 0.05 and 0.95 < z.std() < 1.05


@pytest.mark.parametrize(("bit_depth", "layout", "dtype"),
                         [(8, "mono", np.uint8), (12, "RGGB", np.uint16), (16, "GBRG", np.uint16)])
def test_written_ser_header_depth_and_layout(tmp_path, bit_depth, layout, dtype):
    sim = simulate("jupiter", 5, 64, 48, bit_depth=bit_depth, layout=layout, seed=0)
    path = write_recording(tmp_path / "rec", sim)
    data = path.read_bytes()
    fields = HEADER_STRUCT.unpack(data[:HEADER_SIZE])
    color_id, width, height, depth, count = fields[2], fields[4], fields[5], fields[6], fields[7]
    assert (width, height, depth, count) == (64, 48, bit_depth, 5)
    assert color_id == {"mono": 0, "RGGB": 8, "GBRG": 10}[layout]
    frame_bytes = 64 * 48 * np.dtype(dtype).itemsize
    assert len(data) == HEADER_SIZE + 5 * frame_bytes + 5 * 8
    frames = np.frombuffer(data[HEADER_SIZE:HEADER_SIZE + 5 * frame_bytes], dtype=dtype).reshape(5, 48, 64)
    assert np.array_equal(frames[2], sim.frame(2))
    assert frames.max() <= 2**bit_depth - 1 and frames.max() > 0.25 * 2**bit_depth  # LSB-aligned, well exposed
    ticks = np.frombuffer(data[-40:], "<i8")
    assert np.allclose(np.diff(unix_from_ticks(ticks)), 0.01, atol=1e-6)
    truth = load_truth(path)
    assert np.array_equal(truth.shifts, sim.truth.shifts) and truth.image.shape == (48, 64, 1 if layout == "mono" else 3)
    assert truth.full_scale == 2**bit_depth - 1
    assert np.allclose(truth.true_displacement(3, 10.5, 20.0), sim.truth.true_displacement(3, 10.5, 20.0))


def test_bayer_mosaic_puts_each_colour_on_its_sites():
    sim = simulate("sun", 2, 64, 48, layout="RGGB", seed=0, **STILL)
    mosaic = sim.render(0)
    # The sun is orange: red sites brightest, blue sites darkest.
    assert mosaic[0::2, 0::2].mean() > mosaic[0::2, 1::2].mean() > mosaic[1::2, 1::2].mean()


def test_declared_depth_quirk_and_artifacts_and_partial_frames(tmp_path):
    sim = simulate("jupiter", 30, 160, 120, bit_depth=12, seed=3, declared_depth=16, torn_frames=3,
                   partial_frames=2)
    path = write_recording(tmp_path / "quirk.ser", sim)
    assert struct.unpack_from("<i", path.read_bytes(), 34)[0] == 16
    truth = sim.truth
    assert (truth.artifact > 0).sum() == 3 and truth.partial.sum() == 2
    assert not (truth.partial & (truth.artifact > 0)).any() and truth.usable.sum() == 25
    for i in np.flatnonzero(truth.artifact == 1):
        start, stop, _ = truth.artifact_rows[i]
        assert (sim.frame(int(i))[start:stop] == 0).all()
    for i in np.flatnonzero(truth.partial):
        frame = sim.frame(int(i)).astype(float)
        edges = [frame[0].max(), frame[-1].max(), frame[:, 0].max(), frame[:, -1].max()]
        assert max(edges) > 0.3 * frame.max()  # the disc is cut by an edge


def test_bad_arguments_raise_one_clear_value_error(tmp_path):
    with pytest.raises(ValueError, match="unknown scene"):
        simulate("neptune")
    with pytest.raises(ValueError, match="unknown simulation option"):
        simulate("moon", 2, 64, 48, blurr=3)
    with pytest.raises(ValueError, match="partial frames need a planet"):
        simulate("moon", 5, 64, 48, partial_frames=1)
    with pytest.raises(ValueError, match="no simulation truth"):
        load_truth(tmp_path / "missing.ser")


def test_simulate_command_writes_both_files(tmp_path):
    summary = simulate_command("moon", 4, tmp_path / "out" / "m.ser", 64, 48, 8, "mono", 1)
    assert summary["ser"].is_file() and summary["truth"].name == "m.truth.npz" and summary["truth"].is_file()
    assert "4 frames" in summary["line"]


def test_saturn_has_a_globe_rings_beside_it_and_a_gap_in_them():
    img = simulate("saturn", 1, 320, 240, seed=0, layout="RGB", noise=False).truth.image.mean(axis=2)
    cy, cx = 119.5, 159.5
    row = img[int(cy)]  # through the centre: globe, then the rings' ansae on both sides, then sky
    assert row[int(cx)] > 0.3  # the globe
    assert img[5].max() < 0.05 and row[:8].max() < 0.05  # sky above and beyond the rings
    radius = 0.4 * 320 / 2.27  # the rings span twice planet_diameter
    b_ring, cassini = int(cx + 1.75 * radius), int(cx + 1.99 * radius)
    assert row[b_ring] > 0.4 and row[cassini] < 0.5 * row[b_ring]
    assert row[int(cx - 1.75 * radius)] > 0.4  # both ansae
