"""The shipped planet pipeline on a simulated SER recording, through the real engine and cache.

Rerun selectivity is asserted from the run records, never from timing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

import luckystack.nodes  # noqa: F401  (registers the node types)
from luckystack.graph import api
from luckystack.graph.store import CacheStore
from luckystack.io.ser_format import SerHeader
from luckystack.simulate import simulate, write_recording
from tests.luckystack.report.browser import CHROMIUM, dump_dom

REPO = Path(__file__).resolve().parents[1]
PLANET = REPO / "pipelines" / "planet.json"
DOWNSTREAM_OF_STACK = ["stack", "merge", "post"]
ALL = ["reader", "calibrate", "stabilize", "analyse", "reference", "align", "stack", "merge", "post"]


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rec")
    path = write_recording(folder / "jupiter.ser", simulate("jupiter", 40, 256, 192, seed=3))
    os.utime(path, (1.6e9, 1.6e9))
    return path


def _run(recording: Path, tmp: Path, sets: dict | None = None, jobs: int = 2, name: str = "out"):
    pipeline = api.load_pipeline(PLANET, sets or {})
    [run] = api.run(pipeline, [recording], cache=tmp / "cache", out=tmp / name, jobs=jobs)
    return run.record


def test_first_run_writes_one_tiff_per_stack_size(recording, tmp_path):
    record = _run(recording, tmp_path)
    assert record.ran() == ALL
    tiffs = sorted(Path(p).relative_to(tmp_path / "out" / "jupiter").as_posix() for p in record.exports())
    assert [t.split("/")[0] for t in tiffs] == ["P10", "P25", "P50"]
    image = tifffile.imread(record.exports()[0])
    assert image.dtype == np.uint16 and image.ndim == 2 and image.max() > 10000


def test_reruns_only_what_a_change_touches(recording, tmp_path):
    _run(recording, tmp_path)
    assert _run(recording, tmp_path).ran() == []
    assert _run(recording, tmp_path, {"stack.percent": [25]}).ran() == DOWNSTREAM_OF_STACK
    assert _run(recording, tmp_path, {"align.ap_size": 48}).ran() == ["align"] + DOWNSTREAM_OF_STACK
    assert _run(recording, tmp_path, {"post.formats": ["tiff", "png"]}).ran() == ["post"]


def test_renamed_input_hits_the_cache_and_edited_input_reruns_all(recording, tmp_path):
    _run(recording, tmp_path)
    renamed = tmp_path / "renamed.ser"
    shutil.copy2(recording, renamed)
    assert _run(renamed, tmp_path).ran() == []
    edited = tmp_path / "edited.ser"
    data = bytearray(recording.read_bytes())
    data[178 + 5000] ^= 0x10  # one pixel of the first frame
    edited.write_bytes(bytes(data))
    os.utime(edited, (1.6e9, 1.6e9))
    assert _run(edited, tmp_path).ran() == ALL


def test_same_bits_whatever_the_number_of_jobs(recording, tmp_path, monkeypatch):
    import luckystack.nodes.stack

    monkeypatch.setattr(luckystack.nodes.stack, "CHUNK", 8)  # several chunks of the 40 frames,
    monkeypatch.setattr(luckystack.nodes.stack, "PARALLEL_PATCHES", 0)  # shared with a worker
    one = _run(recording, tmp_path / "a", jobs=1)
    two = _run(recording, tmp_path / "b", jobs=2)
    for a, b in zip(sorted(one.exports()), sorted(two.exports()), strict=True):
        assert Path(a).read_bytes() == Path(b).read_bytes()


def test_a_stack_built_on_cached_sums_matches_one_from_scratch(recording, tmp_path, monkeypatch):
    import luckystack.nodes.stack

    monkeypatch.setattr(luckystack.nodes.stack, "SUMS_SHARE", 1e9)  # a tiny recording: lift the sums' budget
    _run(recording, tmp_path)  # P10, P25, P50 into the cache, with their sums
    changed = api.load_pipeline(PLANET, {"stack.percent": [10, 25, 40]})
    assert api.explain(changed, recording, tmp_path / "cache")["stack"].earlier == 1
    built = _run(recording, tmp_path, {"stack.percent": [10, 25, 40]}, name="built")
    assert built.ran() == DOWNSTREAM_OF_STACK
    fresh = _run(recording, tmp_path / "fresh", {"stack.percent": [10, 25, 40]}, name="fresh")
    assert fresh.ran() == ALL
    files = [sorted(Path(p).relative_to(tmp_path / name) for p in record.exports())
             for record, name in ((built, "built"), (fresh, "fresh/fresh"))]
    assert files[0] == files[1] and files[0]
    for rel in files[0]:
        assert (tmp_path / "built" / rel).read_bytes() == (tmp_path / "fresh" / "fresh" / rel).read_bytes(), rel
    # The sizes and sums it shares with the first run are links to that run's entry, not copies.
    store = CacheStore(tmp_path / "cache")
    first = built_entry = None
    for key in store.keys():
        if store.read_json(key, "provenance.json")["node_type"] == "stack":
            if store.manifest(key).get("refs"):
                built_entry = key
            else:
                first = key
    port = store.manifest(built_entry)["ports"]["stacks"]
    linked = {name for name, spec in port["arrays"].items() if spec.get("ref") == first}
    own = {"patch_P40", "coverage_P40", "origin", "extent"}  # P40 is a chain state of the first run's sums
    assert linked == {name for name in port["arrays"] if name not in own and not name.startswith("count_")}
    assert {"patch_P10", "patch_P25", "background_P25"} <= linked
    assert [s["frames"] for s in port["meta"]["sums"]] and all(f"sum_num_{s['frames']}" in linked
                                                              for s in port["meta"]["sums"])
    assert store.info(built_entry).size < store.info(first).size / 2


def test_a_stack_built_from_two_earlier_runs_links_both_and_matches_one_from_scratch(recording, tmp_path,
                                                                                       monkeypatch):
    import luckystack.nodes.stack

    monkeypatch.setattr(luckystack.nodes.stack, "SUMS_SHARE", 1e9)
    _run(recording, tmp_path, {"stack.percent": [10]}, name="a")
    _run(recording, tmp_path, {"stack.percent": [50, 5]}, name="b")
    built = _run(recording, tmp_path, {"stack.percent": [5, 10, 45]}, name="built")
    fresh = _run(recording, tmp_path / "fresh", {"stack.percent": [5, 10, 45]}, name="fresh")
    for a, b in zip(sorted(built.exports()), sorted(fresh.exports()), strict=True):
        assert Path(a).read_bytes() == Path(b).read_bytes(), a
    store = CacheStore(tmp_path / "cache")
    stacks = [k for k in store.keys() if store.read_json(k, "provenance.json")["node_type"] == "stack"]
    refs = {k: {spec["ref"] for spec in store.manifest(k)["ports"]["stacks"]["arrays"].values() if spec.get("ref")}
            for k in stacks}
    assert sorted(len(r) for r in refs.values()) == [0, 1, 2]  # P10 alone; [50, 5] on it; the last on both


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "luckystack", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_command_line_run_writes_results_and_report(recording, tmp_path):
    done = _cli("run", str(PLANET), "--input", str(recording), "--cache", str(tmp_path / "c"),
                "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "o" / "jupiter"
    assert (out / "report.html").is_file() and (out / "quality.svg").is_file()
    if CHROMIUM:  # the real report in a real browser: every picture loads
        dom = dump_dom(out / "report.html")
        assert dom.count('data-loaded="1"') == 10 and 'data-loaded="0"' not in dom  # 3 × thumbnail and crop, blink, 3 figures
    assert sorted(p.name for p in out.glob("P*/*.tif")) == [
        f"jupiter_{label}_ap{p.name.split('_ap')[1][:-4]}.tif" for label in ("P10", "P25", "P50")
        for p in out.glob(f"{label}/*.tif")]


def _mismatched_folder(path: Path) -> None:
    path.mkdir()
    tifffile.imwrite(path / "f1.tif", np.zeros((8, 8), np.uint16))
    tifffile.imwrite(path / "f2.tif", np.zeros((8, 9), np.uint16))


BAD_INPUTS = {
    "empty file": (lambda p: p.write_bytes(b""), "shorter than"),
    "not a SER file": (lambda p: p.write_bytes(b"NOT-A-SER-FILE" + bytes(300)), "not a SER file"),
    "absurd dimensions": (lambda p: p.write_bytes(SerHeader(100000, 100000).pack() + bytes(10)), "absurd"),
    "truncated frame": (lambda p: p.write_bytes(SerHeader(64, 64, frame_count=5).pack() + bytes(100)),
                        "no complete frame"),
    "CMY colours": (lambda p: p.write_bytes(SerHeader(8, 8, layout="CYYM").pack() + bytes(64)), "CMY"),
    "layout that does not fit": (lambda p: p.write_bytes(SerHeader(64, 48, layout="RGB", frame_count=30).pack()
                                                         + bytes(30 * 64 * 48)),
                                 "claims 30 RGB 8-bit frames of 64x48 (276480 bytes) but the file holds 92160"),
    "empty folder": (lambda p: p.mkdir(), "holds no"),
    "folder of mismatched sizes": (_mismatched_folder, "8"),
}


@pytest.mark.parametrize("make, message", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_recording_is_one_line_exit_1_and_caches_nothing(tmp_path, make, message):
    bad = tmp_path / "bad.ser"
    make(bad)
    done = _cli("run", str(PLANET), "--input", str(bad), "--cache", str(tmp_path / "c"), "--out",
                str(tmp_path / "o"), cwd=tmp_path)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if not line.startswith("[")]  # not progress
    assert len(errors) == 1 and errors[0].startswith("error: reader:") and message in errors[0]
    assert "Traceback" not in done.stderr
    assert not [p for p in (tmp_path / "c").glob("*") if len(p.name) == 64]


def test_rerun_with_other_settings_warns_before_replacing_files(recording, tmp_path):
    _run(recording, tmp_path)
    same = _run(recording, tmp_path)
    assert same.warnings() == [w for w in same.warnings() if "replaced" not in w]
    other = _run(recording, tmp_path, {"stack.weight_power": 1.0})
    assert any("replaced 3 file(s) written earlier with other settings" in w for w in other.warnings())
