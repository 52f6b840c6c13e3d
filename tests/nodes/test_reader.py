"""The reader node: describes a SER; malformed input is one NodeError line and nothing is returned."""

from __future__ import annotations

import numpy as np
import pytest

import luckystack.nodes.reader  # noqa: F401  (registers the node type)
from luckystack.graph.context import run_node
from luckystack.graph.node import NodeError, Result
from luckystack.io.frames import FrameStream
from luckystack.io.ser_format import SerHeader, write_ser
from luckystack.nodes.frames import open_frames


def test_reader_result_and_stream(tmp_path):
    path = tmp_path / "rec.ser"
    frames = np.random.default_rng(0).integers(0, 256, (5, 12, 16), dtype=np.uint8)
    write_ser(path, frames, SerHeader(16, 12, layout="GBRG", observer="me", telescope="C11"),
              timestamps=1.7e9 + np.arange(5) * 0.02)
    r = run_node("reader", {"step": 2, "debayer_method": "bilinear"}, input_file=path)["frames"]
    assert r.meta["layout"] == "GBRG" and r.meta["count"] == 3
    assert r.meta["capture"]["observer"] == "me" and r.meta["capture"]["telescope"] == "C11"
    np.testing.assert_array_equal(r.arrays["frame_index"], [0, 2, 4])
    np.testing.assert_allclose(np.diff(r.arrays["timestamp"]), 0.04, atol=1e-6)
    s = open_frames(r, path)
    assert isinstance(s, FrameStream) and s.read(1).shape == (12, 16, 3)
    np.testing.assert_array_equal(np.round(s.read_cfa(1) * 255), frames[2])


@pytest.mark.parametrize("content", [b"short", b"X" * 400, SerHeader(70000, 10).pack() + b"\0" * 8])
def test_malformed_input_is_one_clear_node_error(tmp_path, content):
    path = tmp_path / "bad.ser"
    path.write_bytes(content)
    with pytest.raises(NodeError) as exc:
        run_node("reader", {}, input_file=path)
    assert "\n" not in str(exc.value) and "bad.ser" in str(exc.value)


def test_empty_folder_and_bad_params(tmp_path):
    with pytest.raises(NodeError, match="holds no TIFF, PNG or FITS"):
        run_node("reader", {}, input_file=tmp_path)
    with pytest.raises(Exception):
        run_node("reader", {"step": 0}, input_file=tmp_path)


def test_open_frames_is_the_one_place_io_errors_become_node_errors():
    """A Result that describes no frames is a NodeError naming the input, not io's ValueError."""
    with pytest.raises(NodeError, match="cannot read frames from nowhere.ser: this description has no frames"):
        open_frames(Result(meta={"count": 3}), "nowhere.ser")
