"""Damaged cache entries: finding them, moving them aside into ``quarantine/``, cleaning up.

A mixin of :class:`~luckystack.graph.store.CacheStore` (which supplies ``root``, ``manifest``,
``remove``, ``_check_files`` and the ``damaged`` list): an entry whose files do not match its manifest
is moved to ``<cache>/quarantine/<key>-<id>/`` with a ``damage.txt``, never deleted silently; a key
folder that only links to a removed entry, or was written in the format without checksums, is deleted.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from pathlib import Path

from luckystack.graph.checksum import EntryDamaged

KEY_RE = re.compile(r"^[0-9a-f]{64}$")
OUTDATED = "written by an older version"


def key_folders(root: Path) -> list[str]:
    """The names of the folders under the cache root ``root`` named as a key (committed, damaged or
    without a manifest; not partial, deleting or quarantined ones), sorted."""
    return sorted(p.name for p in Path(root).iterdir() if KEY_RE.match(p.name) and p.is_dir())


class Quarantine:
    """Damage handling for a cache store (see the module docstring)."""

    root: Path
    damaged: list[tuple[str, str, Path]]
    in_use_error: type[Exception]

    def problem(self, key: str) -> str | None:
        """Why the folder ``key`` is not a usable entry (None: it is one, as far as its manifests say)."""
        try:
            refs = self.manifest(key).get("refs", [])
        except FileNotFoundError:
            return "no manifest.json" if (self.root / key).exists() else "not in the cache"
        except OSError as e:
            return f"manifest.json unreadable ({e.strerror or e})"
        except EntryDamaged as e:
            return e.what
        for ref in refs:
            try:
                self.manifest(ref)
            except (OSError, EntryDamaged):
                return f"links to entry {ref[:12]}, which is gone or damaged"
        return None

    def verify(self, key: str) -> str | None:
        """Check every file of entry ``key`` against its manifest (reads it all); None when sound."""
        problem = self.problem(key)
        if problem is not None:
            return problem
        try:
            manifest = self.manifest(key)
            self._check_files(key, manifest, None, full=True)
        except FileNotFoundError:
            return "not in the cache"
        except EntryDamaged as e:
            return e.what
        return None

    def quarantine(self, key: str, reason: str, seal: str | None = None) -> Path | None:
        """Move the folder of a damaged entry aside into ``quarantine/`` (with ``damage.txt``); returns
        where it went, or None when it had gone already or was meanwhile replaced by a sound entry.
        ``seal``: the checksum of the manifest whose files were found damaged (None: the manifest was)."""
        try:
            current = self.manifest(key)["checksum"]
        except (OSError, EntryDamaged):
            current = None
        if current is not None and current != seal:
            return None  # a sound entry committed since the damage was seen (or the damage is elsewhere)
        dest = self.root / "quarantine" / f"{key}-{uuid.uuid4().hex[:8]}"
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.rename(self.root / key, dest)
        except FileNotFoundError:
            return None
        except OSError as e:  # a read-only cache: the damaged entry stays, and stays unused
            raise EntryDamaged(key, f"{reason}; it cannot be moved aside ({e.strerror or e})", seal) from None
        try:
            (dest / "damage.txt").write_text(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {reason}\n")
        except OSError:
            pass
        self.damaged.append((key, reason, dest))
        return dest

    def repair(self, key: str, problem: str) -> bool:
        """Move the unusable entry ``key`` out of the way (see :meth:`_clear`); whether it went."""
        before = (self.root / key).exists()
        try:
            seal = self.manifest(key)["checksum"]  # sound manifest, damaged files
        except (OSError, EntryDamaged):
            seal = None
        self._clear(key, problem, seal)
        return before and not (self.root / key).exists()

    def quarantined(self) -> list[Path]:
        try:
            return sorted(p for p in (self.root / "quarantine").iterdir() if p.is_dir())
        except OSError:
            return []

    def broken(self) -> list[str]:
        """Key folders that are not usable entries: no valid manifest, or links to a missing entry."""
        return [key for key in key_folders(self.root) if self.problem(key) is not None]

    def _clear(self, key: str, problem: str, seal: str | None = None) -> None:
        """Move the unusable folder ``key`` out of the way: into quarantine when its own files are
        damaged, deleted when it only links to an entry that is gone or was written in an older format."""
        if problem.startswith(("links to ", OUTDATED)):
            try:
                self.remove(key)
            except self.in_use_error:
                pass
            return
        self.quarantine(key, problem, seal)

    def clean_damaged(self) -> tuple[list[str], list[Path]]:
        """Remove key folders that are no usable entries and everything in ``quarantine/``; returns
        (keys removed, quarantined folders deleted)."""
        removed = []
        for key in self.broken():
            try:
                self.remove(key)
            except (self.in_use_error, OSError):
                continue
            removed.append(key)
        gone = self.quarantined()
        for p in gone:
            shutil.rmtree(p, ignore_errors=True)
        return removed, gone
