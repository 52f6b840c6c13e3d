"""Keep glibc from returning every freed buffer of a few MB to the kernel (a large speed-up).

Node code allocates and frees many arrays of one to a few MB per work item (blurred copies, gradients,
intermediate results). glibc serves blocks above its mmap threshold (128 KB at start, adapting upwards only
as such blocks are freed) with fresh ``mmap`` pages, and unmaps them on free, so every temporary array
costs page faults and zeroing: measured, that doubles the time of a blur + gradient + sum of squares
on a 600×440 array. Raising the mmap threshold to 16 MB and the trim threshold to 64 MB keeps those
buffers in the heap for reuse; memory stays bounded by the trim threshold per arena.

Applied once per process by :func:`luckystack.graph.process.configure_process`, before nodes run (in
the main process and every worker); no-op where glibc's ``mallopt`` is missing, and off with
``LUCKYSTACK_MALLOC=default``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
ARENA_MAX = 2  # glibc makes up to 8 arenas per core, one per new thread; each node runs in a thread of its
#                own, and the buffers a finished node freed stayed held in its thread's arena
MMAP_THRESHOLD = 16 * 2**20
TRIM_THRESHOLD = 64 * 2**20
_done = False


def tune_allocator() -> bool:
    """Set glibc's mmap and trim thresholds (once); True if they were set."""
    global _done
    if _done or not sys.platform.startswith("linux") or os.environ.get("LUCKYSTACK_MALLOC") == "default":
        return False
    _done = True
    try:
        libc = _libc()
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
            bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(libc.mallopt(M_ARENA_MAX, ARENA_MAX))
    except (OSError, AttributeError):
        return False


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")  # find_library runs ldconfig: once


def release_free_memory() -> None:
    """Hand the heap's free memory back to the kernel (glibc ``malloc_trim``): between nodes, what one
    node freed and the trim threshold keeps would otherwise count in the next node's peak."""
    if not _done:
        return
    try:
        _libc().malloc_trim(0)
    except (OSError, AttributeError):
        pass
