"""Metrics and baselines for judging stacks against the simulation's truth."""

import cv2
import numpy as np

from luckystack.simulate import simulate
from luckystack.simulate.baselines import baselines
from luckystack.simulate.metrics import compare, find_offset, midband_power_ratio, psnr, ssim


def _scene():
    return simulate("moon", 1, 160, 120, seed=5).truth.image[..., 0]


def test_psnr_and_ssim_basics():
    t = _scene()
    noisy = t + np.random.default_rng(0).normal(0, 0.01, t.shape).astype(np.float32)
    assert abs(psnr(noisy, t) - 40.0) < 0.3  # sigma 0.01 on a 0..1 range
    assert ssim(t, t) > 0.9999 and 0.3 < ssim(noisy, t) < 0.999
    blurred = cv2.GaussianBlur(t, (0, 0), 2.0)
    assert ssim(blurred, t) < ssim(cv2.GaussianBlur(t, (0, 0), 0.7), t)
    assert midband_power_ratio(blurred, t) < 0.2 < midband_power_ratio(cv2.GaussianBlur(t, (0, 0), 0.7), t)


def test_find_offset_recovers_crop_and_subpixel_shift():
    t = _scene()
    shifted = cv2.warpAffine(t, np.array([[1, 0, 0.3], [0, 1, -0.45]]), (160, 120),
                             flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)  # shifted(p) = t(p + (-0.45, 0.3))
    crop = shifted[10:100, 17:140]
    dy, dx = find_offset(crop, t)
    assert abs(dy - 9.55) < 0.01 and abs(dx - 17.3) < 0.01
    score = compare(crop * 0.8 + 0.05, t)  # brightness differences are fitted away
    assert score.psnr > 33 and abs(score.gain - 1.25) < 0.04  # limited by two cubic resamplings


def test_baselines_order_best_tenth_sharper_than_mean_of_all():
    sim = simulate("moon", 60, 160, 120, seed=9, torn_frames=2)
    b = baselines(sim.iter_frames(), sim.truth, fraction=0.1)
    assert b.best_count == 6 and sim.truth.usable[b.best_index]
    scores = {name: compare(img, sim.truth.image) for name, img in b.items()}
    assert scores["mean_best"].sharpness > 1.5 * scores["mean_all"].sharpness
    assert scores["mean_best"].psnr > scores["mean_all"].psnr
    assert scores["best_frame"].transfer > scores["mean_best"].transfer > scores["mean_all"].transfer
    for s in scores.values():  # registered onto the truth at the baselines' crop
        assert abs(s.offset[0] - b.crop[0]) < 0.2 and abs(s.offset[1] - b.crop[1]) < 0.2
