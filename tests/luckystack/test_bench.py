"""The benchmark's memory watch: what it counts."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from luckystack.bench import MemoryWatch, _descendants

pytestmark = pytest.mark.skipif(not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists(),
                                reason="needs Linux's /proc/<pid>/task/<tid>/children")

HOLD = "import sys, time; block = bytearray(64 << 20); sys.stdout.write('up\\n'); sys.stdout.flush(); time.sleep(30)"


def test_a_process_started_by_another_thread_is_counted():
    """The run's workers are started by the node's thread, not the main thread: their memory counts
    (while that thread lives; a thread's children pass to the main thread when it ends)."""
    started: list[subprocess.Popen] = []
    checked = threading.Event()

    def start() -> None:
        proc = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()  # its 64 MB are written (and resident) once it says so
        started.append(proc)
        checked.wait(30)

    thread = threading.Thread(target=start)
    thread.start()
    try:
        while not started and thread.is_alive():
            thread.join(0.01)
        [proc] = started
        assert proc.pid in _descendants(os.getpid())
        watch = MemoryWatch()
        watch.sample()
        assert watch.peak_workers >= 60 << 10  # kB
        assert watch.worker_hwm[proc.pid] >= 64 << 10  # its exact peak RSS
    finally:
        checked.set()
        thread.join()
        for proc in started:
            proc.kill()
            proc.wait()
