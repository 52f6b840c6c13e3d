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


def test_a_hash_started_ahead_serves_the_fingerprint_of_the_file_as_it_was(tmp_path, monkeypatch):
    import time

    from luckystack.graph import fingerprint as fp

    a = tmp_path / "a.ser"
    a.write_bytes(os.urandom(1 << 20))
    expected = fp.hash_file(a)
    fp.hash_ahead(a)
    time.sleep(0.2)
    monkeypatch.setattr(fp, "hash_file", lambda path: "xxh3-128:hashed-again")
    assert fingerprint(a) == expected  # the hash computed ahead, not a second one
    assert fingerprint(a) == "xxh3-128:hashed-again"  # used once
    monkeypatch.undo()
    fp.hash_ahead(a)
    a.write_bytes(os.urandom(1 << 20))  # changed since: another identity, hashed anew
    assert fingerprint(a) == fp.hash_file(a) != expected


def test_a_mapped_hash_equals_a_read_one_and_an_empty_file_has_one(tmp_path):
    import xxhash

    from luckystack.graph.fingerprint import hash_file

    a, empty = tmp_path / "a.ser", tmp_path / "empty.ser"
    data = os.urandom(3 << 20)
    a.write_bytes(data)
    empty.write_bytes(b"")
    assert hash_file(a) == "xxh3-128:" + xxhash.xxh3_128(data + f"|size={len(data)}".encode()).hexdigest()
    assert hash_file(empty) == "xxh3-128:" + xxhash.xxh3_128(b"|size=0").hexdigest()
