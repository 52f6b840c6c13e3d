"""The report of a rerun: pictures drawn from the very same result files are kept, any change redraws
them, and what a rerun leaves is byte for byte what a report drawn afresh writes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from luckystack import api
from luckystack.graph.runrecord import RunRecord
from luckystack.report.build import write_run_report
from luckystack.simulate import simulate, write_recording

REPO = Path(__file__).resolve().parents[3]
PLANET = REPO / "pipelines" / "planet.json"


@pytest.fixture(scope="module")
def computed(tmp_path_factory) -> tuple[Path, Path]:
    """A recording and a cache holding every result of its default run."""
    folder = tmp_path_factory.mktemp("rec")
    recording = write_recording(folder / "jupiter.ser", simulate("jupiter", 24, 160, 128, seed=4))
    _run(recording, folder, out="first")
    return recording, folder / "cache"


@pytest.fixture
def recording(computed, tmp_path) -> Path:
    """The recording, with a copy of the computed cache in ``tmp_path``."""
    shutil.copytree(computed[1], tmp_path / "cache")
    return computed[0]


def _run(recording: Path, tmp: Path, out: str = "out", sets: dict | None = None) -> Path:
    pipeline = api.load_pipeline(PLANET, sets or {})
    [run] = api.run(pipeline, [recording], cache=tmp / "cache", out=tmp / out, jobs=1)
    assert not run.failed
    return tmp / out / "jupiter"


def _pictures(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png")) + sorted(folder.glob("*.svg"))}


def _stamps(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*_*.png")}


def test_a_cached_rerun_keeps_the_pictures_and_they_match_a_fresh_report(recording, tmp_path):
    out = _run(recording, tmp_path)
    drawn = _stamps(out)
    assert len([n for n in drawn if n.startswith("view_")]) == 3
    again = _run(recording, tmp_path)
    assert _stamps(again) == drawn  # not written again
    fresh = _run(recording, tmp_path, out="fresh")  # the same results drawn into an empty folder
    assert _pictures(again) == _pictures(fresh)


def test_a_new_stack_size_redraws_and_removes_the_old_sizes_pictures(recording, tmp_path):
    _run(recording, tmp_path)
    out = _run(recording, tmp_path, sets={"stack.percent": [7]})
    views = sorted(p.name for p in out.glob("view_*.png"))
    assert len(views) == 1 and "_P7_" in views[0]
    assert not [p for p in out.glob("thumb_*.png") if "_P7_" not in p.name]
    fresh = _run(recording, tmp_path, out="fresh", sets={"stack.percent": [7]})
    assert _pictures(out) == _pictures(fresh)
    back = _run(recording, tmp_path)  # all three sizes again, from the cache: drawn again
    assert len(list(back.glob("view_*.png"))) == 3


def test_a_changed_or_missing_file_redraws(recording, tmp_path):
    out = _run(recording, tmp_path)
    before = _pictures(out)
    view = next(out.glob("view_00_*.png"))
    view.unlink()
    again = _run(recording, tmp_path)
    assert _pictures(again) == before  # the missing picture drawn again, the same bits

    stamp = out / ".results.source"
    stamp.write_text("{not json")  # a damaged stamp is no reason to keep pictures
    assert _run(recording, tmp_path) and _pictures(out) == before

    tif = next(out.glob("P10/*.tif"))  # a result file that differs from what the pictures showed
    tifffile.imwrite(tif, np.zeros_like(tifffile.imread(tif)))  # (a run would export it again first)
    write_run_report(RunRecord.load(out / "run.json"), out)
    assert _pictures(out)[view.name] != before[view.name]
