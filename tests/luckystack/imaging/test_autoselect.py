"""autoselect.choose: the highest score wins, ties go to the first, and it says so in a table."""

import cv2
import numpy as np
import pytest

from luckystack.imaging.autoselect import choose


def _scene(blur: float, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(np.random.default_rng(1).random((96, 128)).astype(np.float32), (0, 0), 1.0)
    img = cv2.GaussianBlur(base, (0, 0), blur) + noise * rng.standard_normal(base.shape).astype(np.float32)
    return (0.3 + img)[..., None]


def test_the_sharper_stack_wins_and_the_table_marks_it():
    choice = choose({"P50": _scene(2.0, 0.002), "P10": _scene(0.8, 0.004), "P25": _scene(1.4, 0.003)})
    assert choice.chosen == "P10"
    assert list(choice.scores) == ["P50", "P10", "P25"]
    lines = choice.table().splitlines()
    assert lines[1].startswith("P10") and lines[1].endswith("<- chosen") and lines[-1].startswith("P50")


def test_ties_go_to_the_first_and_nothing_to_choose_from_is_an_error():
    same = _scene(1.0, 0.0)
    assert choose({"a": same, "b": same.copy()}).chosen == "a"
    with pytest.raises(ValueError, match="no candidates"):
        choose({})
