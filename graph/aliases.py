"""Cache aliases: a param set to the value its automatic default chose finds the automatic run's result.

A node type may declare, per param whose default is "choose automatically" (``None``), how to read the
value it chose from its results (:func:`declare_resolved`). When such a node computes with the param
left automatic, the engine also records an *alias*: the key the node would have with the param set to
the chosen value, pointing at the key it has. ``tile.size=88`` after a run where the automatic size was 88
then plans to the very same key (:func:`lookup`), so the node and everything downstream are cached, and
``explain`` says so and why. Aliases are small files under ``<cache>/aliases/``; one whose target was
evicted is ignored. A declaration must be exact: the node run with the chosen value must compute what
the automatic run computed.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from luckystack.graph.files import write_file
from luckystack.graph.hashing import key_of

_RESOLVED: dict[str, dict[str, Callable[[Mapping[str, Any]], Any]]] = {}
_WHY: dict[str, dict[str, Callable[[Mapping[str, Any]], str]]] = {}
AUTOMATIC = (None, "auto")  # the param values that mean "choose automatically"


def declare_resolved(type_name: str, param: str, read: Callable[[Mapping[str, Any]], Any],
                     why: Callable[[Mapping[str, Any]], str] | None = None) -> None:
    """Node type ``type_name`` chooses ``param`` itself when it is None (or "auto"); ``read(results)``
    returns the value it chose, as the param's JSON form (what ``--set`` would give), or None if it
    cannot tell; ``why(results)``, if given, a short text of how it chose (``explain`` shows both).
    Aliases are written only for params left None: a declaration for one whose automatic value is "auto"
    serves ``explain`` alone."""
    _RESOLVED.setdefault(type_name, {})[param] = read
    if why is not None:
        _WHY.setdefault(type_name, {})[param] = why


def chosen(type_name: str, params: Mapping[str, Any], results: Mapping[str, Any]) -> dict[str, str]:
    """For the params of a ``type_name`` node left automatic: what it chose (and why), as text, from
    its ``results``; params it cannot tell are left out."""
    out = {}
    for name, read in _RESOLVED.get(type_name, {}).items():
        if name not in params or params[name] not in AUTOMATIC:
            continue
        try:
            value = read(results)
            why = _WHY.get(type_name, {}).get(name)
            text = why(results) if why is not None and value is not None else ""
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        if value is not None:
            out[name] = json.dumps(value) + (f" ({text})" if text else "")
    return out


def has_resolved(type_name: str) -> bool:
    """Whether the node type declares any param it chooses itself."""
    return bool(_RESOLVED.get(type_name))


def _path(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / "aliases" / f"{key}.json"


def record(cache_dir: Path, type_name: str, preimage: Mapping[str, Any], key: str,
           results: Mapping[str, Any]) -> list[str]:
    """After a node of type ``type_name`` computed ``results`` under ``key``: write an alias for every
    combination of its automatic params set to the values they resolved to; return the alias keys written.
    Each is written atomically under a temporary name of its own, so node threads of one process may
    write the same alias at once. Raises WriteFailed."""
    readers = _RESOLVED.get(type_name, {})
    params = dict(preimage.get("params") or {})
    chosen = {}
    for name, read in readers.items():
        if name in params and params[name] is None:
            try:
                value = read(results)
            except (KeyError, TypeError, ValueError, AttributeError):
                value = None
            if value is not None:
                chosen[name] = value
    written = []
    for n in range(1, len(chosen) + 1):
        for names in itertools.combinations(sorted(chosen), n):
            alias = key_of({**preimage, "params": {**params, **{k: chosen[k] for k in names}}})
            write_file(_path(cache_dir, alias), json.dumps({"key": key, "resolved": {k: chosen[k] for k in names}}))
            written.append(alias)
    return written


def lookup(cache_dir: Path | None, key: str) -> tuple[str, dict[str, Any]] | None:
    """The key ``key`` is an alias of and the params that were resolved, or None."""
    if cache_dir is None:
        return None
    try:
        found = json.loads(_path(cache_dir, key).read_text())
        return str(found["key"]), dict(found.get("resolved") or {})
    except (OSError, ValueError, KeyError, TypeError):
        return None
