"""What a run's exports did to the files an earlier run left in the same output folder.

The earlier run's record (``run.json``) says which files it exported and which node result made each.
A file this run writes again from another result is *replaced*, worth a warning only when its content
changed (an identical file, e.g. after a change that leaves its content alone, is no news); so only the
files an earlier run wrote from results this run does not export are read before the export, and a
fully cached run reads none. A file the
earlier run exported that this run does not write is *stale*: it would sit beside a report that does
not list it (a variant no longer asked for), so it is removed, with its folder when that empties.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from luckystack.graph.checksum import digest_file


def file_digest(path: Path | str) -> str | None:
    """XXH3-128 of a file's bytes (:func:`~luckystack.graph.checksum.digest_file`); None if it cannot be
    read."""
    try:
        return digest_file(Path(path))
    except OSError:
        return None


def digests(paths: Iterable[str]) -> dict[str, str | None]:
    """The digest of every path (None where there is no readable file)."""
    return {p: file_digest(p) for p in paths}


def from_other_results(earlier: Mapping[str, str], keys: Iterable[str]) -> list[str]:
    """The files of ``earlier`` (file → key of the result that wrote it) that no result of ``keys`` (this
    run's exporting nodes) wrote: only they can be *replaced*, so only their digests are needed (a fully
    cached run reads none of its exported files)."""
    now = set(keys)
    return [p for p, k in earlier.items() if k not in now]


def replaced(written: Iterable[Path | str], key: str, earlier: Mapping[str, str],
             before: Mapping[str, str | None]) -> list[str]:
    """Files among ``written`` that an earlier run exported from another result than ``key`` and whose
    content changed (``before`` holds their digests from before this run's export)."""
    out = []
    for p in map(str, written):
        if earlier.get(p, key) != key and (before.get(p) is None or before.get(p) != file_digest(p)):
            out.append(p)
    return out


def remove_stale(earlier: Iterable[str], written: Iterable[Path | str], out_dir: Path) -> list[str]:
    """Delete the files of ``earlier`` inside ``out_dir`` that this run did not write, and the folders
    under ``out_dir`` they leave empty; return the deleted files."""
    now = {str(p) for p in written}
    root = Path(out_dir).resolve()
    removed = []
    for p in earlier:
        path = Path(p)
        if p in now or not path.is_file() or root not in path.resolve().parents:
            continue
        path.unlink()
        removed.append(p)
        folder = path.resolve().parent
        while folder != root and root in folder.parents and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
    return removed
