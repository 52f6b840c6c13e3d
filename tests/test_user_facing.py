"""What a user meets: the run report's content, the command line's answers, the files left in the output.

Real runs of the shipped pipelines on small simulated SER recordings, through the real engine and cache.
"""

from __future__ import annotations

import html.parser
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from luckystack import __version__, api
from luckystack.cli import main
from luckystack.graph.runrecord import RunRecord
from luckystack.nodes.post import size_warnings
from luckystack.simulate import simulate, write_recording
from tests.luckystack.report.browser import CHROMIUM, dump_dom

REPO = Path(__file__).resolve().parents[1]
PLANET = REPO / "pipelines" / "planet.json"


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    return write_recording(tmp_path_factory.mktemp("rec") / "jupiter.ser", simulate("jupiter", 40, 256, 192, seed=5))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The command line in a process of its own."""
    return subprocess.run([sys.executable, "-m", "luckystack", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def _main(capsys, *args: str) -> subprocess.CompletedProcess:
    """The command line's entry point in this process (no interpreter start): its status and output."""
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as e:  # --version, --help
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


class _Page(html.parser.HTMLParser):
    """Every link and picture of a page, its <details> sections and its table rows' cells."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.pictures: list[str] = []
        self.details = 0
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "img":
            self.pictures.append(a["src"])
        elif tag == "details":
            self.details += 1
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None


def _page(path: Path) -> tuple[str, _Page]:
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    return text, page


def test_api_run_writes_the_report_with_results_quality_and_aps(recording, tmp_path):
    p = api.load_pipeline(PLANET, {"stack.percent": [10, 50], "post.formats": ["tiff", "fits"]})
    [run] = api.run(p, [recording], cache=tmp_path / "cache", out=tmp_path / "out", jobs=1)
    folder = tmp_path / "out" / "jupiter"
    text, page = _page(folder / "report.html")
    for name in ("P10", "P50"):  # each stack size with its frame count, linked to its full-resolution files
        assert any(link.startswith(f"{name}/") and link.endswith(".tif") for link in page.links)
        assert any(link.startswith(f"{name}/") and link.endswith(".fits") for link in page.links)
    assert "4 frames per AP" in text and "20 frames per AP" in text  # 10 and 50 % of 40 frames
    for link in page.links + page.pictures:  # every link and picture resolves inside the folder
        assert (folder / link).is_file(), link
    assert {"quality.svg", "ap_overlay.png", "local_quality.png"} <= set(page.pictures)
    assert sum(src.startswith("crop_") for src in page.pictures) == 3  # 2 crops side by side + the blink
    assert 'onclick="lsBlink(this)"' in text and page.details >= 2  # blink; pipeline and AP table folded
    assert "<details><summary>the pipeline used" in text
    assert all(any(cell for cell in row) for row in page.rows) and all(row for row in page.rows)
    aps = [row for row in page.rows if len(row) == 6 and row[0].isdigit()]
    n_aps = len(api.read_result(p, "align", recording, tmp_path / "cache")["aps"].array("size"))
    assert [row[0] for row in aps] == [str(k + 1) for k in range(n_aps)]  # one numbered row per AP
    header = fits.getheader(next(folder.glob("P50/*.fits")))
    assert header["NCOMBINE"] == 20 and header["DATE-OBS"].startswith("2024-03-01T20:00:00")
    assert header["INSTRUME"] == "simulated mono 8-bit" and header["PROGRAM"] == f"luckystack {__version__}"
    assert any("best 20 frames per alignment point" in line for line in header["HISTORY"])


def test_command_line_writes_the_same_report_as_the_api(recording, tmp_path):
    p = api.load_pipeline(PLANET, {"stack.percent": [25]})
    api.run(p, [recording], cache=tmp_path / "cache", out=tmp_path / "api", jobs=1)
    done = _cli("--cache", str(tmp_path / "cache"), "run", str(PLANET), "-i", str(recording), "--set",
                "stack.percent=25", "-o", str(tmp_path / "cli"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    a, b = (sorted(p.name for p in (tmp_path / d / "jupiter").iterdir()) for d in ("api", "cli"))
    assert a == b and "report.html" in a
    _, pa = _page(tmp_path / "api" / "jupiter" / "report.html")
    _, pb = _page(tmp_path / "cli" / "jupiter" / "report.html")
    assert (pa.links, pa.pictures) == (pb.links, pb.pictures)
    if CHROMIUM:
        dom = dump_dom(tmp_path / "cli" / "jupiter" / "report.html")
        assert 'data-loaded="0"' not in dom and dom.count('data-loaded="1"') == len(pb.pictures)


def test_an_earlier_stack_size_is_removed_and_an_identical_file_is_no_news(recording, tmp_path):
    def run(sets):
        [r] = api.run(api.load_pipeline(PLANET, sets), [recording], cache=tmp_path / "c", out=tmp_path / "o",
                      jobs=1, report=False)
        return r.record

    run({"stack.percent": [10, 25]})
    folder = tmp_path / "o" / "jupiter"
    assert (folder / "P10").is_dir()
    record = run({"stack.percent": [25]})
    assert not (folder / "P10").exists() and (folder / "P25").is_dir()
    assert any("removed 1 file(s) an earlier run wrote here" in w for w in record.warnings())
    record = run({"stack.percent": [25], "post.formats": ["tiff", "png"]})  # the TIFF comes out the same
    assert record.ran() == ["post"] and not [w for w in record.warnings() if "replaced" in w]


def test_set_frames_alone_replaces_the_files_percent(recording, tmp_path, capsys):
    p = api.load_pipeline(PLANET, {"stack.frames": [12]})
    assert p.nodes["stack"].params.frames == [12] and p.nodes["stack"].params.percent is None
    kept = api.load_pipeline(PLANET, {"stack.weight_power": 1.0})  # no conflict: the file's sizes stay
    assert kept.nodes["stack"].params.percent == [10, 25, 50]
    done = _main(capsys, "explain", str(PLANET), "-i", str(recording), "--set", "stack.frames=12", "--set",
                 "stack.percent=5", "--cache", str(tmp_path / "c"))
    assert done.returncode == 2
    assert "node 'stack': give stack sizes as either percent or frames, not both" in done.stderr.strip()


def test_version_and_cache_gc_sizes(recording, tmp_path, capsys):
    assert _main(capsys, "--version").stdout.strip() == f"luckystack {__version__}"
    cache = tmp_path / "c"
    api.run(api.load_pipeline(PLANET, {"stack.percent": [25]}), [recording], cache=cache, out=tmp_path / "o",
            jobs=1, report=False)
    entries = sorted(p.name for p in cache.iterdir())
    done = _main(capsys, "--cache", str(cache), "cache", "gc", "--max-size", "50")
    assert done.returncode == 2 and "give the unit, e.g. 50GB or 50MB" in done.stderr
    assert sorted(p.name for p in cache.iterdir()) == entries  # nothing evicted
    done = _main(capsys, "--cache", str(cache), "cache", "gc")  # the 20GB default keeps everything
    assert done.returncode == 0 and done.stdout.startswith("evicted 0 entries")
    assert "default: 20GB" in " ".join(_main(capsys, "cache", "--help").stdout.split())


def test_a_moon_through_the_planet_pipeline_suggests_the_surface_pipeline(tmp_path):
    moon = write_recording(tmp_path / "moon.ser", simulate("moon", 6, 192, 160, seed=1))
    done = _cli("run", str(PLANET), "-i", str(moon), "--cache", str(tmp_path / "c"), "-o", str(tmp_path / "o"),
                cwd=tmp_path)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
    assert done.returncode == 1 and len(errors) == 1 and "surface.json" in errors[0]


def test_too_few_frames_for_the_stack_sizes_warns():
    sizes = [{"label": "P10", "frames": 1}, {"label": "P25", "frames": 1}, {"label": "P50", "frames": 2}]
    small, same = size_warnings(sizes)
    assert small.startswith("P10 stacks 1 frame, P25 stacks 1 frame, P50 stacks 2 frames per AP")
    assert same.startswith("stack sizes P10 and P25 take the same 1 frame(s)")
    assert size_warnings([{"label": "P25", "frames": 50}, {"label": "P50", "frames": 100}]) == []
    # candidates of one size at several Fourier powers share their frames but not their image
    assert size_warnings([{"label": "P25w2", "frames": 50, "power": 2.0},
                          {"label": "P25w4", "frames": 50, "power": 4.0}]) == []


def test_sweep_folders_have_shell_friendly_names(recording, tmp_path):
    runs = api.run(api.load_pipeline(PLANET), [recording], cache=tmp_path / "c", out=tmp_path / "o", jobs=1,
                   sweep={"stack.percent": [[10, 25], 50]}, report=False)
    assert [r.label for r in runs] == ["percent-10+25", "percent-50"]
    for r in runs:
        assert (tmp_path / "o" / "jupiter" / r.label / "run.json").is_file()
        assert RunRecord.load(tmp_path / "o" / "jupiter" / r.label / "run.json").variant == r.label
    assert os.sep not in "".join(r.label for r in runs)
    assert np.all([set(r.label) <= set("abcdefghijklmnopqrstuvwxyz0123456789._+-") for r in runs])


def test_setting_the_value_auto_chose_reuses_the_cache_and_explain_says_why(recording, tmp_path):
    cache = tmp_path / "c"
    auto = api.load_pipeline(PLANET, {"stack.percent": [25]})
    [first] = api.run(auto, [recording], cache=cache, out=tmp_path / "o", jobs=1, report=False)
    chosen = api.read_result(auto, "align", recording, cache)["aps"].meta["default_size"]
    explicit = api.load_pipeline(PLANET, {"stack.percent": [25], "align.ap_size": chosen})
    statuses = api.explain(explicit, recording, cache)
    assert all(s.cached for s in statuses.values())
    assert statuses["align"].same_as == {"ap_size": [chosen]}
    assert f"ap_size [{chosen}] is what auto chose" in api.render(statuses)
    [again] = api.run(explicit, [recording], cache=cache, out=tmp_path / "o", jobs=1, report=False)
    assert again.record.ran() == [] and again.record.nodes["post"].key == first.record.nodes["post"].key
    other = api.load_pipeline(PLANET, {"stack.percent": [25], "align.ap_size": chosen + 8})
    assert not api.explain(other, recording, cache)["align"].cached  # another size is another result
    api.CacheStore(cache).remove(first.record.nodes["align"].key)  # the alias's target evicted
    assert not api.explain(explicit, recording, cache)["align"].cached


def test_simulate_shows_its_progress(tmp_path, capsys):
    done = _main(capsys, "simulate", "--frames", "6", "--size", "96x80", "-o", str(tmp_path / "s.ser"))
    assert done.returncode == 0 and (tmp_path / "s.ser").is_file()
    assert "[simulate] 6 frames of jupiter, 96x80" in done.stderr and "[simulate] written in" in done.stderr
