"""A format registered only here (NumPy ``.npy`` cubes) is probed, read and stacked by the real pipeline."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

import luckystack.nodes  # noqa: F401  (registers the node types)
from luckystack.graph import api
from luckystack.io import formats
from luckystack.io.formats import Format, Probe
from luckystack.io.sources import RawReader, probe
from luckystack.simulate import simulate, write_recording

PLANET = Path(__file__).resolve().parents[3] / "pipelines" / "planet.json"


def probe_npy(path: Path) -> Probe:
    """A (frames, H, W) uint8/uint16 cube saved by ``np.save``: samples memory-mapped in place."""
    with open(path, "rb") as f:
        major, _ = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if fortran or len(shape) != 3 or dtype.kind != "u" or dtype.itemsize > 2:
        raise ValueError(f"{path.name}: not a C-ordered (frames, height, width) cube of 8/16-bit samples")
    sample = "u1" if dtype.itemsize == 1 else "u2"
    source = {"type": "npy", "offset": offset, "file_dtype": dtype.str, "frames": shape[0], "shape": shape[1:]}
    return Probe(source, "npy", shape[0], shape[1], shape[2], "mono", sample, 8 * dtype.itemsize,
                 np.full(shape[0], np.nan))


def read_npy(reader: RawReader, k: int, ys: slice, xs: slice) -> np.ndarray:
    s = reader.source
    return reader.mapped(s["file_dtype"], s["offset"], (s["frames"], *s["shape"]))[k, ys, xs]


@pytest.fixture
def npy_format():
    fmt = formats.register(Format("NumPy cube", (".npy",), probe_npy, read_npy, "npy"))
    yield fmt
    formats.unregister("npy")


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[Path, Path]:
    """The same simulated frames as a SER file and as an .npy cube."""
    folder = tmp_path_factory.mktemp("rec")
    ser = write_recording(folder / "jupiter.ser", simulate("jupiter", 24, 160, 128, seed=5))
    p = probe(ser)
    reader = RawReader(p.source, ser)
    cube = np.stack([reader.frame(k) for k in range(p.count)])
    np.save(folder / "jupiter.npy", cube)
    return ser, folder / "jupiter.npy"


def test_a_registered_format_is_probed_and_read_back_exactly(npy_format, recording):
    ser, npy = recording
    p = probe(npy)
    assert (p.format, p.count, p.height, p.width, p.sample) == ("npy", 24, 128, 160, "u1")
    cube = np.load(npy)
    reader = RawReader(p.source, npy)
    assert np.array_equal(reader.frame(7), cube[7])
    assert np.array_equal(reader.frame(3, (10, 20, 30, 40)), cube[3, 20:60, 10:40])


def test_a_registered_format_is_stacked_like_the_same_frames_in_a_ser_file(npy_format, recording, tmp_path):
    """The planet pipeline, with no edit anywhere else, stacks the .npy cube to the SER file's bytes."""
    digests = {}
    for path in recording:
        [run] = api.run(api.load_pipeline(PLANET, {}), [path], cache=tmp_path / "cache",
                        out=tmp_path / path.suffix[1:], jobs=2)
        exports = sorted(run.record.exports())
        assert len(exports) == 3
        digests[path.suffix] = [(Path(e).name, hashlib.sha256(Path(e).read_bytes()).hexdigest()) for e in exports]
    assert digests[".npy"] == digests[".ser"]


def test_unknown_suffixes_are_refused_with_the_registered_ones_listed(npy_format, tmp_path):
    path = tmp_path / "frames.xyz"
    path.write_bytes(b"\0" * 16)
    with pytest.raises(ValueError, match=r"unsupported format \.xyz; .*\.ser.*\.npy") as err:
        probe(path)
    assert "\n" not in str(err.value)


def test_unregistered_format_is_gone_and_taken_suffixes_are_refused(recording):
    with pytest.raises(ValueError, match=r"unsupported format \.npy"):
        probe(recording[1])
    with pytest.raises(ValueError, match=r"\.ser already read by SER"):
        formats.register(Format("other SER", (".ser",), probe_npy, read_npy, "other"))
    assert "other" not in [f.source_type for f in formats.formats()]
