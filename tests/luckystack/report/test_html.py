"""The report renders in a real headless browser with every picture loaded."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from luckystack.report.html import NodeRow, Picture, ReportData, render, write_report

from .browser import CHROMIUM, dump_dom

needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


def _png(path: Path) -> None:
    cv2.imwrite(str(path), (np.random.default_rng(0).random((40, 60)) * 255).astype(np.uint8))


def _data(files: list[str]) -> ReportData:
    return ReportData(
        title="jupiter — planet", input_name="jupiter.ser", pipeline={"name": "planet"},
        nodes=[NodeRow("stack", "stack", "ran", 1.25, "param percent changed"),
               NodeRow("reader", "reader", "cached", 0.01)],
        diagnostics=[Picture(f, f"figure {f}") for f in files],
        comparison_columns=["result", "sharpness"], comparison_rows=[["P25", "1.5 <b>"]],
    )


def test_render_escapes_text_and_lists_nodes():
    page = render(_data(["a.png"]))
    assert "1.5 &lt;b&gt;" in page
    assert '<td class="ran">ran</td>' in page and '<td class="cached">cached</td>' in page
    assert 'src="a.png"' in page


def test_write_report_refuses_missing_pictures(tmp_path):
    with pytest.raises(FileNotFoundError, match="b.png"):
        write_report(tmp_path, _data(["b.png"]))
    assert not (tmp_path / "report.html").exists()


@needs_browser
def test_every_picture_loads_in_headless_browser(tmp_path):
    for name in ("a.png", "b.png"):
        _png(tmp_path / name)
    dom = dump_dom(write_report(tmp_path, _data(["a.png", "b.png"])))
    assert len(re.findall(r'data-loaded="1"', dom)) == 2
    assert 'data-loaded="0"' not in dom


@needs_browser
def test_browser_check_detects_a_broken_picture(tmp_path):
    _png(tmp_path / "a.png")
    report = write_report(tmp_path, _data(["a.png"]))
    (tmp_path / "a.png").unlink()
    dom = dump_dom(report)
    assert 'data-loaded="0"' in dom


@needs_browser
def test_the_blink_buttons_switch_the_crop(tmp_path):
    from luckystack.report.html import ResultEntry

    for name in ("t0.png", "v0.png", "c0.png", "t1.png", "v1.png", "c1.png"):
        _png(tmp_path / name)
    data = _data([])
    data.results = [ResultEntry("P10", 12, ["P10/x.tif"], "t0.png", "v0.png", "c0.png"),
                    ResultEntry("P50", 60, ["P50/x.tif"], "t1.png", "v1.png", "c1.png")]
    page = write_report(tmp_path, data)
    assert 'id="blink-img"' in page.read_text() and 'src="c0.png" alt="blink"' in page.read_text()
    page.write_text(page.read_text().replace("</body>", "<script>lsShow(1)</script></body>"))  # press "P50"
    dom = dump_dom(page)
    assert re.search(r'<img src="c1.png" alt="blink"[^>]*id="blink-img"', dom)
    assert '<span id="blink-label">P50</span>' in dom and "12 frames per AP" in dom
