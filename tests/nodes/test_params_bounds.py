"""Every number a node type takes has a lower and an upper bound, and every list of them a length bound,
so no value a pipeline gives reaches a node unchecked (new params included)."""

from __future__ import annotations

import types
import typing

from pydantic.fields import FieldInfo

import luckystack.nodes  # noqa: F401  (registers the node types)
from luckystack.graph.node import registry


def _flat(meta) -> list:
    out = []
    for m in meta:
        out.extend(_flat(m.metadata) if isinstance(m, FieldInfo) else [m])
    return out


def _unbounded(annotation, meta, where: str) -> list[str]:
    """Where a number lacks a bound or a list of numbers a length bound."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _unbounded(args[0], meta + _flat(args[1:]), where)
    if origin in (typing.Union, types.UnionType):
        return [p for a in args for p in _unbounded(a, meta, where)]
    if origin is list:
        numbers = _unbounded(args[0], [], where + "[]")
        has_max = any(getattr(m, "max_length", None) is not None for m in meta)
        return numbers + ([] if has_max or not _numeric(args[0]) else [f"{where}: list without a max_length"])
    if origin is tuple:
        return [p for k, a in enumerate(args) for p in _unbounded(a, [], f"{where}[{k}]")]
    if annotation in (int, float):
        low = any(getattr(m, n, None) is not None for m in meta for n in ("ge", "gt"))
        high = any(getattr(m, n, None) is not None for m in meta for n in ("le", "lt"))
        return [] if low and high else [f"{where}: {'no lower bound' if not low else 'no upper bound'}"]
    return []


def _numeric(annotation) -> bool:
    if annotation in (int, float):
        return True
    return any(_numeric(a) for a in typing.get_args(annotation) if a is not Ellipsis)


def test_every_number_of_every_node_type_is_bounded():
    problems = []
    for name, nt in registry().items():
        if name.startswith(("t-", "bench-")):
            continue  # the engine's own test and bench node types
        for field, info in nt.params.model_fields.items():
            problems += _unbounded(info.annotation, list(info.metadata), f"{name}.{field}")
    assert problems == []


def test_the_check_finds_an_unbounded_number():
    assert _unbounded(int, [], "x") == ["x: no lower bound"]
    assert _unbounded(list[typing.Annotated[float, FieldInfo(ge=0, le=1)]], [], "y") == [
        "y: list without a max_length"]
