"""A node's computation as a task that can travel: a module-level function and what it needs, by value.

The scheduler decides *what* runs (keys, cached or not, order); :func:`run_task` is *how* one node runs,
wherever an executor puts it: a thread of this process or a Dask worker on another machine. Like the
tasks Hamilton's and Kedro's executors submit, a :class:`NodeTask` holds no open handles: the node type
by name (and the module that registers it), the resolved params, the upstream entries by key, the
store by location and the input file by path. The worker reopens the store, leases and reads the
upstream entries itself, and reads the input file from the shared path, so no array is shipped
from the client. The result goes into the store; only a small :class:`TaskOutcome` comes back.
"""

from __future__ import annotations

import errno
import functools
import importlib
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from luckystack.graph import aliases
from luckystack.graph.allocator import release_free_memory
from luckystack.graph.checksum import EntryDamaged
from luckystack.graph.context import CacheContext
from luckystack.graph.fileparams import file_params
from luckystack.graph.files import WriteFailed, free_space, human_size
from luckystack.graph.inputwatch import InputChanged, Watched, check_unchanged
from luckystack.graph.node import NodeError, Params, Result, registry
from luckystack.graph.process import configure_process
from luckystack.graph.progress import Reporter
from luckystack.graph.storage import Store, open_store
from luckystack.graph.versions import versions

_FULL = (errno.ENOSPC, errno.EDQUOT)
UPSTREAM_PATIENCE_S = 60.0  # NFS's attribute cache holds a directory's entries for up to 60 s by default


@dataclass(frozen=True)
class NodeTask:
    """Everything needed to compute one node's entry, by value (picklable, no open handles)."""

    node_id: str
    node_type: str
    node_module: str  # imported where the task runs, so the node type is registered there
    params: Params
    key: str
    preimage: dict[str, Any]
    upstream: dict[str, tuple[str, str]]  # input port → (upstream key, upstream output port)
    store: str  # location of the store, see graph.storage.open_store
    input_file: str | None
    jobs: int
    pipeline: str
    family: str | None = None  # incremental node types: results it may build on share this family
    watched: tuple[Watched, ...] = ()  # input files whose planned content the run's keys hold


@dataclass
class TaskOutcome:
    """What comes back from a task: the entry itself is in the store."""

    node_id: str
    key: str
    warnings: list[str]
    wall_s: float
    host: str
    pid: int


def _peak_rss_mb() -> dict[str, float]:
    import resource

    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    return {"self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale,
            "workers": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale}


def run_task(task: NodeTask, reporter: Reporter | None = None, mapper: Any = None,
             store: Store | None = None) -> TaskOutcome:
    """Compute ``task``'s node into a partial entry and commit it; returns what happened.

    ``reporter`` (this process only) shows the node's progress; ``mapper`` runs ``ctx.map`` (an
    executor's in-task side; None: this process and ``jobs − 1`` local workers); ``store``: an open
    store at ``task.store`` to use instead of reopening it. Raises the node's exception (a NodeError
    names the node); whatever happens, no partial entry becomes visible.
    """
    importlib.import_module(task.node_module)
    configure_process()  # after the import: the node package has registered its set-up
    node_type = registry()[task.node_type]
    store = store if store is not None else open_store(task.store)
    reporter = reporter or Reporter()
    leased: list[str] = []
    t0 = time.perf_counter()

    def load(key: str, touch: bool = True) -> dict[str, Result]:
        result = store.load(key, touch)
        leased.append(key)
        return result

    if store.has(task.key):  # committed meanwhile: by a concurrent run, or by this task before its worker died
        return TaskOutcome(task.node_id, task.key, _warnings_of(store, task.key), 0.0, socket.gethostname(),
                           os.getpid())
    try:
        loaded: dict[str, dict[str, Result]] = {}
        inputs = {}
        for port, (key, sport) in task.upstream.items():
            if key not in loaded:
                loaded[key] = load_committed(load, key)
            inputs[port] = loaded[key][sport]
        input_file = Path(task.input_file) if task.input_file else None
        root = getattr(store, "root", None)
        try:
            pending = store.begin(task.key)
        except OSError as e:
            raise WriteFailed(f"cannot write the result of node {task.node_id!r} into the cache {root}: "
                              f"{e.strerror or e}") from None
        try:
            read: list[str] = []  # earlier results the node was handed
            earlier = functools.partial(_earlier, store, load, task.family, task.key, read) if task.family else None
            ctx = CacheContext(task.params, inputs, input_file, task.jobs, task.node_id, pending, reporter,
                               earlier=earlier, mapper=mapper)
            try:
                results = node_type.run(ctx)
                trusted = all(store.has(k) for k in read)
            except Exception as e:
                damage = _earlier_damage(store, e, read)
                if damage is None:
                    raise  # not an earlier result's (an input's damage: the scheduler moves it aside)
                store.quarantine(damage.key, damage.what, damage.seal)  # do without earlier results
                trusted = False
            if not trusted:
                # An earlier result was damaged, or evicted while the node read it (a missing zarr chunk
                # reads as zeros): start over without earlier results rather than trust what was read.
                pending.abort()
                pending = store.begin(task.key)
                ctx = CacheContext(task.params, inputs, input_file, task.jobs, task.node_id, pending, reporter,
                                   mapper=mapper)
                results = node_type.run(ctx)
            check_unchanged(list(task.watched), root)  # before anything is stored
            warnings = list(ctx.messages)
            prov = {"pipeline": task.pipeline, "node_id": task.node_id, "node_type": task.node_type,
                    "version": node_type.version, "params": task.params.model_dump(mode="json"),
                    "upstream": {port: key for port, (key, _) in task.upstream.items()},
                    "files": task.preimage["files"], "input_file": task.input_file,
                    "versions": versions(), "wall_s": time.perf_counter() - t0,
                    "peak_rss_mb": _peak_rss_mb(), "created": time.time(), "host": socket.gethostname(),
                    "warnings": warnings}
            pending.write(results, task.preimage, prov)
            if root is not None:
                aliases.record(root, task.node_type, task.preimage, task.key, results)
            if task.family:
                store.remember(task.family, task.key)
            del results, ctx
            release_free_memory()
        except BaseException as e:
            pending.abort()
            if isinstance(e, Exception) and not isinstance(e, InputChanged) and task.watched:
                try:  # a file cut short or garbled as it is rewritten makes nodes fail in all sorts of ways
                    check_unchanged(list(task.watched), root)
                except InputChanged as changed:
                    changed.node_id = task.node_id  # type: ignore[attr-defined]
                    raise changed from e
            if isinstance(e, OSError) and e.errno in _FULL:
                free = free_space(root) if root is not None else None
                raise WriteFailed(f"cannot write the result of node {task.node_id!r} into the cache {root}: "
                                  "the disk is full" + (f" ({human_size(free)} free)" if free is not None else "")
                                  ) from None
            if isinstance(e, NodeError) and not hasattr(e, "node_id"):
                e.node_id = task.node_id  # type: ignore[attr-defined]
            raise
    finally:
        store.release(leased)
    return TaskOutcome(task.node_id, task.key, warnings, time.perf_counter() - t0, socket.gethostname(),
                       os.getpid())


