"""Writing result files so that a file under its final name is always whole.

Every exported file (results, run records, reports) goes through :func:`write_file`: the
bytes are made in memory first (files here are megabytes), written to a hidden temporary name in the
same folder, flushed to disk, then renamed over the final name — a rename within one folder is atomic,
so a reader, a crash or a full disk never leaves a partial file under the final name. On failure the
temporary is removed and :class:`WriteFailed` says which file, and, for a full disk, how much space
the file needed and how much there was. A temporary left by a killed writer (its pid is in the name) is
removed by the next write of the same file.
"""

from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class WriteFailed(Exception):
    """A result file could not be written (one line for the user: the path and why)."""


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def free_space(folder: Path) -> int | None:
    """Bytes an unprivileged writer may still use in ``folder``'s file system (None: unknown)."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


def disk_full(path: Path, needed: int | None) -> WriteFailed:
    free = free_space(Path(path).parent)
    parts = [f"{human_size(needed)} needed" if needed is not None else None,
             f"{human_size(free)} free" if free is not None else None]
    detail = ", ".join(p for p in parts if p)
    return WriteFailed(f"cannot write {path}: the disk is full" + (f" ({detail})" if detail else ""))


def _remove_stale_temporaries(path: Path) -> None:
    for tmp in path.parent.glob(f".{glob_escape(path.name)}.*-*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_file(path: Path | str, data: bytes | str) -> Path:
    """Write ``data`` (str: as UTF-8) to ``path`` atomically; creates the folder. Raises WriteFailed."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if e.errno in _FULL:
            raise disk_full(path, len(raw)) from None
        raise WriteFailed(f"cannot write {path}: {e.strerror or e}") from None
    free = free_space(path.parent)
    if free is not None and len(raw) > free:
        raise disk_full(path, len(raw))  # nothing written at all
    _remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(e, OSError):
            if e.errno in _FULL:
                raise disk_full(path, len(raw)) from None
            raise WriteFailed(f"cannot write {path}: {e.strerror or e}") from None
        raise
    return path
