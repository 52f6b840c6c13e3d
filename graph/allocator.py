"""Keep glibc from returning every freed buffer of a few MB to the kernel (a large speed-up).

Node code allocates and frees many arrays of one to a few MB per work item (blurred copies, gradients,
intermediate results). glibc serves blocks above its mmap threshold (128 KB at start, adapting upwards only
as such blocks are freed) with fresh ``mmap`` pages, and unmaps them on free, so every temporary array
costs page faults and zeroing: measured, that doubles the time of a blur + gradient + sum of squares
on a 600×440 array. Raising the mmap threshold to 16 MB and the trim threshold to 64 MB keeps those
buffers in the heap for reuse; memory stays bounded by the trim threshold per arena.

Transparent huge pages are turned off for the process (``prctl(PR_SET_THP_DISABLE)``, Linux): where the
kernel backs anonymous memory with 2 MB pages on first touch (THP "always", the default of several
distributions), every time the heap grows again after a trim it zeroes whole 2 MB pages, most of them
only partly used before the next trim, and that page zeroing was the largest part of a run's system CPU.

Applied once per process by :func:`luckystack.graph.process.configure_process`, before nodes run (in
the main process and every worker); no-op where glibc's ``mallopt`` is missing, and off with
``LUCKYSTACK_MALLOC=default``.

The thresholds let a process keep up to 64 MB of freed heap at the top, and more in the middle: one
transient burst of temporaries (building a surface's AP templates) then stays resident for the rest of
the run in every process that made it. :func:`release_free_memory` with ``above`` hands it back only
when the heap's free memory exceeds that many bytes, so steady per-item buffers are kept for reuse.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
PR_SET_THP_DISABLE = 41
ARENA_MAX = 2  # glibc makes up to 8 arenas per core, one per new thread; each node runs in a thread of its
#                own, and the buffers a finished node freed stayed held in its thread's arena
MMAP_THRESHOLD = 16 * 2**20
TRIM_THRESHOLD = 64 * 2**20
_done = False


def tune_allocator() -> bool:
    """Set glibc's mmap and trim thresholds and turn transparent huge pages off (once); True if the
    thresholds were set."""
    global _done
    if _done or not sys.platform.startswith("linux") or os.environ.get("LUCKYSTACK_MALLOC") == "default":
        return False
    _done = True
    try:
        libc = _libc()
        libc.prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)  # fails (EINVAL) on kernels before 3.15: no matter
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
            bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(libc.mallopt(M_ARENA_MAX, ARENA_MAX))
    except (OSError, AttributeError):
        return False


def default_huge_pages() -> None:
    """Give this process, and the processes it starts from now on (they inherit the setting), the
    machine's transparent huge pages again: a benchmark's other programs run as they would anywhere."""
    if sys.platform.startswith("linux"):
        try:
            _libc().prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0)
        except (OSError, AttributeError):
            pass


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")  # find_library runs ldconfig: once


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def free_heap_bytes() -> int | None:
    """Free bytes the heap holds, all arenas (glibc ``mallinfo2``'s ``fordblks``); None where unknown."""
    try:
        mallinfo2 = _libc().mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = _MallInfo2
    return int(mallinfo2().fordblks)


def release_free_memory(above: int = 0) -> bool:
    """Hand the heap's free memory back to the kernel (glibc ``malloc_trim``), when it holds more than
    ``above`` bytes free (0: always); True if it trimmed. Between nodes, what one node freed and the trim
    threshold keeps would otherwise count in the next node's peak; after a work item (``above`` > 0),
    what one burst of temporaries left would count in every later item's."""
    if not _done:
        return False
    try:
        if above > 0:
            free = free_heap_bytes()
            if free is None or free <= above:
                return False
        _libc().malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False
