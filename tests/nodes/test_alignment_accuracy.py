"""Acceptance: AP shifts of the real stabilize → analyse → reference → align-aps nodes against the
simulator's true local displacement (issue 4: < 0.15 px RMS on the sharp half). See alignment_eval for
the geometry; ``fair`` removes the reference's own distortion (the time-mean of the field over the few
frames averaged into it, which shrinks with recording length), ``total`` keeps it."""

import numpy as np
import pytest

from luckystack.simulate import load_truth, simulate, write_recording
from tests.nodes.alignment_eval import evaluate, run_pipeline

APS = {"align-aps": {"ap_size": [64]}}


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sim")
    return {scene: write_recording(folder / f"{scene}.ser", simulate(scene, 80, 320, 240, 8, "mono", 1))
            for scene in ("jupiter", "moon")}


@pytest.mark.parametrize("scene, fair_max, total_max, global_max",
                         [("jupiter", 0.16, 0.23, 0.7), ("moon", 0.14, 0.25, 1.4)])
def test_ap_shift_error_on_the_sharp_half(recordings, scene, fair_max, total_max, global_max):
    ser = recordings[scene]
    truth = load_truth(ser)
    acc = evaluate(truth, run_pipeline(ser, APS), scene)
    # Measured (320×240, 80 frames, seed 1, 64 px APs): jupiter fair 0.123 total 0.177 global 0.53;
    # moon fair 0.084 total 0.198 global 1.11 (the surface anchor follows the local field at the anchor).
    assert acc.field_rms > 0.6  # the signal is several times the error: the APs really track the field
    assert acc.fair < fair_max, acc
    assert acc.total < total_max, acc
    assert acc.fair_fixed < 0.08, acc
    assert acc.replaced < 0.01, acc
    assert acc.global_rms < global_max, acc


def test_alignment_is_identical_for_any_jobs(recordings):
    ser = recordings["jupiter"]
    a = run_pipeline(ser, APS, jobs=1)
    b = run_pipeline(ser, APS, jobs=2)
    for name, port in (("shifts", "shift"), ("reference", "image"), ("aps", "shift"), ("aps", "quality")):
        assert np.array_equal(a[name].array(port), b[name].array(port), equal_nan=True)
