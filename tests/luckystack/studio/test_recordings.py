"""Which files of a folder the studio offers as recordings: those a registered format reads."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from luckystack.io import formats
from luckystack.io.formats import Format
from luckystack.io.sources import probe
from luckystack.simulate import simulate, write_recording
from luckystack.studio.session import find_recordings


def _video(path: Path, fourcc: str) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25, (64, 48))
    assert writer.isOpened(), f"OpenCV cannot write {path.suffix} here"
    for k in range(4):
        writer.write(np.full((48, 64, 3), 40 * k, np.uint8))
    writer.release()
    return path


def test_every_recording_format_run_reads_is_offered_and_single_images_are_not(tmp_path):
    _video(tmp_path / "a.m4v", "mp4v")
    _video(tmp_path / "b.wmv", "WMV2")
    write_recording(tmp_path / "c.ser", simulate("jupiter", 3, 48, 32, seed=1))
    frames = tmp_path / "d"
    frames.mkdir()
    for k in range(2):
        cv2.imwrite(str(frames / f"f{k}.png"), np.full((32, 48), 60 * k, np.uint8))
    cv2.imwrite(str(tmp_path / "dark.png"), np.zeros((32, 48), np.uint8))  # one image: a frame, not a recording
    (tmp_path / "notes.txt").write_text("seeing 2/5")
    found = find_recordings(tmp_path)
    assert [p.name for p in found] == ["a.m4v", "b.wmv", "c.ser", "d"]
    assert [probe(p).count for p in found] == [4, 4, 3, 2]  # each one is what `run` reads


def test_a_format_registered_later_is_offered_too(tmp_path):
    (tmp_path / "cube.lsx").write_bytes(b"\0" * 16)
    assert find_recordings(tmp_path) == []

    def unreadable(*_args):
        raise ValueError("not read in this test")

    formats.register(Format("test cube", (".lsx",), unreadable, unreadable, "test-lsx"))
    try:
        assert find_recordings(tmp_path) == [tmp_path / "cube.lsx"]
    finally:
        formats.unregister("test-lsx")
