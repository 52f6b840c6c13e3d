"""Input fingerprints follow content: files and folders of frames, renamed or edited."""

import os
import shutil

from luckystack.graph.fingerprint import fingerprint


def _folder(path, frames=(b"a", b"b")):
    path.mkdir()
    for i, data in enumerate(frames):
        (path / f"frame{i}.tif").write_bytes(data)
        os.utime(path / f"frame{i}.tif", (1.6e9, 1.6e9))
    return path


def test_file_fingerprint_ignores_name_and_sees_content(tmp_path):
    a = tmp_path / "a.ser"
    a.write_bytes(b"x" * 1000)
    b = tmp_path / "b.ser"
    shutil.copy2(a, b)
    assert fingerprint(a, tmp_path / "c") == fingerprint(b, tmp_path / "c")
    b.write_bytes(b"x" * 999 + b"y")
    assert fingerprint(a, tmp_path / "c") != fingerprint(b)


def test_folder_fingerprint_follows_its_frames(tmp_path):
    base = fingerprint(_folder(tmp_path / "one"), tmp_path / "c")
    assert fingerprint(_folder(tmp_path / "renamed"), tmp_path / "c") == base
    assert fingerprint(_folder(tmp_path / "edited", (b"a", b"c"))) != base
    assert fingerprint(_folder(tmp_path / "more", (b"a", b"b", b"c"))) != base
    moved = _folder(tmp_path / "order")
    (moved / "frame1.tif").rename(moved / "frame9.tif")
    assert fingerprint(moved) != base
