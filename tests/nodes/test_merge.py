import numpy as np
import pytest

import luckystack.nodes.merge  # noqa: F401
import luckystack.nodes.stack  # noqa: F401
from luckystack.graph.context import run_node
from luckystack.graph.node import NodeError, Result
from tests.nodes.stack_data import make, psnr

PORTS = ("frames", "shifts", "aps", "quality")


def test_merge_gives_one_seamless_image_per_size_with_meta():
    syn = make(n=30)
    st = run_node("stack", {"percent": [20, 50]}, {k: syn.inputs[k] for k in PORTS})["stacks"]
    out = run_node("merge", {}, {"stacks": st})["images"]
    assert out.meta["labels"] == ["P20", "P50"] and out.meta["ap_size"] == 32
    for label in out.meta["labels"]:
        img = out.array(f"image_{label}")
        assert img.shape == (84, 116, 1) and img.dtype == np.float32 and np.isfinite(img).all()
        assert psnr(img, syn.truth_crop()) > 38


def test_merge_with_drizzle_doubles_the_size():
    syn = make(n=16, h=64, w=80, ap_size=24)
    st = run_node("stack", {"percent": 50, "drizzle": 2}, {k: syn.inputs[k] for k in PORTS})["stacks"]
    out = run_node("merge", {}, {"stacks": st})["images"]
    assert out.array("image_P50").shape == (2 * 52, 2 * 68, 1) and out.meta["drizzle"] == 2.0


def test_merge_without_sizes_is_a_node_error():
    with pytest.raises(NodeError):
        run_node("merge", {}, {"stacks": Result(meta={"labels": []})})