def _warnings_of(store: Store, key: str) -> list[str]:
    """The warnings recorded with a committed entry (none if its provenance cannot be read)."""
    try:
        return list(store.read_json(key, "provenance.json").get("warnings", []))
    except (OSError, ValueError):
        return []


def absolute_files(params: Params) -> Params:
    """``params`` with the paths of its file fields made absolute, so a worker started in another
    folder opens the same files (the cache key holds their content, not their paths)."""
    update = {param.name: param.shaped([Path(p).absolute() if p is not None else None for p in param.paths])
              for param in file_params(params) if param.value is not None}
    return params.model_copy(update=update) if update else params


def load_committed(load: Any, key: str, patience_s: float = UPSTREAM_PATIENCE_S) -> dict[str, Result]:
    """Load upstream entry ``key``, which the scheduler saw committed, waiting up to ``patience_s`` for
    it to appear here: a shared filesystem may keep answering "no such file" from its cache for a while
    after another host renamed the entry into place (NFS's lookup cache, see docs/distributed.md)."""
    deadline = time.monotonic() + patience_s
    delay = 0.05
    while True:
        try:
            return load(key)
        except FileNotFoundError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 2.0)


def _earlier_damage(store: Store, exc: BaseException, read: list[str]) -> EntryDamaged | None:
    """The EntryDamaged behind ``exc`` (itself or its cause/context chain) when the damaged entry is
    one of the earlier results ``read`` or an entry one of them links to; else None."""
    seen: set[int] = set()
    while exc is not None and not isinstance(exc, EntryDamaged) and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    if not isinstance(exc, EntryDamaged) or not read:
        return None
    earlier = set(read)
    manifest = getattr(store, "manifest", None)
    for k in read if manifest is not None else ():
        try:
            earlier.update(manifest(k).get("refs", []))
        except (OSError, EntryDamaged):
            pass
    return exc if exc.key in earlier else None


def _earlier(store: Store, load: Any, family: str, key: str, read: list[str]) -> Iterator[dict[str, Result]]:
    """Committed results of ``family`` other than ``key``, most recently used first; notes in ``read``
    the key of each one handed out.

    Each is checked only as every read is: its files' sizes here, each chunk's digest as the node reads
    it (a node reads a few of an earlier result's arrays, while the family's files grow with every
    member). Damage the node meets there makes
    :func:`run_task` move that result aside and run the node again without earlier results."""
    for other in store.family(family):
        if other == key:
            continue
        try:
            store.check(other, full=False)
            result = load(other, touch=False)  # the node may not use it; what it links is touched
        except EntryDamaged as e:
            store.quarantine(e.key, e.what, e.seal)  # type: ignore[attr-defined]
            continue
        except (OSError, ValueError, KeyError):
            continue  # evicted or being evicted by another process: not there
        read.append(other)
        yield result
