import numpy as np
import pytest
import tifffile

import luckystack.nodes.analyse  # noqa: F401
import luckystack.nodes.reference  # noqa: F401
import luckystack.nodes.stabilize  # noqa: F401
from luckystack.graph.context import run_node
from luckystack.graph.node import NodeError
from luckystack.io.frames import ArrayFrameStream
from luckystack.nodes.frames import memory_frames
from tests.nodes.synthetic_planet import make_recording


@pytest.fixture(scope="module")
def data():
    sim = make_recording(n=30, h=160, w=200, radius=50, field=0.5, seed=6)
    fr = memory_frames(ArrayFrameStream(sim.frames))
    shifts = run_node("stabilize", {}, {"frames": fr})["shifts"]
    quality = run_node("analyse", {}, {"frames": fr, "shifts": shifts})["quality"]
    return sim, {"frames": fr, "shifts": shifts, "quality": quality}


def _sharpness(img):
    gy, gx = np.gradient(img[..., 0])
    return float(np.sqrt((gx ** 2 + gy ** 2).mean()))


def test_reference_is_a_clean_mean_of_the_better_half(data):
    sim, inputs = data
    ref = run_node("reference", {}, inputs)["reference"]
    img = ref.array("image")
    y0, x0, h, w = inputs["shifts"].meta["crop"]
    assert img.shape == (h, w, 1) and img.dtype == np.float32
    assert ref.meta["frames_used"] == 15
    # Sharper than the mean of all frames, less noisy than the best frame.
    all_mean = run_node("reference", {"fraction": 1.0}, inputs)["reference"].array("image")
    assert _sharpness(img) > _sharpness(all_mean)
    best = int(np.argmin(sim.blur))
    sky = img[:8, :8, 0]
    assert sky.std() < sim.frames[best][:8, :8].std()
    local = run_node("reference", {"local": True}, inputs, jobs=2)["reference"]
    assert local.meta["local_iterations"] == 1
    assert _sharpness(local.array("image")) >= 0.97 * _sharpness(img)
    again = run_node("reference", {"local": True}, inputs, jobs=1)["reference"]
    assert np.array_equal(local.array("image"), again.array("image"))


def test_reference_from_an_image_file(data, tmp_path):
    _, inputs = data
    y0, x0, h, w = inputs["shifts"].meta["crop"]
    path = tmp_path / "previous.tif"
    tifffile.imwrite(path, (np.linspace(0, 1, h * w).reshape(h, w) * 65535).astype(np.uint16))
    img = run_node("reference", {"path": path}, inputs)["reference"].array("image")
    assert img.shape == (h, w, 1) and abs(float(img.max()) - 1.0) < 1e-6
    tifffile.imwrite(path, np.zeros((10, 10), np.uint16))
    with pytest.raises(NodeError, match="crop"):
        run_node("reference", {"path": path}, inputs)


@pytest.mark.parametrize("kind", ["ser8", "rgb"])
def test_frames_summed_by_phase_equal_resampling_each_frame(kind, tmp_path):
    from luckystack.imaging.drizzle import interpolate_patch
    from luckystack.io.ser_format import SerHeader, write_ser
    from luckystack.nodes.frames import open_frames
    from luckystack.nodes.reference import PHASES, quantized_positions, sum_chunk

    rng = np.random.default_rng(3)
    n, h, w = 24, 40, 52
    if kind == "ser8":
        samples = rng.integers(0, 256, (n, h, w), dtype=np.uint8)
        path = tmp_path / "r.ser"
        write_ser(path, samples, SerHeader(w, h))
        stream = open_frames(run_node("reader", {}, {}, path)["frames"], path)
    else:
        stream = ArrayFrameStream(rng.random((n, h, w, 3)).astype(np.float32))
    crop = [3, 4, 30, 40]
    shift = rng.uniform(-4.5, 4.5, (n, 2))  # crops reaching beyond the frame: edges replicated
    position = quantized_positions(shift, crop)
    chunk = np.arange(n)[np.lexsort((np.arange(n), position[:, 1] % PHASES, position[:, 0] % PHASES))]
    total, count = sum_chunk(stream, chunk, position, crop)
    expected = sum(interpolate_patch(stream.read(i), (0, 0), (30, 40), tuple(position[i] / PHASES)).astype(np.float64)
                   for i in range(n))
    assert count == n and total.shape == (30, 40, stream.channels)
    np.testing.assert_allclose(total, expected, atol=1e-4 * n)
    assert np.abs(position / PHASES - (np.array(crop[:2]) + shift)).max() <= 0.5 / PHASES
