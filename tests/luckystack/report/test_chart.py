"""The report's quality chart: an SVG with both panels, every cut, the rejected frames and round ticks."""

from __future__ import annotations

import numpy as np

from luckystack.report import chart


def test_quality_chart_is_an_svg_with_both_panels_and_every_cut(tmp_path):
    import xml.etree.ElementTree as ET

    score = np.random.default_rng(1).random(5000)
    valid = score > 0.05
    path = chart.quality_figure(tmp_path / "q.svg", score, valid, [("P10", 450), ("P50", 2300), ("P99", 10**6)])
    root = ET.parse(path).getroot()
    assert float(root.get("width")) > 900 and float(root.get("height")) < 400
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text for t in root.iter(f"{ns}text")]
    assert "P10: 450 frames" in texts and "P50: 2300 frames" in texts
    assert not any(t.startswith("P99") for t in texts)  # a cut beyond the usable frames is left out
    assert f"rejected ({int((~valid).sum())} frames)" in texts
    assert {"frame quality over time", "sorted, with each stack size's cut", "frame number"} <= set(texts)
    lines = list(root.iter(f"{ns}polyline"))
    assert len(lines) == 2
    over_time = [tuple(map(float, p.split(","))) for p in lines[0].get("points").split()]
    assert len(over_time) <= 2 * 560 < valid.sum()  # a long recording drawn as its per-pixel envelope
    assert max(y for _, y in over_time) > 260 and min(y for _, y in over_time) < 42  # its dips and peaks kept


def test_nice_ticks_are_round_numbers_up_to_the_top():
    assert chart.nice_ticks(1999).tolist() == [0, 500, 1000, 1500]
    assert chart.nice_ticks(30, 8).tolist() == [0, 5, 10, 15, 20, 25, 30]
    assert chart.nice_ticks(1).tolist() == [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
