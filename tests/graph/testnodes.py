"""Small real node types for engine tests (registered with the real ``node_type`` decorator).

The input "recording" is a ``.npy`` file of shape (N, H, W); nodes stream it in fixed 4-frame chunks
through ``ctx.map`` and write frame-sized results chunk by chunk with ``ctx.create_array``.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
from pydantic import Field

from luckystack.graph.files import write_file
from luckystack.graph.node import InputFile, NodeError, Params, Port, Result, node_type

CHUNK = 4


class SourceParams(Params):
    gain: float = Field(1.0, gt=0, le=100, description="multiplies the input")


def _load_chunk(args):
    path, start, stop, gain = args
    data = np.load(path, mmap_mode="r")
    return (np.asarray(data[start:stop], dtype=np.float32) * np.float32(gain))


@node_type("t-source", params=SourceParams, outputs=("frames",), version="1", reads_input=True)
def source(ctx) -> Result:
    """Read the (N, H, W) .npy input as float32 frames."""
    try:
        data = np.load(ctx.input_file, mmap_mode="r")
    except ValueError:
        raise NodeError(f"{ctx.input_file} is not a .npy file") from None
    n = data.shape[0]
    out = ctx.create_array("frames", "frames", data.shape, np.float32, (CHUNK,) + data.shape[1:])
    items = [(str(ctx.input_file), i, min(i + CHUNK, n), ctx.params.gain) for i in range(0, n, CHUNK)]
    for (_, a, b, _g), chunk in zip(items, ctx.map(_load_chunk, items, label="frames")):
        out[a:b] = chunk
    return Result(arrays={"frames": out}, meta={"count": n})


class ScoreParams(Params):
    power: int = Field(2, ge=1, le=4, description="exponent of the per-frame score")


def _score_chunk(args):
    frames, power = args
    return (np.abs(frames.astype(np.float64)) ** power).mean(axis=(1, 2))


@node_type("t-score", params=ScoreParams, inputs={"frames": Port()}, outputs=("quality",), version="1")
def score(ctx) -> Result:
    """Per-frame score (a small 1-D result)."""
    arr = ctx.inputs["frames"].arrays["frames"]
    n = arr.shape[0]
    items = [(arr[i:i + CHUNK], ctx.params.power) for i in range(0, n, CHUNK)]
    s = np.concatenate(list(ctx.map(_score_chunk, items, label="score")))
    return Result(arrays={"score": s, "rank": np.argsort(-s, kind="stable").astype(np.int32)})


class BlocksParams(Params):
    size: int = Field(4, ge=1, le=64, description="block size in pixels")


@node_type("t-blocks", params=BlocksParams, inputs={"frames": Port()}, outputs=("aps",), version="1")
def blocks(ctx) -> Result:
    """Block grid over the frame (like alignment points)."""
    h, w = ctx.inputs["frames"].arrays["frames"].shape[1:]
    s = ctx.params.size
    ys, xs = np.mgrid[0:h - s + 1:s, 0:w - s + 1:s]
    return Result(arrays={"corner": np.stack([ys.ravel(), xs.ravel()], 1).astype(np.int32)}, meta={"size": s})


class StackParams(Params):
    percent: float = Field(50, gt=0, le=100, description="best frames to stack, in percent")
    weights: dict[str, float] = Field(default_factory=dict, description="nested param for --set tests")


def _sum_chunk(args):
    return args.astype(np.float64).sum(axis=0)


def _export_stack(results, params, out_dir: Path, stem: str) -> list[Path]:
    path = out_dir / f"{stem}_stack.npy"
    buf = io.BytesIO()
    np.save(buf, results["image"].array("image"))
    write_file(path, buf.getvalue())
    return [path]


@node_type("t-stack", params=StackParams, inputs={"frames": Port(), "quality": Port(), "aps": Port()},
           outputs=("image",), version="1", export=_export_stack)
def stack(ctx) -> Result:
    """Mean of the best frames, summed in chunk order (deterministic for any jobs)."""
    frames = ctx.inputs["frames"].arrays["frames"]
    rank = ctx.inputs["quality"].array("rank")
    k = max(1, int(round(len(rank) * ctx.params.percent / 100)))
    best = np.sort(rank[:k])
    chunks = [frames.get_orthogonal_selection((best[i:i + CHUNK],)) for i in range(0, k, CHUNK)]
    total = np.zeros(frames.shape[1:], np.float64)
    for part in ctx.map(_sum_chunk, chunks, label="stack"):
        total += part
    if ctx.params.percent < 1:
        ctx.log("fewer than 1% of frames stacked")
    n_aps = ctx.inputs["aps"].arrays["corner"].shape[0]
    return Result(arrays={"image": (total / k).astype(np.float32)}, meta={"frames": k, "aps": n_aps})


class SlowParams(Params):
    delay: float = Field(0.05, ge=0, description="seconds to sleep per chunk")
    factor: float = 2.0


@node_type("t-slow", params=SlowParams, inputs={"frames": Port()}, outputs=("frames",), version="1")
def slow(ctx) -> Result:
    """Scales frames chunk by chunk, slowly; touches $LSK_TEST_MARKER halfway (for the SIGKILL test)."""
    src = ctx.inputs["frames"].arrays["frames"]
    n = src.shape[0]
    out = ctx.create_array("frames", "frames", src.shape, np.float32, (CHUNK,) + src.shape[1:])
    marker = os.environ.get("LSK_TEST_MARKER")
    progress = ctx.progress(-(-n // CHUNK), "slow")
    for i in range(0, n, CHUNK):
        out[i:i + CHUNK] = src[i:i + CHUNK] * np.float32(ctx.params.factor)
        if marker and i >= n // 2:
            Path(marker).touch()
        time.sleep(ctx.params.delay)
        progress.update()
    return Result(arrays={"frames": out})


class DarkParams(Params):
    dark: InputFile | None = Field(None, description="a .npy dark frame")


@node_type("t-dark", params=DarkParams, inputs={"frames": Port()}, outputs=("frames",), version="1")
def dark(ctx) -> Result:
    """Subtracts a dark frame read from a file param."""
    src = ctx.inputs["frames"].array("frames")
    d = np.load(ctx.params.dark) if ctx.params.dark else 0
    return Result(arrays={"frames": (src - d).astype(np.float32)})


class FailParams(Params):
    pass


@node_type("t-fail", params=FailParams, inputs={"frames": Port()}, outputs=("out",), version="1")
def fail(ctx) -> Result:
    """Always fails like a node facing bad data."""
    raise NodeError("the frames are too dark to measure")


class PrefixParams(Params):
    upto: int = Field(4, ge=1, description="frames summed (incremental)")
    scale: float = Field(1.0, gt=0, description="multiplies the sum (not incremental)")


@node_type("t-prefix", params=PrefixParams, inputs={"frames": Port()}, outputs=("sum",), version="1",
           incremental=("upto",))
def prefix(ctx) -> Result:
    """Scaled sum of the first ``upto`` frame means; builds on an earlier, shorter sum when offered one.

    Appends the ``upto`` of every earlier result it is offered to $LSK_TEST_EARLIER (for the tests).
    """
    means = ctx.inputs["frames"].array("frames").astype(np.float64).mean(axis=(1, 2))
    seen = [int(e["sum"].meta["upto"]) for e in ctx.earlier()]
    log = os.environ.get("LSK_TEST_EARLIER")
    if log:
        with open(log, "a") as f:
            f.write(f"{seen}\n")
    start, total = 0, 0.0
    for e in ctx.earlier():
        their = int(e["sum"].meta["upto"])
        if start < their <= ctx.params.upto:
            start, total = their, float(e["sum"].array("partial")[0])
    for v in means[start:ctx.params.upto]:  # the same additions, in the same order, either way
        total += v
    return Result(arrays={"partial": np.array([total]), "value": np.array([total * ctx.params.scale])},
                  meta={"upto": ctx.params.upto})


class LinkParams(Params):
    pass


@node_type("t-link", params=LinkParams, inputs={"frames": Port()}, outputs=("frames",), version="1")
def link(ctx) -> Result:
    """Passes the upstream frames on (the cache links to them) and adds their mean frame."""
    frames = ctx.inputs["frames"].arrays["frames"]
    return Result(arrays={"frames": frames, "mean": np.asarray(frames[...]).mean(axis=0)})
