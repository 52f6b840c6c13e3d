"""The SER header parser under random headers and bytes: a usable recording or one clear sentence, never a
traceback; and a header whose colour layout or bit depth does not fit the file is refused."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from luckystack.io.ser import read_ser_info
from luckystack.io.ser_format import COLOR_IDS, FILE_ID, HEADER_SIZE, HEADER_STRUCT, SerHeader, write_ser
from luckystack.io.sources import RawReader, probe

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INT32 = st.integers(-(2**31), 2**31 - 1)


def _one_sentence(err: ValueError) -> None:
    text = str(err)
    assert text and "\n" not in text and len(text) < 400, text


def _write(raw: bytes) -> Path:
    folder = Path(tempfile.mkdtemp())
    path = folder / "random.ser"
    path.write_bytes(raw)
    return path


@st.composite
def headers(draw) -> bytes:
    """Headers near the valid ones: small frames, any colour id, depth, count and flag."""
    file_id = draw(st.sampled_from([FILE_ID, FILE_ID, FILE_ID, b"LUCAM-RECORDEX", b"\0" * 14]))
    color = draw(st.sampled_from(sorted(COLOR_IDS)) | INT32)
    width = draw(st.integers(1, 24) | st.sampled_from([0, -1, 1 << 16, (1 << 16) + 1, 2**31 - 1]))
    height = draw(st.integers(1, 24) | st.sampled_from([0, -7, 1 << 17]))
    depth = draw(st.integers(0, 17) | INT32)
    count = draw(st.integers(-2, 12) | INT32)
    flag = draw(st.sampled_from([0, 1]) | INT32)
    return HEADER_STRUCT.pack(file_id, draw(INT32), color, flag, width, height, depth, count,
                              b"obs", b"cam", b"scope", draw(st.integers(-(2**63), 2**63 - 1)),
                              draw(st.integers(-(2**63), 2**63 - 1)))


@SETTINGS
@given(header=headers(), data=st.binary(max_size=6000), extra=st.integers(0, 3))
def test_random_headers_give_a_recording_or_one_sentence(header, data, extra):
    path = _write(header + data * extra)
    try:
        info = read_ser_info(path)
    except ValueError as err:
        _one_sentence(err)
        return
    h, size = info.header, path.stat().st_size
    assert 1 <= info.frame_count and HEADER_SIZE + info.frame_count * h.frame_bytes <= size
    assert len(info.timestamps) == info.frame_count
    if h.frame_count > 0 and info.frame_count < h.frame_count:
        assert any("truncated" in w for w in info.warnings)
    rec = probe(path)  # the readers agree and read the first and last frames whole
    reader = RawReader(rec.source, path)
    for k in (0, rec.count - 1):
        frame = reader.frame(k)
        assert frame.shape[:2] == (h.height, h.width)


@SETTINGS
@given(raw=st.binary(max_size=400))
def test_random_bytes_give_a_recording_or_one_sentence(raw):
    path = _write(raw)
    try:
        read_ser_info(path)
    except ValueError as err:
        _one_sentence(err)


@SETTINGS
@given(width=st.integers(3, 20), height=st.integers(3, 20), count=st.integers(1, 9),
       written=st.sampled_from([("mono", 8), ("mono", 16), ("RGB", 8), ("RGB", 16), ("RGGB", 12)]),
       claimed=st.sampled_from([("mono", 8), ("mono", 16), ("RGB", 8), ("RGB", 16), ("BGR", 10)]),
       trailer=st.booleans())
def test_a_header_that_does_not_fit_the_file_is_refused(width, height, count, written, claimed, trailer):
    """Frames written with one layout/depth, the header rewritten to claim another (same count). Frames
    of at least 9 px, as in any real recording: smaller ones can be another layout plus the 8-byte
    timestamps, so no size tells them apart."""
    layout, depth = written
    planes = 3 if layout == "RGB" else 1
    dtype = np.uint8 if depth <= 8 else np.uint16
    frames = [np.full((height, width, planes) if planes == 3 else (height, width), k, dtype) for k in range(count)]
    path = _write(b"")
    write_ser(path, frames, SerHeader(width, height, layout, depth),
              timestamps=np.arange(count) + 1.7e9 if trailer else None)
    wrong = SerHeader(width, height, claimed[0], claimed[1], frame_count=count)
    raw = path.read_bytes()
    path.write_bytes(wrong.pack() + raw[HEADER_SIZE:])
    fits = (wrong.planes, wrong.bytes_per_sample) == (planes, dtype().itemsize)
    if fits:
        assert read_ser_info(path).frame_count == count
        return
    with pytest.raises(ValueError) as err:
        read_ser_info(path)
    _one_sentence(err.value)
    assert f"the header claims {count} {claimed[0]} {claimed[1]}-bit frames" in str(err.value)
    assert f"exactly {count} {'RGB' if planes == 3 else 'mono or Bayer'} {8 * dtype().itemsize}-bit" in str(err.value)


def test_a_recording_cut_short_is_read_with_a_warning(tmp_path):
    """A cut anywhere (a partial last frame too) keeps the whole frames before it."""
    frames = [np.full((6, 8), k, np.uint8) for k in range(10)]
    path = tmp_path / "cut.ser"
    write_ser(path, frames, SerHeader(8, 6))
    raw = path.read_bytes()
    for cut in (7 * 48, 7 * 48 + 5):
        path.write_bytes(raw[:HEADER_SIZE + cut])
        info = read_ser_info(path)
        assert info.frame_count == 7 and "truncated" in info.warnings[0]


def test_a_header_date_past_year_9999_is_no_start_time():
    """62-bit .NET ticks reach year 14,600; a date a datetime cannot hold is garbage, not a traceback."""
    frame = bytes(4 * 4)
    raw = HEADER_STRUCT.pack(FILE_ID, 0, 0, 0, 4, 4, 8, 1, b"obs", b"cam", b"scope", 2**62 - 1, 2**62 - 1)
    info = read_ser_info(_write(raw + frame))
    assert info.frame_count == 1 and info.start_utc is None
