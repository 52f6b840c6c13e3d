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
from luckystack.imaging.autoselect import choose as choose_best


class ChooseParams(Params):
    pick: str = Field(
        "auto", min_length=1, description="Which merged stack to keep: auto (the best by the no-truth "
        "score: detail above the noise that the stack sizes' differences measure, which ranks stack sizes "
        "as PSNR against the truth does on simulated recordings), a stack label such as P10, or all.")
    score: Literal["nested", "image"] = Field(
        "nested", description="The no-truth score: nested (the noise measured from the differences of the "
        "stack sizes, whose frames nest; measured best at Fourier power 0–2) or image (each stack alone, "
        "with a white-noise estimate; better at Fourier power 4, fooled by stacks of very few frames).")


@node_type("choose", params=ChooseParams, inputs={"images": Port(doc="merge's result", kind="images")},
           outputs={"images": "images"}, version="2")
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
    frames = {s["label"]: s.get("frames") for s in merged.meta.get("sizes", [])}
    try:
        result = choose_best(images, frames=frames if ctx.params.score == "nested" else None)
    except ValueError as exc:
        raise NodeError(f"cannot choose a stack: {exc}") from exc
    chosen = result.chosen if pick in ("auto", "all") else pick
    keep = labels if pick == "all" else [chosen]
    meta = dict(merged.meta)
    meta["labels"] = keep
    meta["sizes"] = [s for s in merged.meta.get("sizes", []) if s["label"] in keep]
    meta["choice"] = {"pick": pick, "chosen": chosen, "best_by_score": result.chosen,
                      "candidates": [{"label": label, "frames": frames.get(label), "score": result.scores[label]}
                                     for label in labels]}
    return Result(arrays={f"image_{label}": images[label] for label in keep}, meta=meta)
