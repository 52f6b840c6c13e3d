"""Acceptance on simulated recordings with a known truth: the whole pipeline (measured alignment, no
sharpening) against the oracle baselines, which know the true shifts and the true seeing.

Measured on these exact recordings (200 frames, 320×240, seed 0), PSNR of the P10 stack minus the best
baseline: jupiter +2.37 dB, moon +0.94 dB, sun +0.68 dB. Noise-blind mid-band transfer of P10 vs the best
single frame: moon 0.80 vs 0.72, sun 0.81 vs 0.58; on jupiter the oracle's best frame is still sharper
(0.855 vs 0.809) — see the README's quality section and the last test here.
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
        assert gain_db > 0.4, f"{evaluation.scene}: P10 only {gain_db:+.2f} dB over {name}"


def test_stack_is_sharper_than_the_averaged_baselines(evaluation):
    ours = evaluation.stack["P10"].transfer
    for name in ("mean_all", "mean_best"):
        assert ours > evaluation.baseline[name].transfer + 0.01, name


def test_stack_is_sharper_than_the_best_single_frame(evaluation, request):
    if evaluation.scene == "jupiter":
        request.applymarker(pytest.mark.xfail(strict=True, reason="known shortfall: the oracle's best "
                                              "Jupiter frame is sharper than P10 (0.855 vs 0.809)"))
    assert evaluation.stack["P10"].transfer > evaluation.baseline["best_frame"].transfer + 0.02


def test_the_pipeline_keeps_the_sharpness_of_the_best_frames(tmp_path):
    """Why P10 cannot beat Jupiter's best frame: not a loss in alignment, resampling or merging. Stacking
    only the best 1 or 3 frames per AP through the same pipeline keeps the oracle best frame's transfer
    (measured 0.853 and 0.850 vs 0.855) and the 3 frames already gain 4 dB PSNR; P10's lower transfer
    is the seeing of the 20 frames it averages (a weighted mean of transfers is never above the best)."""
    ev = run_and_evaluate("jupiter", 200, 320, 240, REPO / "pipelines" / "planet.json", tmp_path, seed=0,
                          sets={"stack.percent": None, "stack.frames": [1, 3]})
    best = ev.baseline["best_frame"]
    assert ev.stack["F1"].transfer > best.transfer - 0.02
    assert ev.stack["F3"].transfer > best.transfer - 0.02
    assert ev.stack["F3"].psnr > best.psnr + 2.0
