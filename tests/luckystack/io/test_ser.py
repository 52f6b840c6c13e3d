"""SER reading: every layout, depth and byte-order convention, the real fixture, quirks and errors."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from luckystack.io.recording import describe
from luckystack.io.ser import read_ser_info
from luckystack.io.ser_format import HEADER_SIZE, SerHeader, ticks_from_unix, write_ser
from luckystack.io.stream import open_stream

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def smooth_frames(n: int, h: int, w: int, peak: int, planes: int = 1, seed: int = 0) -> np.ndarray:
    """Smooth images with a little noise: what real frames look like to the byte-order detector."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.4 * np.sin(x / 9.0) * np.cos(y / 7.0)
    out = []
    for i in range(n):
        f = base[..., None] * np.array([1.0, 0.8, 0.6][:planes]) if planes == 3 else base
        f = f * peak * (0.9 + 0.02 * i) + rng.normal(0, peak * 0.003, f.shape)
        out.append(np.clip(np.round(f), 0, peak))
    return np.array(out)


def stream_of(path: Path, **kw):
    meta, arrays, notes = describe(path, **kw)
    return open_stream(meta, arrays, path), meta, notes


LAYOUTS = ["mono", "RGGB", "GRBG", "GBRG", "BGGR", "RGB", "BGR"]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("depth,big", [(8, False), (16, False), (16, True)])
def test_round_trip_every_layout_depth_and_byte_order(tmp_path, layout, depth, big):
    planes = 3 if layout in ("RGB", "BGR") else 1
    peak = 255 if depth == 8 else 4095
    frames = smooth_frames(3, 24, 32, peak, planes).astype(np.uint8 if depth == 8 else np.uint16)
    path = tmp_path / "rec.ser"
    header = SerHeader(width=32, height=24, layout=layout, pixel_depth=depth if depth == 8 else 12,
                       little_endian_flag=1 if big else 0)
    write_ser(path, frames, header, big_endian=big)
    s, meta, _ = stream_of(path, debayer="none")
    assert (s.count, s.height, s.width) == (3, 24, 32)
    assert meta["bit_depth"] == (8 if depth == 8 else 12)
    if depth == 16:
        assert meta["byte_order"] == ("big" if big else "little")
    expected = frames[..., ::-1] if layout == "BGR" else frames
    for i in range(3):
        got = s.read(i) if planes == 3 else s.read_cfa(i)
        np.testing.assert_array_equal(np.round(got * peak).astype(np.int64), expected[i].astype(np.int64))


@pytest.mark.parametrize("written_big", [False, True])
def test_byte_order_detected_whatever_the_flag_says(tmp_path, written_big):
    frames = smooth_frames(2, 32, 32, 4095).astype(np.uint16)
    path = tmp_path / "rec.ser"
    # The flag claims the opposite of what the data is (a common capture-program quirk).
    write_ser(path, frames, SerHeader(32, 32, pixel_depth=16, little_endian_flag=0 if written_big else 1),
              big_endian=written_big)
    s, meta, notes = stream_of(path)
    assert meta["byte_order"] == ("big" if written_big else "little")
    assert any("endian" in n for n in notes)
    np.testing.assert_array_equal(np.round(s.read_mono(1) * 4095), frames[1])
    forced, meta2, _ = stream_of(path, byte_order="little" if written_big else "big")
    assert meta2["byte_order"] != meta["byte_order"]
    assert not np.allclose(forced.read_mono(1), s.read_mono(1))


def test_msb_aligned_12_bit_is_detected_and_scaled(tmp_path):
    frames = (smooth_frames(2, 16, 16, 4095).astype(np.uint16) << 4)
    path = tmp_path / "msb.ser"
    write_ser(path, frames, SerHeader(16, 16, pixel_depth=16))
    s, meta, notes = stream_of(path)
    assert (meta["bit_depth"], meta["bit_shift"]) == (12, 4)
    assert any("12-bit" in n for n in notes)
    np.testing.assert_allclose(s.read_mono(0), (frames[0] >> 4) / 4095, rtol=1e-6)
    explicit, meta16, _ = stream_of(path, bit_depth=16)
    assert meta16["bit_depth"] == 16
    np.testing.assert_allclose(explicit.read_mono(0), frames[0] / 65535, rtol=1e-6)


def test_real_fixture(tmp_path):
    path = tmp_path / "jupiter-sample.ser"
    with gzip.open(FIXTURES / "jupiter-sample.ser.gz") as src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    info = read_ser_info(path)
    assert (info.header.width, info.header.height, info.header.layout) == (640, 480, "RGGB")
    assert (info.header.lu_id, info.header.pixel_depth, info.frame_count) == (4660, 8, 2)
    assert info.header.instrument == "Uranus-C (IMX585)"
    assert np.diff(info.timestamps)[0] == pytest.approx(3.475e-3, abs=1e-5)
    assert info.start_utc.startswith("2025-01-02T12:43:56")
    s, meta, _ = stream_of(path)
    assert (s.count, s.channels, s.layout) == (2, 3, "RGGB")
    rgb = s.read(0)
    assert rgb.shape == (480, 640, 3) and 0 < rgb.mean() < 1
    raw = np.fromfile(path, np.uint8, 640 * 480, offset=HEADER_SIZE).reshape(480, 640)
    np.testing.assert_array_equal(np.round(s.read_cfa(0) * 255), raw)
    assert meta["frame_rate"] == pytest.approx(1 / 3.475e-3, rel=1e-3)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # never modified


