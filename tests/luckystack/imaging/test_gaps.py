"""aps_over_gaps: which AP patches cover pixels without a value, frame by frame."""

from __future__ import annotations

import numpy as np

from luckystack.imaging.gaps import aps_over_gaps


def test_only_the_ap_whose_patch_covers_the_gap_leaves_that_frame():
    n, h, w = 8, 60, 80
    gap = np.zeros((h, w), bool)
    gap[20, 20] = True
    masks = {3: gap}  # a gap in frame 3 only
    centres = np.array([[20, 20], [20, 60]])  # in crop coordinates; the crop starts at (0, 0)
    sizes = np.array([10, 10])
    shift = np.zeros((n, 2))
    out = aps_over_gaps(masks.get, shift, np.ones(n, bool), [0, 0], centres, sizes)
    assert out.shape == (n, 2) and out[3, 0] and out.sum() == 1
    shift[3] = [0, 30]  # frame 3 moved: the gap now lies outside AP 0's patch (12 px + 4 px around its centre)
    assert not aps_over_gaps(masks.get, shift, np.ones(n, bool), [0, 0], centres, sizes).any()


def test_an_ap_with_a_gap_in_almost_every_frame_keeps_them_all():
    n = 8
    gap = np.zeros((40, 40), bool)
    gap[10, 10] = True
    centres, sizes = np.array([[10, 10]]), np.array([8])
    every = aps_over_gaps(lambda i: gap if i < 7 else None, np.zeros((n, 2)), np.ones(n, bool), [0, 0], centres, sizes)
    assert not every.any()  # 1 clean frame of 8 is under a quarter: the fill is all there is
    some = aps_over_gaps(lambda i: gap if i < 4 else None, np.zeros((n, 2)), np.ones(n, bool), [0, 0], centres, sizes)
    assert some[:4, 0].all() and not some[4:].any()


def test_no_masks_means_no_gaps():
    assert not aps_over_gaps(None, np.zeros((5, 2)), np.ones(5, bool), [0, 0], np.array([[3, 3]]), np.array([4])).any()
