"""Alignment accuracy of the real stabilize → analyse → reference → align nodes, and of the local
shifts the stack measures with align's result (here in every valid frame), on a simulated
recording with a known truth (used by tests/nodes/test_alignment_accuracy.py; run as a script for a table).

Geometry. stabilize's shifts are the true ones plus a constant c (its reference origin differs from the
truth image's), so reference position r is image position ``r + g - s`` (the same for all frames up to
the global error). An AP box of size s at integer centre c covers rows ``c - s//2 …``, so its continuous
centre in crop coordinates is ``c - 0.5`` for even sizes; the stabilize crop origin is added to reach
reference coordinates. The truth for an AP in frame i is ``shifts[i] + true_displacement(i, p)``.

Errors (frames × APs × 2) are ``measured (g + local) − truth`` minus their overall mean (the constant c):
- ``total``: that error over the sharp half (the issue's target).
- ``fixed``: its per-AP mean over the sharp half; ``varying``: what remains (frame-to-frame jitter).
- ``fair``: the total error after adding back the reference's own distortion (the truth's mean
  displacement over the frames averaged into the reference), i.e. measured − (truth − reference field).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import luckystack.nodes.align  # noqa: F401
import luckystack.nodes.analyse  # noqa: F401
import luckystack.nodes.reader  # noqa: F401
import luckystack.nodes.reference  # noqa: F401
import luckystack.nodes.stabilize  # noqa: F401
from luckystack.graph.context import run_node
from luckystack.nodes.align import local_shifts, matching_of
from luckystack.nodes.frames import open_frames
from luckystack.simulate import load_truth, simulate, write_recording


@dataclass
class Accuracy:
    scene: str
    global_rms: float  # px, global shift error (constant removed) over all valid frames
    total: float  # px rms, AP position error over the sharp half
    fixed: float
    varying: float
    fair: float  # total with the reference's own distortion removed from the truth
    fair_fixed: float  # its per-AP constant part
    aps: int
    replaced: float  # fraction of AP measurements replaced from neighbours (sharp half)
    field_rms: float  # px rms of the true local displacement at the APs (sharp half): the signal
    seconds: float


def rms(e: np.ndarray) -> float:
    return float(np.sqrt((e ** 2).sum(-1).mean()))


def run_pipeline(ser: Path, params: dict | None = None, jobs: int = 1) -> dict:
    """Run reader → stabilize → analyse → reference → align; ``params`` per node type."""
    params = params or {}
    frames = run_node("reader", params.get("reader", {}), {}, input_file=ser, jobs=jobs)["frames"]
    shifts = run_node("stabilize", params.get("stabilize", {}), {"frames": frames}, ser, jobs)["shifts"]
    quality = run_node("analyse", params.get("analyse", {}), {"frames": frames, "shifts": shifts}, ser,
                       jobs)["quality"]
    inputs = {"frames": frames, "shifts": shifts, "quality": quality}
    ref = run_node("reference", params.get("reference", {}), inputs, ser, jobs)["reference"]
    aps = run_node("align", params.get("align", {}), {**inputs, "reference": ref}, ser, jobs)["aps"]
    # Every AP's shift in every valid frame, as the stack measures them in the frames it stacks.
    local, ok = local_shifts(open_frames(frames, ser), shifts.array("shift"), quality.array("valid"),
                             matching_of(aps, shifts.meta["crop"]))
    return {"frames": frames, "shifts": shifts, "quality": quality, "reference": ref, "aps": aps,
            "local": local, "ok": ok}


def evaluate(truth, out: dict, scene: str = "", seconds: float = 0.0) -> Accuracy:
    """Errors of a pipeline run ``out`` against the simulation ``truth`` (see the module docstring)."""
    shifts, quality, aps, ref = out["shifts"], out["quality"], out["aps"], out["reference"]
    g, valid = shifts.array("shift"), quality.array("valid")
    s = truth.shifts
    valid = valid & truth.usable
    c = (g - s)[valid].mean(axis=0)
    global_rms = rms((g - s - c)[valid])
    y0, x0 = shifts.meta["crop"][:2]
    centre, size = aps.array("center").astype(np.float64), aps.array("size")
    ry = y0 + centre[:, 0] - np.where(size % 2 == 0, 0.5, 0.0)
    rx = x0 + centre[:, 1] - np.where(size % 2 == 0, 0.5, 0.0)
    py, px = ry + c[0], rx + c[1]  # image positions of the AP centres (r + g - s)
    n = len(g)
    d = np.stack([truth.true_displacement(i, py, px) for i in range(n)])  # (N, A, 2)
    measured = g[:, None, :] + out["local"]
    err = measured - (s[:, None, :] + d)
    sv = truth.seeing[valid]
    sharp = valid & (truth.seeing <= np.median(sv))
    err = err - err[valid].reshape(-1, 2).mean(axis=0)
    fixed = err[sharp].mean(axis=0)
    used = ref.meta.get("frames_used_index")
    ref_frames = np.asarray(used) if used is not None else _reference_frames(quality, ref)
    fair = err + d[ref_frames].mean(axis=0)[None]
    fair = fair - fair[valid].reshape(-1, 2).mean(axis=0)
    return Accuracy(scene, global_rms, rms(err[sharp]), rms(fixed), rms(err[sharp] - fixed), rms(fair[sharp]),
                    rms(fair[sharp].mean(axis=0)),
                    len(centre), float((~out["ok"][sharp]).mean()),
                    rms(d[sharp] - d[sharp].mean(axis=(0, 1))), seconds)


def _reference_frames(quality, ref) -> np.ndarray:
    """The frames the reference node averaged (its default: the best ``frames_used`` valid frames)."""
    rank, valid = quality.array("rank"), quality.array("valid")
    return np.flatnonzero(valid & (rank < int(ref.meta["frames_used"])))


def measure_scene(scene: str, folder: Path, frames: int = 80, width: int = 320, height: int = 240,
                  seed: int = 1, params: dict | None = None, jobs: int = 1, **options) -> Accuracy:
    """Simulate ``scene``, write it into ``folder``, run the nodes and evaluate them."""
    ser = folder / f"{scene}_{width}x{height}_{frames}_{seed}.ser"
    if not ser.exists():
        write_recording(ser, simulate(scene, frames, width, height, 8, "mono", seed, **options))
    started = time.perf_counter()
    out = run_pipeline(ser, params, jobs)
    return evaluate(load_truth(ser), out, scene, time.perf_counter() - started)


def main(argv: list[str]) -> None:
    folder = Path(argv[1]) if len(argv) > 1 else Path("/tmp/align_eval")
    width, height, frames = (int(v) for v in (argv[2:5] if len(argv) > 4 else (320, 240, 80)))
    print(f"{'scene':8} {'APs':>4} {'global':>7} {'total':>7} {'fixed':>7} {'vary':>7} {'fair':>7} "
          f"{'field':>7} {'lost':>6} {'sec':>5}")
    for scene in ("jupiter", "moon", "sun"):
        a = measure_scene(scene, folder, frames, width, height)
        print(f"{scene:8} {a.aps:4d} {a.global_rms:7.3f} {a.total:7.3f} {a.fixed:7.3f} {a.varying:7.3f} "
              f"{a.fair:7.3f} {a.field_rms:7.3f} {a.replaced:6.3f} {a.seconds:5.1f}")


if __name__ == "__main__":
    main(sys.argv)
