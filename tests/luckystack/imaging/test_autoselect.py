"""autoselect.choose: the highest score wins, ties go to the first, and it says so in a table."""

import cv2
import numpy as np
import pytest

from luckystack.imaging.autoselect import choose, nested_scores


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


def _nested_stacks(sizes=(3, 6, 15, 30), noise=0.03, seed=0):
    """Stacks of the best n of 30 frames: blur grows with rank, the noise is coloured (smoothed, as
    after sub-pixel resampling); and each stack's PSNR against the sharp truth."""
    rng = np.random.default_rng(seed)
    truth = cv2.GaussianBlur(np.random.default_rng(1).random((96, 128)).astype(np.float32), (0, 0), 1.5)
    frames = [cv2.GaussianBlur(truth, (0, 0), 0.6 + 0.02 * k)
              + cv2.GaussianBlur(noise * rng.standard_normal(truth.shape).astype(np.float32), (0, 0), 0.7)
              for k in range(30)]
    stacks = {f"F{n}": (0.3 + np.mean(frames[:n], axis=0))[..., None] for n in sizes}
    psnr = {k: -10 * np.log10(np.mean((v[..., 0] - 0.3 - truth) ** 2)) for k, v in stacks.items()}
    return stacks, {f"F{n}": n for n in sizes}, psnr


def test_the_nested_score_measures_the_coloured_noise_the_image_alone_misses():
    stacks, frames, psnr = _nested_stacks()
    best = max(psnr, key=psnr.get)
    assert best != "F3"
    assert choose(stacks, frames=frames).chosen == best
    assert choose(stacks).chosen == "F3"  # the white-noise estimate takes the coloured noise for detail
    with pytest.raises(ValueError, match="two different"):
        nested_scores({"a": stacks["F3"], "b": stacks["F6"]}, {"a": 3, "b": 3})
    # without frame counts (or all the same) each image is scored alone
    assert choose(stacks, frames={k: 5 for k in stacks}).scores == choose(stacks).scores
