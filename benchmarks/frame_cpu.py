"""Benchmark: CPU per frame of the nodes before the stack (stabilize, analyse, reference, align), in
this one process (no workers), on a recording as a pipeline file sets them up.

Run with ``python benchmarks/frame_cpu.py REC.ser [--pipeline pipelines/planet.json] [--repeat 3]``.
Prints each node's CPU seconds (the median of the repeats: ``time.process_time``, so other processes
on a shared machine count less than in wall times) and milliseconds per frame, and a digest of each
node's arrays so two versions of the code can be compared for equal output.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from pathlib import Path

import numpy as np

import luckystack.nodes  # noqa: F401  (registers the node types)
from luckystack.graph.context import run_node
from luckystack.graph.process import configure_process

NODES = ("stabilize", "analyse", "reference", "align")


def _digest(result) -> str:
    h = hashlib.sha256()
    for name in sorted(result.arrays):
        h.update(name.encode())
        h.update(np.ascontiguousarray(np.asarray(result.arrays[name][...])).tobytes())
    return h.hexdigest()[:12]


def run_once(recording: Path, pipeline: dict) -> dict[str, tuple[float, object]]:
    """Each node's (CPU seconds, Result) on ``recording``, run in order in this process."""
    spec = pipeline["nodes"]
    params = {name: spec[name].get("params", {}) for name in ("reader",) + NODES}
    frames = run_node("reader", params["reader"], {}, recording)["frames"]
    inputs = {"frames": frames}
    out: dict[str, tuple[float, object]] = {}
    ports = {"stabilize": "shifts", "analyse": "quality", "reference": "reference", "align": "aps"}
    wanted = {"stabilize": ("frames",), "analyse": ("frames", "shifts"),
              "reference": ("frames", "shifts", "quality"), "align": ("frames", "shifts", "reference", "quality")}
    for node in NODES:
        given = {k: inputs[k] for k in wanted[node]}
        t = time.process_time()
        result = run_node(node, params[node], given, recording)[ports[node]]
        out[node] = (time.process_time() - t, result)
        inputs[ports[node]] = result
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("recording", type=Path)
    ap.add_argument("--pipeline", type=Path, default=Path(__file__).parents[1] / "pipelines" / "planet.json")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    configure_process()  # as a run's processes are set up (the allocator's thresholds)
    pipeline = json.loads(a.pipeline.read_text())
    runs = [run_once(a.recording, pipeline) for _ in range(a.repeat)]
    frames = runs[0]["stabilize"][1].array("shift").shape[0]
    print(f"{a.recording.name}: {frames} frames, {a.pipeline.name}, median of {a.repeat} (CPU, one process)")
    for node in NODES:
        cpu = statistics.median(r[node][0] for r in runs)
        print(f"  {node:10s} {cpu:7.3f} s  {1000 * cpu / frames:7.3f} ms/frame  digest {_digest(runs[0][node][1])}")


if __name__ == "__main__":
    main()
