"""Sweep/batch comparisons: ranking, contact sheet, CSV, report and summary, from real runs and files.

A small real node type ("t-disc") turns a simulated recording's truth into result TIFFs the way the
``post`` node lays them out (``<out>/<stem>/<variant>/P25/<stem>_P25_ap48.tif``): blurred by its
``blur`` param, with more noise for the smaller stack size. Real engine runs, real files, real truth.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import Field

from luckystack.export import write_tiff
from luckystack.graph import api
from luckystack.graph.node import Params, Result, node_type
from luckystack.graph.progress import Reporter
from luckystack.report.comparison import Measured, measure, rank_agreement, write_comparison
from luckystack.simulate import load_truth, simulate_command

NOISE = {"P10": 0.02, "P50": 0.006}


class DiscParams(Params):
    blur: float = Field(1.0, ge=0, le=10, description="Gaussian blur sigma of the result (px)")


def _disc_export(results, params, out_dir: Path, stem: str) -> list[Path]:
    written = []
    for label in results["images"].meta["labels"]:
        path = Path(out_dir) / label / f"{stem}_{label}_ap48.tif"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_tiff(path, results["images"].array(f"image_{label}"))
        written.append(path)
    return written


@node_type("t-disc", params=DiscParams, outputs=("images",), version="1", reads_input=True, export=_disc_export)
def disc(ctx) -> Result:
    """The recording's truth, blurred, cropped by 8 px, plus noise per stack size."""
    truth = load_truth(ctx.input_file).image[8:-8, 8:-8]
    arrays = {}
    for k, (label, sigma) in enumerate(NOISE.items()):
        img = cv2.GaussianBlur(truth, (0, 0), ctx.params.blur)[..., None] if ctx.params.blur else truth
        arrays[f"image_{label}"] = img + np.random.default_rng(k).normal(0, sigma, img.shape).astype(np.float32)
    return Result(arrays=arrays, meta={"labels": list(NOISE)})


PIPE = {"name": "discs", "nodes": {"post": {"type": "t-disc"}}}


def _recording(folder: Path, seed: int) -> Path:
    return simulate_command("jupiter", 2, folder / f"rec{seed}.ser", 200, 150, seed=seed)["ser"]


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_sweep_comparison_ranks_writes_sheet_table_and_report(tmp_path):
    rec = _recording(tmp_path, 1)
    runs = api.run(api.pipeline_from_dict(PIPE), [rec], cache=tmp_path / "c", out=tmp_path / "o", jobs=1,
                   sweep={"post.blur": [2.5, 0.7, 1.5]}, reporter=Reporter())
    report = write_comparison(runs, tmp_path / "o")
    folder = tmp_path / "o" / "rec1" / "comparison"
    assert report == folder / "report.html"
    rows = _csv(folder / "comparison.csv")
    assert len(rows) == 6 and [int(r["rank"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    # For each stack size the least blurred result ranks best, and PSNR against the truth agrees.
    for stack in NOISE:
        ours = [r for r in rows if r["stack"] == stack]
        assert [r["setting"] for r in ours] == ["blur-0.7", "blur-1.5", "blur-2.5"]
        psnr = [float(r["psnr"]) for r in ours]
        assert psnr == sorted(psnr, reverse=True) and psnr[0] > 25
        assert all(0 < float(r["ssim"]) <= 1 for r in ours)
    assert rows[0]["setting"] == "blur-0.7" and rows[0]["file"].endswith(f"blur-0.7/{rows[0]['stack']}/"
                                                                        f"rec1_{rows[0]['stack']}_ap48.tif")
    # Contact sheet: 3 variants × 2 stack sizes in a 2-column grid of 184×134 tiles plus labels.
    sheet = cv2.imread(str(folder / "contact.png"))
    assert sheet.shape == (3 * (134 + 22), 2 * 184, 3)
    detail = cv2.imread(str(folder / "detail.png"))
    assert detail.shape[1] == 2 * 184 and detail.shape[0] == 3 * (134 + 22)
    ok, blink = cv2.imreadanimation(str(folder / "blink.gif"))
    assert ok and len(blink.frames) == 6
    page = report.read_text()
    assert "contact.png" in page and "blur-0.7 P50" in page and "Spearman" in page
    assert not (tmp_path / "o" / "comparison-summary.csv").exists()


def test_batch_sweep_writes_a_table_per_recording_and_a_summary(tmp_path):
    recs = [_recording(tmp_path, 1), _recording(tmp_path, 2)]
    runs = api.run(api.pipeline_from_dict(PIPE), recs, cache=tmp_path / "c", out=tmp_path / "o", jobs=1,
                   sweep={"post.blur": [2.0, 0.8]}, reporter=Reporter())
    summary = write_comparison(runs, tmp_path / "o")
    assert summary == tmp_path / "o" / "comparison-summary.csv"
    for stem in ("rec1", "rec2"):
        assert len(_csv(tmp_path / "o" / stem / "comparison" / "comparison.csv")) == 4
    rows = _csv(summary)
    assert len(rows) == 4 and all(r["recordings"] == "2" for r in rows)
    assert [float(r["mean_rank"]) for r in rows] == sorted(float(r["mean_rank"]) for r in rows)
    assert rows[0]["setting"] == "blur-0.8" and rows[-1]["setting"] == "blur-2.0"
    assert int(rows[0]["wins"]) == 2 and float(rows[0]["mean_psnr"]) > float(rows[-1]["mean_psnr"])
    assert (tmp_path / "o" / "comparison-summary.html").is_file()


def test_runs_without_images_give_no_comparison(tmp_path):
    rec = _recording(tmp_path, 1)
    pipe = {"name": "noexport", "nodes": {"post": {"type": "t-disc"}}}
    runs = api.run(api.pipeline_from_dict(pipe), [rec], cache=tmp_path / "c", out=tmp_path / "o", jobs=1,
                   sweep={"post.blur": [1.0, 2.0]}, reporter=Reporter())
    for r in runs:
        for p in r.record.exports():
            Path(p).unlink()
    assert write_comparison(runs, tmp_path / "o") is None


def test_score_prefers_sharp_and_clean_without_truth():
    truth = _planet()
    imgs = {"sharp": _blur(truth, 0.8, 0.004), "soft": _blur(truth, 2.0, 0.004), "noisy": _blur(truth, 0.8, 0.05)}
    ranked = measure([Measured(k, "", Path(k), v) for k, v in imgs.items()])
    assert [r.setting for r in ranked][0] == "sharp"
    assert {r.setting: r.rank for r in ranked}["sharp"] < {r.setting: r.rank for r in ranked}["noisy"]
    assert all(r.truth_rank is None for r in ranked) and rank_agreement(ranked) is None


def test_measure_rejects_nothing():
    with pytest.raises(ValueError):
        measure([])


def _planet() -> np.ndarray:
    yy, xx = np.mgrid[:120, :120]
    disc = ((yy - 60) ** 2 + (xx - 60) ** 2 < 45**2) * (0.5 + 0.2 * np.sin(yy / 2.5) + 0.1 * np.cos(xx / 4.0))
    return disc.astype(np.float32)[..., None]


def _blur(img: np.ndarray, sigma: float, noise: float) -> np.ndarray:
    out = cv2.GaussianBlur(img[..., 0], (0, 0), sigma)
    return (out + np.random.default_rng(3).normal(0, noise, out.shape)).astype(np.float32)[..., None]
