"""A batch of recordings on a 2-worker local Dask cluster against the local executor; bytes moved.

    .venv/bin/python benchmarks/dask_batch.py [--recordings 4] [--frames 300] [--size 256x192]
                                              [--workers 2] [--repeat 3] [--workdir DIR]

Simulates ``--recordings`` Jupiter SER files once into ``--workdir`` (reruns reuse them), then runs
``pipelines/planet.json`` on all of them as one batch, alternating the local executor (this process and
``--workers − 1`` loky workers per node, one recording after another) and the Dask executor (a
``LocalCluster`` of ``--workers`` processes of one thread; the recordings at once), each timed run on an
empty cache. One untimed run of each first starts the workers and imports their modules. Prints each
run, the medians and their ratio, and Dask's own byte counters for the timed Dask runs:

* client → scheduler: what the client sent (``Client.scheduler_comm.byte_count``: tasks, their args);
* scheduler → workers: what the scheduler's streams to the workers carried (tasks to run, by value);
* worker → worker/client: data workers served to peers or the client (``transfer_outgoing_bytes_total``:
  a chunk's function and result moving to the worker that reduces it, a node's outcome).

The recordings' frames are read by the workers from their paths and never cross a connection: compare
the bytes with the recordings' size, printed too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PIPELINE = REPO / "pipelines" / "planet.json"


def _recordings(workdir: Path, count: int, frames: int, width: int, height: int) -> list[Path]:
    from luckystack.simulate import simulate, write_recording

    workdir.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        path = workdir / f"jupiter{i}-{frames}f-{width}x{height}.ser"
        if not path.is_file():
            write_recording(path, simulate("jupiter", frames, width, height, seed=100 + i))
        out.append(path)
    return out


def _counters(client) -> dict[str, int]:
    streams = client.run_on_scheduler(
        lambda dask_scheduler: sum(c.byte_count for c in dask_scheduler.stream_comms.values()))
    served = sum(client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total).values())
    return {"client → scheduler": client.scheduler_comm.byte_count, "scheduler → workers": streams,
            "worker → worker/client": served}


def _mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recordings", type=int, default=4)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", default="256x192", metavar="WxH")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each executor (alternating)")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "luckystack-dask-bench")
    args = ap.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    import luckystack.nodes  # noqa: F401  (registers the node types)
    from luckystack.graph import api
    from luckystack.graph.dask_executor import DaskExecutor
    from luckystack.graph.executor import LocalExecutor
    from luckystack.graph.fingerprint import hash_file

    inputs = _recordings(args.workdir, args.recordings, args.frames, width, height)
    pipeline = api.load_pipeline(PIPELINE)
    scratch = Path(tempfile.mkdtemp(prefix="runs-", dir=args.workdir))
    t0 = time.perf_counter()
    dask = DaskExecutor(workers=args.workers, threads_per_worker=1)
    print(f"local cluster of {args.workers} workers started in {time.perf_counter() - t0:.2f} s")
    local = LocalExecutor()
    executors = {"local": local, "dask": dask}

    def batch(name: str, tag: str) -> float:
        folder = scratch / f"{name}-{tag}"
        t = time.perf_counter()
        runs = api.run(pipeline, inputs, cache=folder / "cache", out=folder / "out", jobs=args.workers,
                       executor=executors[name])
        seconds = time.perf_counter() - t
        assert not any(r.failed for r in runs), [r.record.error for r in runs if r.failed]
        cache_bytes.append(sum(f.stat().st_size for f in (folder / "cache").rglob("*") if f.is_file()))
        tasks.append(sum(len(r.record.ran()) for r in runs))
        shutil.rmtree(folder / "cache")
        return seconds

    cache_bytes: list[int] = []
    tasks: list[int] = []

    for name in executors:
        print(f"warm-up {name}: {batch(name, 'warm'):.2f} s")
    times: dict[str, list[float]] = {name: [] for name in executors}
    moved = {k: 0 for k in _counters(dask.client)}
    for i in range(args.repeat):
        for name in (("local", "dask") if i % 2 == 0 else ("dask", "local")):
            before = _counters(dask.client) if name == "dask" else None
            times[name].append(batch(name, str(i)))
            if before is not None:
                after = _counters(dask.client)
                for k in moved:
                    moved[k] += after[k] - before[k]
            print(f"run {i + 1} {name}: {times[name][-1]:.2f} s")
    same = all((scratch / f"local-0/out/{p.stem}").is_dir() for p in inputs)
    identical = same and all(
        f.read_bytes() == (scratch / "dask-0/out" / f.relative_to(scratch / "local-0/out")).read_bytes()
        for f in (scratch / "local-0/out").rglob("*.tif"))
    med = {name: statistics.median(ts) for name, ts in times.items()}
    size = sum(p.stat().st_size for p in inputs)
    t = time.perf_counter()
    for p in inputs:
        hash_file(p)
    hashing = time.perf_counter() - t
    print(f"\n{args.recordings} recordings × {args.frames} frames {width}×{height} ({_mb(size)} of SER), "
          f"{os.cpu_count()} cores, {args.workers} workers")
    print(f"median batch: local {med['local']:.2f} s, dask {med['dask']:.2f} s, "
          f"dask/local {med['dask'] / med['local']:.3f} ({(med['dask'] / med['local'] - 1) * 100:+.1f} %)")
    print(f"images bit-identical: {identical}")
    print(f"cache written per batch: {_mb(statistics.median(cache_bytes))} "
          f"({statistics.median(cache_bytes) / size:.2f} × the recordings), {tasks[-1]} node tasks")
    print(f"client's input fingerprints (the recordings in the page cache): {hashing:.3f} s, "
          f"{size / hashing / 1e9:.2f} GB/s")
    print(f"bytes moved per Dask batch (mean of {args.repeat}):")
    for k, v in moved.items():
        print(f"  {k:<24}{_mb(v / args.repeat):>12}")
    dask.shutdown()
    local.shutdown()
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
