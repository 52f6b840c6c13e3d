"""Benchmark: the CPU of measuring local shifts per (frame, AP), as the stack node measures them.

``python benchmarks/local_shifts.py [--cases jupiter,moon,moon32,grid] [--frames 60] [--rounds 3]``
runs reader → stabilize → analyse → reference → align once per case on the bench recordings (their
results kept in ``--work``, so a second interpreter, e.g. main's venv, times the very same APs), then
times ``ApMatching.shifts`` (CPU, the frame reads left out) as the stack calls it: each AP measured in the
best half of the frames by its local quality (what ``stack.percent: 50`` stacks), a surface's APs in
groups of consecutive APs, one call per frame and group. Prints µs per wanted AP
and per measured point (neighbours included), the median over ``--rounds``, and the largest difference
of the shifts from those a previous run saved under ``--compare`` (e.g. main's). ``--accuracy`` also
measures every AP in every valid frame and prints the error against the simulator's truth (see
``tests/nodes/alignment_eval.py``). Cases: jupiter (planet defaults: 88 px APs), moon (surface
defaults: 128 px), moon32 (32 px APs matched over themselves, as align's auto size measures its
field) and grid (24 px APs interpolated from points 32 px apart over 64 px windows, surface-auto).
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # as the engine's processes run
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

BENCH = Path("/tmp/benchwd")
CASES = {
    "jupiter": ("jupiter_640x480_8bit_2000.ser", "planet", {}),
    "moon": ("moon_1280x960_8bit_100.ser", "surface", {}),
    "moon32": ("moon_1280x960_8bit_100.ser", "surface", {"ap_size": [32], "match_size": None}),
    "grid": ("moon_1280x960_8bit_100.ser", "surface", {"ap_size": [24], "match_step": 32}),
}


def prepare(case: str, work: Path, recordings: Path = BENCH) -> dict:
    """The upstream results the stack would see (computed once per case, kept in ``work``)."""
    path = work / f"{case}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    import luckystack.nodes.align  # noqa: F401
    import luckystack.nodes.analyse  # noqa: F401
    import luckystack.nodes.reader  # noqa: F401
    import luckystack.nodes.reference  # noqa: F401
    import luckystack.nodes.stabilize  # noqa: F401
    from luckystack.graph.context import run_node
    from luckystack.nodes.align import matching_of

    name, mode, align = CASES[case]
    ser = recordings / name
    if not ser.is_file():
        raise SystemExit(f"local_shifts: {ser} is missing (`luckystack bench --vs-pss` writes it; or pass "
                         "--recordings)")
    frames = run_node("reader", {}, {}, input_file=ser)["frames"]
    shifts = run_node("stabilize", {"mode": mode}, {"frames": frames}, ser)["shifts"]
    quality = run_node("analyse", {"method": "gradient", "scale": 4}, {"frames": frames, "shifts": shifts},
                       ser)["quality"]
    inputs = {"frames": frames, "shifts": shifts, "quality": quality}
    ref = run_node("reference", {"fraction": 0.5}, inputs, ser)["reference"]
    aps = run_node("align", align, {**inputs, "reference": ref}, ser)["aps"]
    out = {"ser": str(ser), "matching": matching_of(aps, shifts.meta["crop"]), "shift": shifts.array("shift"),
           "valid": quality.array("valid"), "lq": aps.array("quality"), "centre": aps.array("center"),
           "size": aps.array("size"), "crop": shifts.meta["crop"],
           "ref_frames": reference_frames(quality, ref)}
    work.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(out))
    return out


def reference_frames(quality, ref) -> np.ndarray:
    """The frames the reference node averaged."""
    used = ref.meta.get("frames_used_index")
    if used is not None:
        return np.asarray(used)
    rank, valid = quality.array("rank"), quality.array("valid")
    return np.flatnonzero(valid & (rank < int(ref.meta["frames_used"])))


def best_half(lq: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(N, A) bool: each AP's best half of the valid frames by local quality."""
    q = np.where(valid[:, None] & np.isfinite(lq), lq, -np.inf)
    rank = np.argsort(np.argsort(-q, axis=0, kind="stable"), axis=0, kind="stable")
    return (rank < int(valid.sum()) // 2) & np.isfinite(q)


def ap_groups(count: int, window: int) -> list[slice]:
    """The stack's AP groups (one pass over the recording each): all APs on a planet, else about as
    many as keep a chunk's sums within the stack's budget (18 of a Moon's 128 px APs)."""
    per = count if count <= 30 else max(1, int(18 * (128 / max(window, 8)) ** 2))
    return [slice(s, min(s + per, count)) for s in range(0, count, per)]


def time_case(prep: dict, frames: int, rounds: int) -> tuple[list[float], list[float], np.ndarray]:
    """CPU seconds of ``ApMatching.shifts`` per wanted AP and per measured point, per round; the shifts."""
    import luckystack.nodes.reader  # noqa: F401
    from luckystack.graph.context import run_node
    from luckystack.nodes.frames import open_frames

    matching, shift = prep["matching"], prep["shift"]
    want_all = best_half(prep["lq"], prep["valid"])
    order = np.flatnonzero(want_all.any(axis=1))[:frames]
    ser = Path(prep["ser"])
    stream = open_frames(run_node("reader", {}, {}, input_file=ser)["frames"], ser)
    groups = ap_groups(matching.count, int(np.median(prep["size"])))
    local = np.zeros((len(shift), matching.count, 2))
    per_ap, per_point = [], []
    for _ in range(rounds):
        wanted = measured = 0
        spent = 0.0
        for g in groups:
            for i in order:
                want = np.zeros(matching.count, bool)
                want[g] = want_all[i, g]
                if not want.any():
                    continue
                a, b, c, d = matching.region(shift[i], (stream.height, stream.width), want)
                mono = np.array(stream.read_mono(int(i), (a, b, c, d)))
                started = time.process_time()
                loc, ok, count = matching.shifts(mono, (a, c), shift[i], want)
                spent += time.process_time() - started
                local[i, want] = loc[want]
                wanted, measured = wanted + int(want.sum()), measured + count
        per_ap.append(spent / wanted * 1e6)
        per_point.append(spent / measured * 1e6)
    return per_ap, per_point, local


def accuracy(prep: dict) -> str:
    import luckystack.nodes.reader  # noqa: F401
    from luckystack.graph.context import run_node
    from luckystack.nodes.align import local_shifts
    from luckystack.nodes.frames import open_frames
    from luckystack.simulate import load_truth

    ser = Path(prep["ser"])
    truth = load_truth(ser)
    stream = open_frames(run_node("reader", {}, {}, input_file=ser)["frames"], ser)
    g, valid = prep["shift"], prep["valid"] & truth.usable
    local, ok = local_shifts(stream, g, valid, prep["matching"])
    s = truth.shifts
    c = (g - s)[valid].mean(axis=0)
    y0, x0 = prep["crop"][:2]
    centre, size = prep["centre"].astype(np.float64), prep["size"]
    py = y0 + centre[:, 0] - np.where(size % 2 == 0, 0.5, 0.0) + c[0]
    px = x0 + centre[:, 1] - np.where(size % 2 == 0, 0.5, 0.0) + c[1]
    d = np.stack([truth.true_displacement(i, py, px) for i in range(len(g))])
    err = g[:, None, :] + local - (s[:, None, :] + d)
    err = err - err[valid].reshape(-1, 2).mean(axis=0)
    sharp = valid & (truth.seeing <= np.median(truth.seeing[valid]))
    fixed = err[sharp].mean(axis=0)
    fair = err + d[np.asarray(prep["ref_frames"])].mean(axis=0)[None]
    fair = fair - fair[valid].reshape(-1, 2).mean(axis=0)
    return (f"total {rms(err[sharp]):.4f}  varying {rms(err[sharp] - fixed):.4f}  fixed {rms(fixed):.4f}  "
            f"fair {rms(fair[sharp]):.4f}  lost {float((~ok[sharp]).mean()):.4f}  px rms, sharp half")


def rms(e: np.ndarray) -> float:
    return float(np.sqrt((e ** 2).sum(-1).mean()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/local_shifts.py", description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="jupiter,moon,moon32,grid")
    ap.add_argument("--frames", type=int, default=60, help="frames timed per case")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("/tmp/shifts/bench_local"),
                    help="where the upstream results are kept")
    ap.add_argument("--recordings", type=Path, default=BENCH, help="folder of the bench recordings")
    ap.add_argument("--save", type=Path, help="save the measured shifts here (.npz)")
    ap.add_argument("--compare", type=Path, help="shifts saved by an earlier run (.npz) to compare with")
    ap.add_argument("--accuracy", action="store_true", help="also the error against the truth")
    args = ap.parse_args(argv)
    import luckystack.nodes  # noqa: F401  (registers the process set-ups: one OpenCV thread, glibc's thresholds)
    from luckystack.graph.process import configure_process

    configure_process()  # as the engine does in each of its processes
    saved = {}
    other = dict(np.load(args.compare)) if args.compare else {}
    for case in args.cases.split(","):
        prep = prepare(case, args.work, args.recordings)
        per_ap, per_point, local = time_case(prep, args.frames, args.rounds)
        sizes = sorted(set(prep["matching"].window_sizes.tolist()))
        line = (f"{case:8} APs {prep['matching'].count:5d} windows {sizes} "
                f"µs/AP-frame {statistics.median(per_ap):7.1f} µs/point {statistics.median(per_point):7.1f}")
        if case in other:
            both = local.any(axis=(1, 2)) & other[case].any(axis=(1, 2))  # frames timed in both runs
            diff = local[both] - other[case][both]
            line += ("  the same bits as saved" if not diff.any() else
                     f"  vs saved: max |Δ| {np.abs(diff).max():.4f} px, rms {rms(diff):.4f} px")
        print(line, flush=True)
        if args.accuracy:
            print(f"{'':8} {accuracy(prep)}", flush=True)
        saved[case] = local
    if args.save:
        np.savez(args.save, **saved)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
