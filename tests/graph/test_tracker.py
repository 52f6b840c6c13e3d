"""loky's resource tracker, started by the workers' pool without joblib's package (numpy and all)."""

from __future__ import annotations

import ast
import subprocess
import sys

PROBE = """
import os, sys, time
from luckystack.graph.parallel import ordered_map, stop_workers, workers_running

def square(x):
    time.sleep(0.02)
    return x * x, os.getpid()

out = list(ordered_map(square, range(100), jobs=2))
assert [v for v, _ in out] == [x * x for x in range(100)]
deadline = time.monotonic() + 60
while not workers_running() and time.monotonic() < deadline:
    time.sleep(0.05)
time.sleep(0.5)  # the tracker, started before the worker, has long finished its imports
children = [int(p) for p in open(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read().split()]
found = {}
for pid in children:
    cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode()
    if "resource_tracker" in cmd or "tracker" in cmd:
        maps = open(f"/proc/{pid}/maps").read()
        found[cmd.split(" -c ", 1)[-1]] = "numpy" in maps
stop_workers(wait=True)
print(found)
"""


def test_the_pools_resource_tracker_runs_without_importing_joblib_or_numpy():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    trackers = ast.literal_eval(done.stdout.splitlines()[-1])
    ours = {cmd: numpy for cmd, numpy in trackers.items() if "luckystack.graph.tracker" in cmd}
    assert ours and not any(ours.values())  # loky's tracker, as our light entry point, numpy not loaded
    assert "warn" not in done.stderr.lower() and "leak" not in done.stderr.lower()
