"""Acceptance on simulated recordings with a known truth: the whole pipeline (measured alignment, no
sharpening) against the oracle baselines, which know the true shifts and the true seeing.

Measured on these exact recordings (200 frames, 320×240, seed 0), PSNR of the P10 stack minus the best
baseline: jupiter +0.62 dB, moon +0.37 dB, sun +0.35 dB. Noise-blind mid-band transfer of P10 vs the best
single frame: moon 0.76 vs 0.72, sun 0.75 vs 0.58; on jupiter the oracle's best frame is still sharper
(0.85 vs 0.74) — see the README's quality section.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from luckystack.simulate.evaluate import run_and_evaluate

REPO = Path(__file__).resolve().parents[1]
PIPELINES = {"jupiter": "planet.json", "moon": "surface.json", "sun": "surface.json"}


@pytest.fixture(scope="module", params=sorted(PIPELINES))
def evaluation(request, tmp_path_factory):
    scene = request.param
    return run_and_evaluate(scene, 200, 320, 240, REPO / "pipelines" / PIPELINES[scene],
                            tmp_path_factory.mktemp(scene), seed=0, sets={"stack.percent": [10]})


def test_stack_beats_every_baseline_on_psnr(evaluation):
    for name, (gain_db, _) in evaluation.margins("P10").items():
        assert gain_db > 0.2, f"{evaluation.scene}: P10 only {gain_db:+.2f} dB over {name}"


def test_stack_is_sharper_than_the_averaged_baselines(evaluation):
    ours = evaluation.stack["P10"].transfer
    for name in ("mean_all", "mean_best"):
        assert ours > evaluation.baseline[name].transfer + 0.01, name


def test_stack_is_sharper_than_the_best_single_frame(evaluation, request):
    if evaluation.scene == "jupiter":
        request.applymarker(pytest.mark.xfail(strict=True, reason="known shortfall: the oracle's best "
                                              "Jupiter frame is sharper than P10 (0.85 vs 0.74)"))
    assert evaluation.stack["P10"].transfer > evaluation.baseline["best_frame"].transfer + 0.02
