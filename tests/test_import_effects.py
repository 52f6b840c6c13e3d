"""Importing luckystack's modules changes nothing in the process; the set-up step does (and is observable).

Run in fresh interpreters: OpenCV's thread count is read back with ``cv2.getNumThreads``; glibc's mmap
threshold shows in whether a malloc of a few MB is served by ``mmap`` (``mallinfo2().hblks`` counts
mmapped blocks). The untouched threshold is 128 KB, rising only to the size of a freed mmapped block;
``configure_process`` fixes it at 16 MB. Transparent huge pages show in ``/proc/self/status``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = r"""
import ctypes, json, sys

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

def mmapped(size):
    before = libc.mallinfo2().hblks
    block = libc.malloc(size)
    served_by_mmap = libc.mallinfo2().hblks > before
    libc.free(block)
    return served_by_mmap

def thp():
    status = open("/proc/self/status").read()
    return status.split("THP_enabled:")[1].split()[0] if "THP_enabled:" in status else None

import cv2
fresh = cv2.getNumThreads()
import luckystack.graph.node, luckystack.graph.api, luckystack.nodes, luckystack.api, luckystack.cli
state = {"fresh_threads": fresh, "threads_after_import": cv2.getNumThreads(),
         "mmap_4mb_after_import": mmapped(4 << 20), "thp_after_import": thp()}
from luckystack.setup import configure_process
configure_process()
state.update(threads_after_setup=cv2.getNumThreads(), mmap_8mb_after_setup=mmapped(8 << 20),
             thp_after_setup=thp())
print(json.dumps(state))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_imports_change_nothing_and_the_setup_step_does():
    env = {k: v for k, v in os.environ.items() if k != "LUCKYSTACK_MALLOC"}
    env["OPENCV_FOR_THREADS_NUM"] = "3"  # OpenCV's default pool, whatever the machine's cores
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    state = json.loads(out.stdout.splitlines()[-1])
    assert state["fresh_threads"] == 3
    assert state["threads_after_import"] == 3, "importing luckystack set OpenCV's thread count"
    assert state["mmap_4mb_after_import"], "importing luckystack tuned glibc's allocator"
    assert state["threads_after_setup"] == 1
    assert not state["mmap_8mb_after_setup"], "configure_process left glibc's mmap threshold as it was"
    if state["thp_after_import"] is not None:  # Linux 5.0 and later show it; a child inherits it
        assert state["thp_after_import"] == _thp_of_this_process(), "importing luckystack turned huge pages off"
        assert state["thp_after_setup"] == "0", "configure_process left transparent huge pages on"


def _thp_of_this_process() -> str:
    status = open("/proc/self/status").read()
    return status.split("THP_enabled:")[1].split()[0]
