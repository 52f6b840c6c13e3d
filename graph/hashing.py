"""Cache keys: canonical JSON of a node's *recipe*, hashed with sha256.

A key never depends on the data itself, only on what produced it (the "lsk-node/1" preimage):

    {"schema": "lsk-node/1", "type": ..., "version": ..., "params": {...},
     "inputs": {port: {"key": upstream key, "port": upstream port}}, "files": {name: fingerprint}}

File paths are not in the preimage (their content fingerprints are), nor is the node id or the pipeline
name, so renaming an input file or a node, or sharing a step between pipelines, reuses the cache.
The preimage is stored beside each result as ``key.json`` so ``explain`` can say what changed.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import PurePath
from typing import Any

SCHEMA = "lsk-node/1"


class UnhashableError(TypeError):
    """A value that has no canonical JSON form; it must never silently become a constant."""


def _normalise(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnhashableError(f"{where}: {value!r} cannot be part of a cache key")
        return float(value)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise UnhashableError(f"{where}: dict key {k!r} is not a string")
            out[k] = _normalise(v, f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_normalise(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "shape", None) == ():
        return _normalise(value.item(), where)  # numpy scalar
    raise UnhashableError(f"{where}: value of type {type(value).__name__} cannot be part of a cache key")


def canonical_json(value: Any, where: str = "value") -> str:
    """Deterministic JSON: sorted keys, no whitespace, floats by repr, NaN/inf rejected."""
    return json.dumps(_normalise(value, where), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False)


def preimage(type_name: str, version: str, params: dict[str, Any],
             inputs: dict[str, dict[str, str]], files: dict[str, str]) -> dict[str, Any]:
    """The recipe of one node result, in the "lsk-node/1" layout (normalised, JSON-ready)."""
    return _normalise({"schema": SCHEMA, "type": type_name, "version": str(version), "params": params,
                       "inputs": inputs, "files": files}, type_name)


def key_of(pre: dict[str, Any]) -> str:
    """The 64-hex-digit sha256 of the canonical preimage (the algorithm is fixed by its schema)."""
    return hashlib.sha256(canonical_json(pre).encode()).hexdigest()


def family_of(pre: dict[str, Any], incremental: tuple[str, ...]) -> str:
    """Key of the preimage without the ``incremental`` params: results sharing it differ only in those."""
    params = {k: v for k, v in pre["params"].items() if k not in incremental}
    return key_of({**pre, "params": params, "incremental": sorted(incremental)})


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (lists stay leaves, empty dicts vanish); used to name changed params."""
    if isinstance(value, dict) and (value or prefix):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else k))
        return out
    return {prefix: value}
