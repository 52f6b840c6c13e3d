"""Issue 7 end to end: a 3 stack sizes × 2 AP sizes sweep of pipelines/planet.json on a small simulated
recording computes align twice and stack six times, and writes the contact sheet and table."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from luckystack.graph import api
from luckystack.graph.progress import Reporter
from luckystack.report.comparison import write_comparison
from luckystack.simulate import simulate_command

import luckystack.nodes  # noqa: F401  (registers the node types)

PLANET = Path(__file__).resolve().parents[2] / "pipelines" / "planet.json"


def test_stack_and_ap_size_sweep_shares_the_cache_and_compares(tmp_path):
    ser = simulate_command("jupiter", 40, tmp_path / "jup.ser", 192, 144, seed=3)["ser"]
    pipeline = api.load_pipeline(PLANET)
    sweep = {"stack.percent": [10, 25, 50], "align.ap_size": [24, 40]}
    plan = api.explain_sweep(pipeline, [ser], tmp_path / "cache", sweep)
    assert plan.needed["align"] == 2 and plan.needed["stack"] == 6 and plan.alone["align"] == 6
    runs = api.run(pipeline, [ser], cache=tmp_path / "cache", out=tmp_path / "out", jobs=1, sweep=sweep,
                   reporter=Reporter())
    counts = api.sweep_executions(runs)
    assert counts["align"] == 2 and counts["stack"] == 6
    assert all(counts[n] == 1 for n in ("reader", "stabilize", "analyse", "reference"))
    report = write_comparison(runs, tmp_path / "out")
    folder = tmp_path / "out" / "jup" / "comparison"
    assert report == folder / "report.html" and (folder / "contact.png").is_file()
    with open(folder / "comparison.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and sorted(int(r["rank"]) for r in rows) == [1, 2, 3, 4, 5, 6]
    assert {r["stack"] for r in rows} == {"P10", "P25", "P50"}
    assert all(float(r["psnr"]) > 25 for r in rows)  # the truth beside the .ser was found and matched
    # The no-truth score should order the stack sizes as PSNR against the truth does.
    by = {s: [r for r in rows if r["stack"] == s] for s in ("P10", "P25", "P50")}
    score = {s: sum(float(r["score"]) for r in v) for s, v in by.items()}
    psnr = {s: sum(float(r["psnr"]) for r in v) for s, v in by.items()}
    assert sorted(score, key=score.get) == sorted(psnr, key=psnr.get)
