"""The result cache: one zarr v3 group per key under the cache root.

Layout of ``<root>/``::

    <key>/                  a committed entry (zarr group)
        <port>/<array>      one zarr array per result array, chunked
        key.json            the "lsk-node/1" preimage the key hashes
        provenance.json     pipeline, node, params, upstream keys, file fingerprints, versions, time, memory
        manifest.json       written LAST: ports → meta and array list, every file's size and XXH3-128,
                            and a checksum of itself. No valid manifest → entry is absent.
        last-use            touched on every read, for LRU eviction
    <key>.partial-<uuid>/   an entry being written (owner.json names pid, host, start time)
    <key>.deleting-<uuid>/  an entry being removed (renamed away first)
    quarantine/<key>-<uuid>/ a damaged entry moved aside (damage.txt says why); `cache gc` deletes them
    fingerprints/  index/   input-file fingerprints and last keys per pipeline node (see fingerprint, explain)
    families/<family>/<key> empty markers: entries whose recipes differ only in a node's incremental params

Atomicity: an entry is written into its ``.partial-`` directory, every file fsynced, the manifest written
last, and the directory renamed into place. A killed process leaves only a partial directory, which no
reader looks at and which :meth:`CacheStore.sweep_orphans` deletes once its owner pid is gone. If two
processes compute the same key, the first rename wins; the loser deletes its copy and reads the winner's.

Checksums (see :mod:`checksum`): :meth:`CacheStore.check` compares every file of an entry (and of the
arrays it links to) with its digest; loading checks the manifest's own checksum and every file's size,
and every file zarr reads is hashed on the way (:class:`~luckystack.graph.checksum.CheckedStore`). Any
mismatch raises :class:`EntryDamaged`: the caller moves the entry aside (``quarantine``, see
:mod:`quarantine`) and computes it again. A key folder without a valid manifest is moved aside by the
next writer of that key, or by ``cache gc``/``cache rm``/``cache verify --repair``.

Leases: a process that loads an entry holds a shared ``flock`` on its manifest (and on the manifests of
the entries it links to) until it releases it, or exits. Removal (``cache rm``, ``cache gc``) takes the
lock exclusively without waiting and leaves an entry in use alone, so a run never reads an entry that
another process deletes under it (a missing zarr chunk would read as zeros, silently).
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec
from zarr.core.sync import sync

try:
    import fcntl
except ImportError:  # Windows: no leases, so `cache rm`/`gc` do not know which entries a run is reading
    fcntl = None  # type: ignore[assignment]

from luckystack.graph.checksum import CheckedStore, EntryDamaged, check_file, digest_files, files_under, seal, unseal
from luckystack.graph.files import pid_alive
from luckystack.graph.node import Result
from luckystack.graph.quarantine import KEY_RE as _KEY_RE
from luckystack.graph.quarantine import OUTDATED as _OUTDATED
from luckystack.graph.quarantine import Quarantine, key_folders

__all__ = ["CacheStore", "EntryDamaged", "EntryInUse", "EntryInfo", "PendingEntry"]

_PARTIAL_RE = re.compile(r"^([0-9a-f]{64})\.(partial|deleting)-([0-9a-f]{32})$")
_STAGING_RE = re.compile(r"^\.([0-9a-f]{64})\.init-([0-9a-f]{32})$")  # a partial folder being created
FORMAT = "lsk-entry/2"  # /1 had no checksums: such an entry counts as damaged, so it is computed again
_NOT_DIGESTED = frozenset({"owner.json", "manifest.json", "last-use"})
_CHUNK_BYTES = 8 << 20
FSYNC_THREADS = 8  # files an entry syncs at once
GATHERED_BYTES = 4 << 20  # arrays smaller than this are written side by side
# Byte-shuffled LZ4: on float32 images 0.75 of their size in 2 ms per 5 MB, against 0.84 in 9 ms for
# zarr's default zstd (the bytes of a float differ in how well they compress; shuffling groups them).
COMPRESSOR = BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, data: Any, sync: bool = True) -> None:
    """``data`` as JSON at ``path``; ``sync``: on the disk before this returns (else it is synced later,
    with the entry's other files)."""
    with open(path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True, default=str)
        if sync:
            f.flush()
            os.fsync(f.fileno())


def _layout(shape: tuple[int, ...], dtype: Any, chunks: tuple[int, ...] | None = None) -> dict[str, Any]:
    """How an entry's array is stored: its shape and dtype, ``chunks`` (default :func:`default_chunks`)
    and :data:`COMPRESSOR` (zarr's ``create_array`` arguments, sync or async)."""
    dtype = np.dtype(dtype)
    return {"shape": tuple(shape), "dtype": dtype, "compressors": COMPRESSOR,
            "chunks": tuple(chunks) if chunks else default_chunks(tuple(shape), dtype.itemsize)}


def default_chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Whole array when small; otherwise split along the first axis into ~8 MiB chunks."""
    if not shape:
        return ()
    row = int(np.prod(shape[1:], dtype=np.int64)) * itemsize
    rows = max(1, min(shape[0], _CHUNK_BYTES // max(row, 1)))
    return (rows,) + tuple(shape[1:])


@dataclass(frozen=True)
class EntryInfo:
    key: str
    node: str
    type: str
    pipeline: str
    size: int
    created: float
    last_use: float


class PendingEntry:
    """An entry being written: a zarr group in a ``.partial-`` directory until :meth:`commit`."""

    def __init__(self, store: "CacheStore", key: str) -> None:
        self.store = store
        self.key = key
        token = uuid.uuid4().hex
        self.path = store.root / f"{key}.partial-{token}"
        # The partial folder appears with its owner inside, so a writer killed at any moment leaves
        # nothing sweep_orphans cannot attribute (at most an empty staging folder, swept by age).
        staging = store.root / f".{key}.init-{token}"
        staging.mkdir(parents=True)
        _write_json(staging / "owner.json", {"pid": os.getpid(), "host": socket.gethostname(),
                                             "started": time.time()}, sync=False)  # synced with the entry
        os.rename(staging, self.path)
        self.group = zarr.open_group(str(self.path), mode="a", zarr_format=3)  # "w" would delete owner.json
        self._created: dict[tuple[str, str], Any] = {}

    def create_array(self, port: str, name: str, shape: tuple[int, ...], dtype: Any,
                     chunks: tuple[int, ...] | None = None) -> Any:
        """A writable chunked array at ``<port>/<name>`` inside this entry."""
        sub = self.group.require_group(port)
        arr = sub.create_array(name, **_layout(shape, dtype, chunks))
        self._created[(port, name)] = arr
        return arr

    def write(self, results: Mapping[str, Result], key_json: dict, provenance: dict) -> Path:
        """Store the arrays and meta of every port, then commit; returns the committed path."""
        manifest: dict[str, Any] = {"format": FORMAT, "key": self.key, "ports": {}}
        new: dict[tuple[str, str], np.ndarray] = {}  # the arrays to store, written all at once below
        for port, result in results.items():
            arrays: dict[str, Any] = {}
            for name, value in result.arrays.items():
                ref = self.store.reference_of(value)
                if ref is not None:  # an upstream entry's array passed through: link, don't copy
                    arrays[name] = {"shape": list(value.shape), "dtype": str(value.dtype),
                                    "ref": ref[0], "path": ref[1]}
                    manifest.setdefault("refs", []).append(ref[0])
                    continue
                if self._created.get((port, name)) is value:
                    arrays[name] = {"shape": list(value.shape), "dtype": str(value.dtype)}
                else:
                    data = np.asarray(value[...] if hasattr(value, "shape") and not isinstance(value, np.ndarray)
                                      else value)
                    new[(port, name)] = data
                    arrays[name] = {"shape": list(data.shape), "dtype": str(data.dtype)}
            manifest["ports"][port] = {"arrays": arrays,
                                       "meta": json.loads(json.dumps(result.meta, default=_json_default))}
        if new:
            sync(self._store_all(new))
        _write_json(self.path / "key.json", key_json, sync=False)
        _write_json(self.path / "provenance.json", provenance, sync=False)
        # Every file is on the disk before the manifest is written. The files are synced all at once, from
        # threads (an fsync waits for the disk, and the file system commits files synced together in one
        # go), while this thread digests them.
        with ThreadPoolExecutor(FSYNC_THREADS, thread_name_prefix="lsk-fsync") as pool:
            files = files_under(self.path)  # one walk serves both
            synced = [pool.submit(_fsync_file, name) for name in files]
            manifest["files"] = digest_files(self.path, files, _NOT_DIGESTED)
            for done in synced:
                done.result()  # an error (EIO) fails the write: nothing is committed
        _write_json(self.path / "manifest.json", seal(manifest))
        return self.store._commit(self)

    async def _store_all(self, arrays: dict[tuple[str, str], np.ndarray]) -> None:
        """Create and fill the arrays ``(port, name) → data`` in one call into zarr's event loop (a call
        per array and step costs a hand-over between threads each: 16 for an entry of five small arrays,
        ~20 ms of a ~28 ms write). The small ones are written side by side; the large ones one after
        another (compressing several at once was slower: their chunks are written in parallel anyway)."""
        root = self.group._async_group
        names = sorted({port for port, _ in arrays})
        ports = dict(zip(names, await asyncio.gather(*(root.require_group(port) for port in names))))

        async def store(port: str, name: str, data: np.ndarray) -> None:
            arr = await ports[port].create_array(name, **_layout(data.shape, data.dtype))
            if data.size:
                await arr.setitem(Ellipsis, data)

        await asyncio.gather(*(store(port, name, data) for (port, name), data in arrays.items()
                               if data.nbytes < GATHERED_BYTES))
        for (port, name), data in arrays.items():
            if data.nbytes >= GATHERED_BYTES:
                await store(port, name, data)

    def abort(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"meta value of type {type(value).__name__} is not JSON-serialisable")


class _LazyArrays(Mapping):
    """An entry's arrays by name, each opened (its zarr metadata read) on first access: a node often
    needs a few of an upstream result's many arrays."""

    def __init__(self, store: "CacheStore", places: dict[str, tuple[str, str]],
                 digests: dict[str, dict[str, list]]) -> None:
        self._store = store  # keeps the store, and so its leases, alive as long as these arrays
        self._root, self._places, self._digests, self._open = store.root, places, digests, {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._open:
            key, path = self._places[name]
            checked = CheckedStore(self._root / key, key, self._digests[key]["files"],
                                   self._digests[key]["checksum"])
            try:
                self._open[name] = zarr.open_array(checked, path=path, mode="r", zarr_format=3)
            except EntryDamaged:
                raise
            except (OSError, ValueError, KeyError, TypeError) as e:  # zarr.json that parses but is wrong
                raise EntryDamaged(key, f"array {path} cannot be opened ({type(e).__name__}: {e})",
                                   self._digests[key]["checksum"]) from None
        return self._open[name]

    def __contains__(self, name: object) -> bool:
        return name in self._places  # from the manifest: asking opens nothing (Mapping's default would)

    def __iter__(self) -> Iterator[str]:
        return iter(self._places)

    def __len__(self) -> int:
        return len(self._places)


class EntryInUse(Exception):
    """An entry cannot be removed: a process is reading it."""


class CacheStore(Quarantine):
    """Committed entries by key; see the module docstring for layout and guarantees (damage handling:
    :class:`~luckystack.graph.quarantine.Quarantine`)."""

    in_use_error = EntryInUse

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._leases: dict[str, list] = {}  # key → [fds holding shared locks, times leased]
        self._leases_lock = threading.Lock()  # the tasks of a run lease from several threads at once
        self.damaged: list[tuple[str, str, Path]] = []  # (key, problem, where it went) moved aside here
        self._manifests: dict[str, tuple[tuple[int, int, int], dict]] = {}  # see manifest()

    def __getstate__(self) -> dict:
        return {"root": self.root, "damaged": []}  # a lease belongs to the process that took it

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._leases, self._leases_lock, self._manifests = {}, threading.Lock(), {}

    def __del__(self) -> None:
        try:
            self.release()  # results loaded from this store hold it: its leases end with the last of them
        except (TypeError, AttributeError, OSError):
            pass  # interpreter shutdown: the process's exit releases the locks

    # -- reading ----------------------------------------------------------------------------
    def path(self, key: str) -> Path:
        return self.root / key

    def has(self, key: str) -> bool:
        """Committed with a valid manifest, and so is every entry it links to (files are checked on
        loading, see :meth:`load`)."""
        try:
            for ref in self.manifest(key).get("refs", []):
                self.manifest(ref)
        except (OSError, EntryDamaged):
            return False
        return True

    def reference_of(self, value: Any) -> tuple[str, str] | None:
        """(key, array path) when ``value`` is an array of a committed entry of this store, else None."""
        if not isinstance(value, zarr.Array):
            return None
        root = getattr(value.store, "root", None)
        if root is None:
            return None
        root = Path(root)
        if root.parent.resolve() != self.root.resolve() or not (root / "manifest.json").is_file():
            return None
        return root.name, value.path

    def manifest(self, key: str) -> dict:
        """The entry's manifest, its checksum checked: FileNotFoundError when there is none,
        EntryDamaged when it is damaged or written by a version without checksums.

        A manifest checked once is kept while its file's inode, size and modification time stay the
        same (a rerun's family check and loads read each member's and the entries they link to
        several times); one ``stat`` still tells that the entry is there."""
        path = self.root / key / "manifest.json"
        st = os.stat(path)
        signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        known = self._manifests.get(key)
        if known is not None and known[0] == signature:
            return known[1]
        manifest = self._read_manifest(key, path.read_bytes())
        self._manifests[key] = (signature, manifest)
        return manifest

    def _read_manifest(self, key: str, text: bytes) -> dict:
        try:
            manifest = unseal(text)
        except ValueError as e:
            if b'"format": "lsk-entry/1"' in text and b'"checksum"' not in text:
                raise EntryDamaged(key, f"{_OUTDATED} (format 'lsk-entry/1', not {FORMAT})") from None
            raise EntryDamaged(key, f"manifest.json: {'empty' if not text else e}") from None
        if manifest.get("format") != FORMAT:
            raise EntryDamaged(key, f"{_OUTDATED} (format {manifest.get('format')!r}, not {FORMAT})")
        if manifest.get("key") != key:
            raise EntryDamaged(key, f"manifest.json belongs to entry {str(manifest.get('key'))[:12]}")
        return manifest

    def load(self, key: str, touch: bool = True) -> dict[str, Result]:
        """The entry's results by port; arrays are read-only zarr arrays (read lazily).

        Leases the entry and the entries it links to (see the module docstring) until :meth:`release`;
        FileNotFoundError if it is gone. ``touch``: mark it (and what it links to) as used now, for LRU
        eviction; off for a look that may not use it.
        """
        manifest = self._lease(key)
        try:
            digests, places = self._checked(key, manifest, full=False)
        except BaseException:
            self.release([key])
            raise
        if touch:
            for ref in [key] + manifest.get("refs", []):
                self.touch(ref)  # what it links to is as recently used as it is
        return {port: Result(arrays=_LazyArrays(self, places[port], digests), meta=info["meta"])
                for port, info in manifest["ports"].items()}

    def check(self, key: str, full: bool = True) -> None:
        """Raise EntryDamaged (naming the damaged entry: ``key``, or one it links to) unless every file
        of ``key`` and of the arrays it links to is there with its size and, ``full``, its digest;
        FileNotFoundError when it or an entry it links to is not in the cache."""
        self._checked(key, self.manifest(key), full)

    def _checked(self, key: str, manifest: dict, full: bool) -> tuple[dict[str, dict], dict[str, dict]]:
        """(manifests by key of the entry and those it links to, array places by port and name) of a
        checked entry; without ``full`` each file costs one ``stat`` (digests are then checked as zarr
        reads the files, see :class:`CheckedStore`)."""
        digests = {key: manifest}
        for ref in manifest.get("refs", []):
            digests.setdefault(ref, self.manifest(ref))
        places = {port: {name: (spec["ref"], spec["path"]) if "ref" in spec else (key, f"{port}/{name}")
                         for name, spec in info["arrays"].items()}
                  for port, info in manifest["ports"].items()}
        self._check_files(key, digests[key], None, full)
        for ref in digests.keys() - {key}:
            linked = [path for arrays in places.values() for k, path in arrays.values() if k == ref]
            self._check_files(ref, digests[ref], linked, full)
        return digests, places

    def _check_files(self, key: str, manifest: dict, prefixes: list[str] | None, full: bool) -> None:
        folder = self.root / key
        for rel, expected in manifest["files"].items():
            if prefixes is not None and not any(rel.startswith(p + "/") for p in prefixes):
                continue
            problem = check_file(folder / rel, expected, full=full)
            if problem is not None:
                raise EntryDamaged(key, f"{rel}: {problem}", manifest["checksum"])

    def _lease(self, key: str) -> dict:
        """Hold shared locks on ``key``'s manifest and those of the entries it links to; returns the
        manifest. Counted: each call needs one :meth:`release`. FileNotFoundError if any is gone."""
        with self._leases_lock:
            held = self._leases.get(key)
            if held is not None:
                held[1] += 1
                return self.manifest(key)
            return self._lease_new(key)

    def _lease_new(self, key: str) -> dict:
        fds: list[int] = []
        try:
            fds.append(self._lock_shared(key))
            manifest = self.manifest(key)
            fds += [self._lock_shared(ref) for ref in manifest.get("refs", [])]
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        self._leases[key] = [fds, 1]
        return manifest

    def _lock_shared(self, key: str) -> int:
        path = self.root / key / "manifest.json"
        fd = os.open(path, os.O_RDONLY)  # FileNotFoundError: not committed, or removed
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a remover renames the entry away
            if not os.path.samestat(os.fstat(fd), os.stat(path)):
                raise FileNotFoundError(f"cache entry {key[:12]} was removed")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def release(self, keys: list[str] | None = None) -> None:
        """Give up one lease on each of ``keys`` (None: every lease this store holds)."""
        with self._leases_lock:
            for key in list(self._leases) if keys is None else keys:
                held = self._leases.get(key)
                if held is None:
                    continue
                held[1] = 0 if keys is None else held[1] - 1
                if held[1] <= 0:
                    for fd in held[0]:
                        os.close(fd)
                    del self._leases[key]

    def read_json(self, key: str, name: str) -> dict:
        return json.loads((self.root / key / name).read_text())

    def touch(self, key: str) -> None:
        try:
            (self.root / key / "last-use").write_text(f"{time.time():.3f}\n")
        except OSError:
            pass  # evicted meanwhile, or a read-only cache: last-use is advisory

    def family(self, family: str, prune: bool = True) -> list[str]:
        """Committed members of ``family`` (see :meth:`remember`), most recently used first.
        ``prune``: also delete the markers of members evicted since (off for a command that only looks)."""
        folder = self.root / "families" / family
        try:
            names = [p.name for p in folder.iterdir() if _KEY_RE.match(p.name)]
        except OSError:
            return []
        members = []
        for key in names:
            try:
                if self.has(key):
                    members.append((self._last_use(key), key))
                    continue
            except (OSError, ValueError):
                continue  # being evicted right now
            if prune:
                (folder / key).unlink(missing_ok=True)  # evicted: forget it (another process may have already)
        return [key for _, key in sorted(members, reverse=True)]

    def _last_use(self, key: str) -> float:
        p = self.root / key
        try:
            return (p / "last-use").stat().st_mtime
        except OSError:
            return (p / "manifest.json").stat().st_mtime

    # -- writing ----------------------------------------------------------------------------
    def remember(self, family: str, key: str) -> None:
        """Record committed entry ``key`` as a member of ``family`` (a marker file: atomic, no lock)."""
        folder = self.root / "families" / family
        folder.mkdir(parents=True, exist_ok=True)
        (folder / key).touch()

    def begin(self, key: str) -> PendingEntry:
        return PendingEntry(self, key)

    def _commit(self, pending: PendingEntry) -> Path:
        target = self.root / pending.key
        for _attempt in range(5):
            try:
                os.rename(pending.path, target)
                break
            except OSError as e:
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                    raise
                problem = self.problem(pending.key)
                if problem is None:
                    pending.abort()  # another process committed the same key first: theirs wins
                    break
                self._clear(pending.key, problem)  # a damaged or dangling folder: the writer moves it aside
        else:
            raise OSError(errno.ENOTEMPTY, f"cannot commit cache entry {pending.key[:12]}: {target} "
                                           "keeps being replaced")
        self.touch(pending.key)
        return target

    # -- housekeeping -----------------------------------------------------------------------
    def sweep_orphans(self, max_age_s: float = 7 * 86400) -> list[Path]:
        """Delete partial entries whose writer is dead (same host) or that are older than ``max_age_s``."""
        removed = []
        host = socket.gethostname()
        for p in self.root.iterdir():
            m = _PARTIAL_RE.match(p.name)
            if not m:
                if _STAGING_RE.match(p.name):
                    try:
                        if time.time() - p.stat().st_mtime > 60:
                            shutil.rmtree(p, ignore_errors=True)
                            removed.append(p)
                    except FileNotFoundError:
                        pass
                continue
            try:
                owner = json.loads((p / "owner.json").read_text())
                dead = (owner.get("host") == host and not pid_alive(int(owner["pid"]))) \
                    or time.time() - float(owner["started"]) > max_age_s
            except (OSError, ValueError, KeyError):
                try:
                    dead = time.time() - p.stat().st_mtime > 3600  # owner.json not yet written or lost
                except FileNotFoundError:
                    continue  # committed (renamed into place) or removed meanwhile
            if dead or m.group(2) == "deleting":
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        return removed

    def keys(self) -> Iterator[str]:
        for key in key_folders(self.root):
            if (self.root / key / "manifest.json").is_file():
                yield key

    def info(self, key: str) -> EntryInfo:
        p = self.root / key
        size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        try:
            prov = self.read_json(key, "provenance.json")
        except (OSError, ValueError):
            prov = {}
        last = self._last_use(key)
        return EntryInfo(key=key, node=prov.get("node_id", "?"), type=prov.get("node_type", "?"),
                         pipeline=prov.get("pipeline", "?"), size=size,
                         created=float(prov.get("created", (p / "manifest.json").stat().st_mtime)),
                         last_use=last)

    def entries(self) -> list[EntryInfo]:
        return sorted((self.info(k) for k in self.keys()), key=lambda e: e.last_use, reverse=True)

    def resolve(self, prefix: str) -> str:
        """The one committed key starting with ``prefix``; KeyError with a clear message otherwise."""
        prefix = prefix.removeprefix("sha256:")
        found = [key for key in key_folders(self.root) if key.startswith(prefix)]
        if len(found) != 1:
            what = "no entry" if not found else f"{len(found)} entries"
            raise KeyError(f"{what} in {self.root} match key {prefix!r}")
        return found[0]

    def remove(self, key: str) -> None:
        """Delete an entry; it is renamed away first so no reader sees it half-deleted.

        Raises EntryInUse when a process (this one included) has it leased.
        """
        trash = self.root / f"{key}.deleting-{uuid.uuid4().hex}"
        try:
            fd = os.open(self.root / key / "manifest.json", os.O_RDONLY)
        except FileNotFoundError:
            fd = None  # not committed (or gone): nobody can lease it
        try:
            if fd is not None and fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise EntryInUse(f"cache entry {key[:12]} is in use by a running process") from None
            try:
                os.rename(self.root / key, trash)
            except FileNotFoundError:
                return
        finally:
            if fd is not None:
                os.close(fd)
        shutil.rmtree(trash, ignore_errors=True)

    def gc(self, max_size: int, keep: set[str] = frozenset(), in_use: list[str] | None = None
           ) -> list[EntryInfo]:
        """Evict least recently used entries until the total size is at most ``max_size`` bytes, then
        the entries left linking to an evicted one (absent anyway); returns the evicted. Entries in use
        are kept (and their keys appended to ``in_use``)."""
        entries = sorted(self.entries(), key=lambda e: e.last_use)
        total = sum(e.size for e in entries)
        evicted = []
        busy = in_use if in_use is not None else []
        for e in entries:
            if total <= max_size:
                break
            if e.key in keep:
                continue
            try:
                self.remove(e.key)
            except EntryInUse:
                busy.append(e.key)
                continue
            total -= e.size
            evicted.append(e)
        for e in entries:
            if e not in evicted and e.key not in keep and not self.has(e.key):
                try:
                    self.remove(e.key)
                except (EntryInUse, OSError):
                    continue
                evicted.append(e)
        return evicted
