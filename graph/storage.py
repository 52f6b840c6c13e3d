"""What the engine needs from a result store, so another backend can follow the local one.

The scheduler and the tasks it runs (on this machine or on a cluster's workers) touch the cache only
through :class:`Store` and :class:`PendingWrite`. A task carries the store's *location* (a string), not
the store: :func:`open_store` reopens it where the task runs. Today's backend is
:class:`~luckystack.graph.store.CacheStore`, a directory of zarr groups on a local or shared (NFS,
Lustre, CephFS) filesystem; an fsspec/zarr object-store backend would implement the same two
protocols and register its URL scheme in :data:`BACKENDS`.

Guarantees every backend must give (docs/distributed.md says how the local one does):

* **Atomic entries**: ``has(key)`` is true only for a whole entry, committed after every array and
  the manifest were durably written; a writer killed at any point leaves nothing a reader sees.
* **Concurrent writers**: two tasks computing the same key both succeed; one copy wins.
* **Leases**: an entry loaded and not yet released is never deleted under its reader.
* **Orphans**: what a killed writer left is removed by ``sweep_orphans`` once its writer is gone.
* **Verifiable**: every stored byte is checked against a checksum recorded at write (``check``, and on
  every load); a damaged entry is never served: it raises ``EntryDamaged`` and can be moved aside
  (``quarantine``), so its node is computed again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from luckystack.graph.node import Result


@runtime_checkable
class PendingWrite(Protocol):
    """An entry being written; nothing of it is visible until :meth:`write` commits it."""

    key: str

    def create_array(self, port: str, name: str, shape: tuple[int, ...], dtype: Any,
                     chunks: tuple[int, ...] | None = None) -> Any: ...

    def write(self, results: Mapping[str, Result], key_json: dict, provenance: dict) -> Any: ...

    def abort(self) -> None: ...


@runtime_checkable
class Store(Protocol):
    """Committed results by key (see the module docstring for the guarantees)."""

    root: Any  # where the entries live; ``str(root)`` with the scheme (if any) is the location

    def has(self, key: str) -> bool: ...

    def load(self, key: str, touch: bool = True) -> dict[str, Result]: ...

    def release(self, keys: list[str] | None = None) -> None: ...

    def read_json(self, key: str, name: str) -> dict: ...  # a committed entry's key.json or provenance.json

    def begin(self, key: str) -> PendingWrite: ...

    def remember(self, family: str, key: str) -> None: ...

    def family(self, family: str, prune: bool = True) -> list[str]: ...

    def sweep_orphans(self, max_age_s: float = ...) -> list[Any]: ...

    def check(self, key: str, full: bool = True) -> None:
        """Raise EntryDamaged unless every file of the entry (and of those it links to) is as sealed."""

    def quarantine(self, key: str, reason: str, seal: str | None = None) -> Any:
        """Move a damaged entry aside, so the node that made it is computed again."""


def _local(location: str) -> Store:
    from luckystack.graph.store import CacheStore

    return CacheStore(Path(location.removeprefix("file://")))


# URL scheme → opener; a location without a scheme is a filesystem path.
BACKENDS: dict[str, Callable[[str], Store]] = {"file": _local}


def location_of(store: Store) -> str:
    """The string a task carries to reopen ``store`` elsewhere (an absolute path for a directory, so
    a worker started in another folder finds the same place)."""
    root = store.root
    return str(Path(root).resolve()) if isinstance(root, Path) else str(root)


def open_store(location: str) -> Store:
    """The store at ``location`` (a path, or ``scheme://...`` of a registered backend)."""
    scheme = location.split("://", 1)[0] if "://" in location else "file"
    try:
        opener = BACKENDS[scheme]
    except KeyError:
        raise ValueError(f"no cache backend for {scheme!r} locations (known: {', '.join(sorted(BACKENDS))})") from None
    return opener(location)
