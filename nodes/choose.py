"""The ``choose`` node: keep the best of the merged candidate stacks, chosen by the no-truth score.

Input ``images`` is merge's result (``image_{label}`` per stack size); the output has the same form,
so ``post`` exports what it keeps. ``pick: auto`` keeps the candidate with the highest no-truth score
(:func:`luckystack.imaging.autoselect.choose`: the stack sizes' own differences measure their noise;
see that module for what the choice is trusted for); a label (``P10``) keeps that one; ``all`` keeps
every candidate. Every choice records the candidates' scores in meta ``choice`` {"pick", "chosen",
"best_by_score", "candidates": [{"label", "frames", "score"}]}, which the run report and ``explain``
show.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from luckystack.graph.node import Context, NodeError, Params, Port, Result, node_type
from luckystack.imaging.autoselect import Choice
from luckystack.imaging.autoselect import choose as choose_best


class ChooseParams(Params):
    pick: str = Field(
        "auto", min_length=1, description="Which merged stack to keep: auto (the best by the no-truth "
        "score: detail above the noise that the stack sizes' differences measure, which ranks stack sizes "
        "as PSNR against the truth does on simulated recordings), a stack label such as P10, or all.")
    score: Literal["nested", "image", "half"] = Field(
        "nested", description="The no-truth score: nested (the noise measured from the differences of the "
        "stack sizes, whose frames nest; measured best at Fourier power 0–2; with several Fourier powers, "
        "the sizes of each power scored together), image (each stack alone, with a white-noise estimate; "
        "better at Fourier power 4, fooled by stacks of very few frames) or half (each candidate's own "
        "noise from its half stacks, stack.halves: an estimate of the error against the truth over any "
        "candidates; not better than nested at choosing the Fourier power, docs/auto-settings.md).")


@node_type("choose", params=ChooseParams, inputs={"images": Port(doc="merge's result", kind="images")},
           outputs={"images": "images"}, version="3")
def choose(ctx: Context) -> Result:
    """Score every merged stack and keep the best (or the one asked for)."""
    merged = ctx.inputs["images"]
    labels = list(merged.meta.get("labels") or [])
    if not labels:
        raise NodeError("the images input holds no stacks to choose from")
    pick = ctx.params.pick
    if pick not in ("auto", "all") and pick not in labels:
        raise NodeError(f"pick {pick!r} is not among the stacks ({', '.join(labels)}); give auto, all or one of them")
    images = {label: np.asarray(merged.array(f"image_{label}")) for label in labels}
    sizes = {s["label"]: s for s in merged.meta.get("sizes", [])}
    frames = {label: sizes.get(label, {}).get("frames") for label in labels}
    halves = merged.meta.get("halves") or {}
    if ctx.params.score == "half" and not all(label in halves for label in labels):
        raise NodeError("score half needs the stack's half stacks: set stack.halves true")
    try:
        if ctx.params.score == "half":
            result = choose_best(images, noises={label: np.asarray(merged.array(f"image_{halves[label]}"))
                                                 for label in labels})
        elif ctx.params.score == "nested" and any("power" in s for s in sizes.values()):
            result = _nested_per_power(images, frames, sizes)
        else:
            result = choose_best(images, frames=frames if ctx.params.score == "nested" else None)
    except ValueError as exc:
        raise NodeError(f"cannot choose a stack: {exc}") from exc
    chosen = result.chosen if pick in ("auto", "all") else pick
    keep = labels if pick == "all" else [chosen]
    meta = dict(merged.meta)
    meta["labels"] = keep
    meta["sizes"] = [s for s in merged.meta.get("sizes", []) if s["label"] in keep]
    meta.pop("halves", None)
    meta["choice"] = {"pick": pick, "chosen": chosen, "best_by_score": result.chosen, "score": ctx.params.score,
                      "candidates": [{"label": label, "frames": frames.get(label), "score": result.scores[label]}
                                     | ({"power": sizes[label]["power"]} if "power" in sizes.get(label, {}) else {})
                                     for label in labels]}
    return Result(arrays={f"image_{label}": images[label] for label in keep}, meta=meta)


def _nested_per_power(images: dict[str, np.ndarray], frames: dict[str, int], sizes: dict[str, dict]) -> Choice:
    """Nested scores of the stack sizes of each Fourier power apart (their frames nest within one
    power), the best of all kept."""
    scores: dict[str, float] = {}
    for power in sorted({s.get("power") for s in sizes.values()}, key=float):
        group = [label for label in images if sizes[label].get("power") == power]
        scores |= choose_best({label: images[label] for label in group},
                              frames={label: frames[label] for label in group}).scores
    best = max(v for v in scores.values() if np.isfinite(v))
    return Choice(next(label for label in images if scores[label] == best), {label: scores[label] for label in images})
