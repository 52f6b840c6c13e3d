"""Benchmark (not a test): overhead of the engine itself on a fully cached run.

Builds a 20-node chain over a 2000-frame 64×64 recording, runs it once, then times — with every node
cached — hashing + explain (keys, store lookups, index diff) and loading every node's result, with the
input fingerprint already memoised (fingerprinting is reported separately).

    python benchmarks/engine_overhead.py [--nodes 20] [--frames 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from pydantic import Field

from luckystack.graph import api
from luckystack.graph.fingerprint import hash_file
from luckystack.graph.node import Params, Port, Result, node_type
from luckystack.graph.store import CacheStore


class _SrcParams(Params):
    pass


class _StepParams(Params):
    step: int = Field(0, ge=0)


@node_type("bench-source", params=_SrcParams, outputs=("frames",), version="1", reads_input=True)
def _source(ctx) -> Result:
    data = np.load(ctx.input_file, mmap_mode="r")
    out = ctx.create_array("frames", "frames", data.shape, data.dtype, (64,) + data.shape[1:])
    for i in range(0, data.shape[0], 64):
        out[i:i + 64] = data[i:i + 64]
    return Result(arrays={"frames": out}, meta={"count": int(data.shape[0])})


@node_type("bench-step", params=_StepParams, inputs={"x": Port()}, outputs=("out",), version="1")
def _step(ctx) -> Result:
    x = ctx.inputs["x"]
    n = next(iter(x.arrays.values())).shape[0]
    return Result(arrays={"value": np.full(n, ctx.params.step, np.float64)}, meta={"step": ctx.params.step})


def main(nodes: int = 20, frames: int = 2000) -> None:
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        rec = d / "rec.npy"
        np.save(rec, np.random.default_rng(0).integers(0, 255, (frames, 64, 64), dtype=np.uint8))
        raw = {"name": "bench", "nodes": {"n0": {"type": "bench-source"}}}
        for i in range(1, nodes):
            raw["nodes"][f"n{i}"] = {"type": "bench-step", "params": {"step": i},
                                     "inputs": {"x": f"n{i - 1}"}}
        p = api.pipeline_from_dict(raw)
        store = CacheStore(d / "cache")
        t = time.perf_counter()
        api.run(p, [rec], cache=store, out=d / "out", jobs=1)
        first = time.perf_counter() - t
        t = time.perf_counter()
        hash_file(rec)
        fp = time.perf_counter() - t
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            statuses = api.explain(p, rec, store)
            assert all(s.cached for s in statuses.values())
            for s in statuses.values():
                for res in store.load(s.key).values():
                    for name in res.arrays:
                        res.array(name) if name != "frames" else res.arrays[name].shape
            best = min(best, time.perf_counter() - t)
        t = time.perf_counter()
        [r] = api.run(p, [rec], cache=store, out=d / "out", jobs=1)
        rerun = time.perf_counter() - t
        assert r.record.ran() == []
        size = rec.stat().st_size / 1e6
        print(f"{nodes} nodes, {frames} frames ({size:.0f} MB input)")
        print(f"first run:                              {first:.3f} s")
        print(f"input fingerprint (xxh3, not cached):   {fp:.3f} s ({size / fp:.0f} MB/s)")
        print(f"hash + explain + load, fully cached:    {best:.3f} s (best of 5; target < 0.3 s)")
        print(f"complete no-op rerun (api.run):         {rerun:.3f} s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python benchmarks/engine_overhead.py", description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=20, help="length of the chain (default: 20)")
    ap.add_argument("--frames", type=int, default=2000, help="rows of the 64×64 input (default: 2000)")
    args = ap.parse_args()
    main(args.nodes, args.frames)
