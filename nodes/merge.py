"""The ``merge`` node: blend the AP patch stacks into one image per stack size.

Geometry comes with the stacks (patch ``origin`` and window ``extent`` per AP, in output pixels), so
merge needs only the ``stacks`` input. Maths: :mod:`luckystack.imaging.blend`.
"""

from __future__ import annotations

from pydantic import Field

from luckystack.graph.node import Context, NodeError, Params, Port, Result, node_type
from luckystack.imaging.blend import blend_patches


class MergeParams(Params):
    full_weight: float = Field(
        1.0, gt=0, le=4, description="Summed AP window weight above which a pixel comes from the APs "
        "alone; below it the AP image fades smoothly into the background stack.")


@node_type("merge", params=MergeParams, inputs={"stacks": Port(doc="the stack node's result", kind="stacks")},
           outputs={"images": "images"}, version="2")
def merge(ctx: Context) -> Result:
    """Blend AP stacks with overlapping raised-cosine weights over the background, per stack size
    (and per half stack the stack lists in meta ``halves``, for the choose node)."""
    stacks = ctx.inputs["stacks"]
    labels = stacks.meta.get("labels")
    if not labels:
        raise NodeError("the stacks input holds no stack sizes")
    origins = stacks.array("origin")
    extents = stacks.array("extent")
    arrays = {}
    halves = stacks.meta.get("halves") or {}
    for label in list(labels) + [halves[label] for label in labels if label in halves]:
        arrays[f"image_{label}"] = blend_patches(
            stacks.arrays[f"patch_{label}"], stacks.arrays[f"coverage_{label}"], origins, extents,
            stacks.array(f"background_{label}"), ctx.params.full_weight)
    keep = ("sizes", "labels", "halves", "drizzle", "ap_size", "bit_depth", "layout", "channels")
    return Result(arrays=arrays, meta={k: stacks.meta[k] for k in keep if k in stacks.meta})
