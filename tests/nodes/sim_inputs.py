"""Stack-node inputs built from a simulated recording's truth (true global and local shifts, true
blur as quality), so the stacking is measured apart from alignment errors; plus the baselines."""

from __future__ import annotations

import cv2
import numpy as np

from luckystack.graph.node import Result
from luckystack.io.frames import ArrayFrameStream
from luckystack.nodes.frames import memory_frames


def true_inputs(sim, ap_size: int = 48, frames_result: Result | None = None
                ) -> tuple[dict[str, Result], list[int], np.ndarray | None]:
    """(inputs, crop, frames) for the stack node from a ``Simulation``: frames in memory (mono), or
    the given reader result (``frames`` is then None)."""
    t = sim.truth
    n = t.frame_count
    frames = None
    if frames_result is None:
        frames = np.stack([sim.frame(i) for i in range(n)]).astype(np.float32) / t.full_scale
    usable = t.usable
    h, w = sim.height, sim.width
    m = int(np.ceil(np.abs(t.shifts[usable]).max() + 4))
    crop = [m, m, h - 2 * m, w - 2 * m]
    step = ap_size // 2
    cy = np.arange(ap_size // 2, crop[2] - ap_size // 2 + 1, step)
    cx = np.arange(ap_size // 2, crop[3] - ap_size // 2 + 1, step)
    centers = np.array([(y, x) for y in cy for x in cx], dtype=np.int32)
    ys, xs = centers[:, 0] + m, centers[:, 1] + m
    local = np.stack([t.true_displacement(i, ys, xs) for i in range(n)]).astype(np.float32)
    local_q = np.stack([1.0 / t.true_blur(i, ys, xs) for i in range(n)]).astype(np.float32)
    score = 1.0 / t.seeing.astype(np.float64)
    rank = np.argsort(np.argsort(-np.where(usable, score, -np.inf))).astype(np.int32)
    inputs = {
        "frames": frames_result or memory_frames(ArrayFrameStream(frames, bit_depth=sim.bit_depth)),
        "shifts": Result(arrays={"shift": t.shifts.astype(np.float64), "valid": usable,
                                 "reason": np.zeros(n, np.int8)}, meta={"crop": crop}),
        "aps": Result(arrays={"center": centers, "size": np.full(len(centers), ap_size, np.int32),
                              "shift": local, "quality": local_q, "ok": np.ones(local_q.shape, bool)},
                      meta={"replaced": 0, "ap_sizes": [ap_size]}),
        "quality": Result(arrays={"score": np.where(usable, score, np.nan), "rank": rank, "valid": usable,
                                  "reason": np.zeros(n, np.int8)}, meta={}),
    }
    return inputs, crop, frames


def baselines(sim, frames: np.ndarray, crop: list[int]) -> dict[str, np.ndarray]:
    """Best single frame, mean of all, mean of the best 10 %, each after perfect global alignment."""
    t = sim.truth
    y0, x0, h, w = crop
    ok = np.nonzero(t.usable)[0]
    order = ok[np.argsort(t.seeing[ok])]

    def aligned(i):
        dy, dx = t.shifts[i]
        mat = np.array([[1, 0, x0 + dx], [0, 1, y0 + dy]], dtype=np.float64)
        return cv2.warpAffine(frames[i], mat, (w, h), flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)

    mean = sum(aligned(i).astype(np.float64) for i in ok) / len(ok)
    top = order[:max(1, len(order) // 10)]
    return {"best frame": aligned(order[0]), "mean all": mean,
            "mean best 10%": sum(aligned(i).astype(np.float64) for i in top) / len(top)}
