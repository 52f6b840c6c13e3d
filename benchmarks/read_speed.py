"""Benchmark: stream a multi-GB SER and report frames/s, MB/s and peak RSS for two frame counts.

Run with ``python benchmarks/read_speed.py [--frames 2000 8000] [--dir /tmp]``. Each count runs in
a fresh process so the peak RSS (ru_maxrss) belongs to that run alone; flat RSS across counts shows
that memory does not grow with the recording.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from luckystack.io.ser_format import SerHeader, write_ser

H, W = 480, 640


def make_ser(path: Path, frames: int, depth: int) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2 ** depth - 1, (16, H, W)).astype(np.uint16 if depth > 8 else np.uint8)
    write_ser(path, (base[i % 16] for i in range(frames)), SerHeader(W, H, pixel_depth=depth))


def stream_once(path: Path) -> dict:
    from luckystack.io.recording import describe
    from luckystack.io.stream import open_stream

    meta, arrays, _ = describe(path, bit_depth=12 if "16" in path.name else None)
    s = open_stream(meta, arrays, path)
    t = time.perf_counter()
    acc = 0.0
    for i in range(s.count):
        acc += float(s.read_mono(i)[0, 0])
    dt = time.perf_counter() - t
    size = path.stat().st_size
    return {"frames": s.count, "seconds": dt, "fps": s.count / dt, "MBps": size / dt / 1e6,
            "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "GB": size / 1e9}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, nargs="+", default=[1000, 4000])
    ap.add_argument("--depth", type=int, default=16, choices=(8, 16))
    ap.add_argument("--dir", type=Path, default=Path("/tmp"))
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(stream_once(a.child)))
        return
    for n in a.frames:
        path = a.dir / f"bench_{n}_{a.depth}bit.ser"
        make_ser(path, n, a.depth)
        try:
            out = subprocess.run([sys.executable, __file__, "--child", str(path)],
                                 check=True, capture_output=True, text=True).stdout
            r = json.loads(out)
            print(f"{n:6d} frames {W}x{H} {a.depth}-bit ({r['GB']:.2f} GB): {r['fps']:8.0f} frames/s "
                  f"{r['MBps']:7.0f} MB/s  peak RSS {r['peak_rss_MB']:.0f} MB")
        finally:
            os.unlink(path)


if __name__ == "__main__":
    main()
