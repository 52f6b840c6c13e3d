"""The no-truth score ranks real candidate stacks (stack sizes × Fourier powers) as PSNR against the
truth does. The full table over scenes, seeds and seeing is in docs/auto-settings.md
(``python -m luckystack.simulate.score_trust``); this keeps a small slice of it."""

import numpy as np

from luckystack.imaging.image_metrics import noise_sigma
from luckystack.simulate.score_trust import candidates, rank_correlation


def test_score_ranks_candidate_stacks_like_psnr(tmp_path):
    cands = candidates("saturn", 0, "average", tmp_path, frames=80, size=(256, 192), powers=(0.0, 2.0, 4.0),
                       ap_sizes=(32,))
    assert len(cands) == 12 and len({round(c.psnr, 3) for c in cands}) > 6  # real, different stacks
    assert rank_correlation(cands) >= 0.9
    # a score that cannot tell (the noise level prefers the largest, blurriest stacks) fails the same check
    assert rank_correlation(cands, lambda image: -np.log(noise_sigma(image))) < 0.5
