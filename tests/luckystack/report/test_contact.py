"""Contact sheets show every result with one stretch and a label."""

import numpy as np
import pytest

from luckystack.report.contact import common_stretch, contact_sheet, to_display


def test_one_stretch_for_all_tiles():
    dark = np.full((50, 60), 0.2, np.float32)
    bright = np.full((50, 60), 0.8, np.float32)
    sheet = contact_sheet([dark, bright], ["dark", "bright"], columns=2, tile=60)
    assert sheet.dtype == np.uint8 and sheet.shape[2] == 3
    assert sheet[10, 10].mean() < sheet[10, 70].mean()  # the darker image stays darker


def test_drizzled_result_is_brought_to_common_scale():
    small = np.zeros((40, 40, 1), np.float32)
    big = np.zeros((80, 80, 1), np.float32)
    sheet = contact_sheet([small, big], ["1x", "2x"], columns=2, tile=400)
    assert sheet.shape[1] == 80  # two 40-px tiles


def test_labels_must_match_images():
    with pytest.raises(ValueError):
        contact_sheet([np.zeros((4, 4))], ["a", "b"])


def test_display_clips_to_points():
    lo, hi = common_stretch([np.linspace(0, 1, 1000, dtype=np.float32)])
    disp = to_display(np.array([[-1.0, 2.0]], np.float32), lo, hi)
    assert disp[0, 0, 0] == 0 and disp[0, 1, 0] == 255
