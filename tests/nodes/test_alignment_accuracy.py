"""Acceptance: AP shifts measured with the real stabilize → analyse → reference → align nodes against the
simulator's true local displacement (issue 4: < 0.15 px RMS on the sharp half). See alignment_eval for
the geometry; ``fair`` removes the reference's own distortion (the time-mean of the field over the few
frames averaged into it, which shrinks with recording length), ``total`` keeps it."""

import numpy as np
import pytest

from luckystack.simulate import load_truth, simulate, write_recording
from tests.nodes.alignment_eval import evaluate, run_pipeline

DEFAULTS: dict = {}  # every node's defaults, as pipelines/planet.json and surface.json leave align
APS64 = {"align": {"ap_size": [64]}}


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sim")
    return {scene: write_recording(folder / f"{scene}.ser", simulate(scene, 80, 320, 240, 8, "mono", 1))
            for scene in ("jupiter", "moon", "sun")}


@pytest.mark.parametrize("scene, params, fair_max, total_max, global_max", [
    ("jupiter", DEFAULTS, 0.15, 0.22, 0.7), ("moon", DEFAULTS, 0.15, 0.23, 1.4), ("sun", DEFAULTS, 0.15, 0.28, 1.0),
    ("jupiter", APS64, 0.15, 0.22, 0.7), ("moon", APS64, 0.15, 0.24, 1.4)])
def test_ap_shift_error_on_the_sharp_half(recordings, scene, params, fair_max, total_max, global_max):
    ser = recordings[scene]
    truth = load_truth(ser)
    acc = evaluate(truth, run_pipeline(ser, params), scene)
    # Measured (320×240, 80 frames, seed 1), fair / total / global px: default APs (jupiter 30 × 40 px,
    # moon 15 × 96, sun 12 × 104; all matched over 64 px windows) jupiter 0.144 / 0.189 / 0.53,
    # moon 0.104 / 0.190 / 1.11, sun 0.131 / 0.235 / 0.72; 64 px APs: jupiter 0.128 / 0.179, moon 0.104 / 0.203
    # (align v5; sun with 64 px APs is not asserted)
    # (the surface anchor follows the local field at the anchor, hence moon's global error).
    assert acc.field_rms > 0.6  # the signal is several times the error: the APs really track the field
    assert acc.fair < fair_max, acc
    assert acc.total < total_max, acc
    assert acc.fair_fixed < 0.08, acc
    assert acc.replaced < 0.01, acc
    assert acc.global_rms < global_max, acc


def test_alignment_is_identical_for_any_jobs(recordings):
    ser = recordings["jupiter"]
    a = run_pipeline(ser, DEFAULTS, jobs=1)
    b = run_pipeline(ser, DEFAULTS, jobs=2)
    for name, port in (("shifts", "shift"), ("reference", "image"), ("aps", "quality"), ("aps", "reference")):
        assert np.array_equal(a[name].array(port), b[name].array(port), equal_nan=True)
    assert np.array_equal(a["local"], b["local"]) and np.array_equal(a["ok"], b["ok"])
