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