def _write(path: Path, n: int = 3, count_field: int | None = None, trailer: bool = True, extra: bytes = b""):
    frames = smooth_frames(n, 8, 8, 255).astype(np.uint8)
    ts = 1.7e9 + np.arange(n) * 0.01
    write_ser(path, frames, SerHeader(8, 8), timestamps=ts if trailer else None)
    if count_field is not None:
        with open(path, "r+b") as fh:
            fh.seek(38)
            fh.write(struct.pack("<i", count_field))
    if extra:
        with open(path, "ab") as fh:
            fh.write(extra)
    return frames, ts


def test_timestamps_and_partial_trailer(tmp_path):
    path = tmp_path / "a.ser"
    _, ts = _write(path)
    info = read_ser_info(path)
    np.testing.assert_allclose(info.timestamps, ts, atol=1e-6)
    data = path.read_bytes()
    (tmp_path / "b.ser").write_bytes(data[:-4])  # half the last timestamp cut off
    assert np.all(np.isnan(read_ser_info(tmp_path / "b.ser").timestamps))


def test_frame_count_zero_and_truncated_last_frame(tmp_path):
    path = tmp_path / "zero.ser"
    _write(path, n=3, count_field=0, trailer=False)
    info = read_ser_info(path)
    assert info.frame_count == 3 and "frame count is 0" in info.warnings[0]
    trunc = tmp_path / "trunc.ser"
    _write(trunc, n=3, trailer=False)
    trunc.write_bytes(trunc.read_bytes()[:-10])
    info = read_ser_info(trunc)
    assert info.frame_count == 2 and "truncated" in info.warnings[0]


def test_local_time_trailer_is_corrected_to_utc(tmp_path):
    path = tmp_path / "local.ser"
    utc = 1.7e9
    local = utc + 3600  # written by a program in UTC+1 that stored local times in the trailer
    header = SerHeader(8, 8, date_time=int(ticks_from_unix(local)), date_time_utc=int(ticks_from_unix(utc)))
    write_ser(path, smooth_frames(2, 8, 8, 255).astype(np.uint8), header,
              timestamps=np.array([local + 0.5, local + 0.6]))
    np.testing.assert_allclose(read_ser_info(path).timestamps, [utc + 0.5, utc + 0.6], atol=1e-6)


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_bytes(b"LUCAM-RECORDER" + b"\0" * 20), "shorter than the 178-byte"),
    (lambda p: p.write_bytes(b"NOT-A-SER-FILE" + b"\0" * 300), "not a SER file"),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 400), "not a SER file"),
    (lambda p: p.write_bytes(SerHeader(100000, 100000).pack() + b"\0" * 10), "absurd frame dimensions"),
    (lambda p: p.write_bytes(SerHeader(64, 64, frame_count=5).pack() + b"\0" * 100), "no complete frame"),
    (lambda p: p.write_bytes(SerHeader(8, 8, layout="CYYM").pack() + b"\0" * 64), "CMY"),
])
def test_malformed_files_give_one_clear_line(tmp_path, make, message):
    path = tmp_path / "bad.ser"
    make(path)
    with pytest.raises(ValueError, match=message) as exc:
        describe(path)
    assert "\n" not in str(exc.value)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        describe(tmp_path / "nothing.ser")
    path = tmp_path / "locked.ser"
    _write(path)
    path.chmod(0)
    try:
        open(path, "rb").close()
    except PermissionError:
        with pytest.raises(ValueError, match="cannot open"):
            describe(path)
    else:
        pytest.skip("running as root: file permissions do not stop reading")
    finally:
        path.chmod(0o644)


def test_a_folder_named_like_a_recording_is_one_clear_error(tmp_path):
    """An unreadable path that root cannot read either: a directory called .ser."""
    (tmp_path / "fake.ser").mkdir()
    with pytest.raises(ValueError) as info:
        describe(tmp_path / "fake.ser")
    assert "\n" not in str(info.value) and "fake.ser" in str(info.value)


def test_a_file_cut_short_under_a_run_is_an_error_not_a_crash(tmp_path):
    """A memory map would die of SIGBUS reading past the new end; a positioned read comes up short."""
    frames = smooth_frames(3, 24, 32, 255).astype(np.uint8)
    path = tmp_path / "rec.ser"
    write_ser(path, frames, SerHeader(width=32, height=24, pixel_depth=8))
    s, _, _ = stream_of(path)
    np.testing.assert_array_equal(s.read_mono(2), np.multiply(frames[2], np.float32(1 / 255), dtype=np.float32))
    with open(path, "r+b") as f:
        f.truncate(HEADER_SIZE + int(1.5 * 24 * 32))
    with pytest.raises(OSError, match="cut short"):
        s.read_mono(2)
