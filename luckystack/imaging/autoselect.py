"""Choosing among candidate stacks of one recording by the no-truth score.

:func:`choose` scores every candidate with :func:`luckystack.imaging.image_metrics.score` and picks the
highest. On simulated recordings (docs/auto-settings.md, ``python -m luckystack.simulate.score_trust``)
the score ranks the stack sizes of one Fourier power and AP size exactly as PSNR against the truth
does (Spearman 1.0 on every scene, seed and seeing measured); across Fourier powers and AP sizes it is
less reliable, so those are not chosen this way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from luckystack.imaging.image_metrics import score as default_score


@dataclass(frozen=True)
class Choice:
    """The chosen candidate's label and every candidate's score (higher is better), in given order."""

    chosen: str
    scores: dict[str, float]

    def table(self) -> str:
        """A small text table of the candidates, best first, the chosen one marked."""
        best = max(self.scores.values())
        lines = [f"{'candidate':<12}{'score':>9}{'vs best':>9}"]
        for label, s in sorted(self.scores.items(), key=lambda kv: -kv[1]):
            mark = "  <- chosen" if label == self.chosen else ""
            lines.append(f"{label:<12}{s:>9.3f}{s - best:>+9.3f}{mark}")
        return "\n".join(lines)


def choose(images: Mapping[str, np.ndarray], score: Callable[[np.ndarray], float] = default_score) -> Choice:
    """Score every candidate image and choose the best; ties go to the first given."""
    if not images:
        raise ValueError("there are no candidates to choose from")
    scores = {label: float(score(image)) for label, image in images.items()}
    finite = {k: v for k, v in scores.items() if np.isfinite(v)}
    if not finite:
        raise ValueError("no candidate could be scored")
    best = max(finite.values())
    chosen = next(label for label, s in finite.items() if s == best)
    return Choice(chosen, scores)
