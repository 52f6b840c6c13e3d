"""Sweeps: one pipeline expanded into variants, one per combination of param values.

Each variant is the full pipeline with overrides. Variants run one after another against one cache,
so nodes whose keys do not depend on the swept params are computed once and then found cached
(dedup by key). Labels such as ``percent-25_ap_size-48`` name each variant's output folder: letters,
digits and ``._+-`` only, so a shell, tab completion and other programs take them as they are.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from luckystack.graph.spec import Pipeline, PipelineError, SweepEntry, parse_value
from luckystack.graph.validate import with_overrides


@dataclass
class Variant:
    label: str
    overrides: dict[str, Any]
    pipeline: Pipeline


def parse_sweep_args(items: Iterable[str]) -> dict[str, list[Any]]:
    """``["scale.factor=5,10,25"]`` → ``{"scale.factor": [5, 10, 25]}`` (a JSON list also works)."""
    out = {}
    for item in items:
        target, sep, values = item.partition("=")
        if not sep or "." not in target or not values:
            raise PipelineError(f"--sweep {item!r}: expected NODE.PARAM=V1,V2,..., e.g. scale.factor=5,10,25")
        parsed = parse_value(values)
        if not isinstance(parsed, list):
            parsed = [parse_value(v) for v in values.split(",")]
        out[target.strip()] = parsed
    return out


def _fmt(v: Any) -> str:
    """A value as a file-name part: ``25``, ``10+25`` for a list, ``null``; other characters become ``-``."""
    s = v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", s.replace(",", "+")).strip("-") or "-"


def labels(targets: list[str], combos: list[tuple]) -> list[str]:
    """``percent-25_ap_size-48``: each swept param (with its node where two nodes share the name) and its
    value, joined by ``_``."""
    params = [t.split(".", 1)[1] for t in targets]
    names = [p if params.count(p) == 1 else t for p, t in zip(params, targets)]
    return ["_".join(f"{n}-{_fmt(v)}" for n, v in zip(names, combo)) for combo in combos]


def variants(pipeline: Pipeline, sweep: Mapping[str, list[Any]] | None = None,
             mode: str | None = None) -> list[Variant]:
    """The pipeline's variants: its ``sweep`` section, merged with/overridden by ``sweep``.

    A pipeline without any sweep is one variant with label ``""``.
    """
    params: dict[str, list[Any]] = dict(pipeline.sweep.params) if pipeline.sweep else {}
    params.update(sweep or {})
    mode = mode or (pipeline.sweep.mode if pipeline.sweep else "product")
    SweepEntry(mode=mode, params=params)  # type check of the mode
    if not params:
        return [Variant("", {}, pipeline)]
    targets = list(params)
    if mode == "zip":
        if len({len(v) for v in params.values()}) != 1:
            raise PipelineError(f"{pipeline.source}: sweep: mode 'zip' needs lists of equal length")
        combos = list(zip(*params.values()))
    else:
        combos = list(itertools.product(*params.values()))
    out = []
    for label, combo in zip(labels(targets, combos), combos):
        sets = dict(zip(targets, combo))
        try:
            p = with_overrides(pipeline, sets)
        except PipelineError as e:
            raise PipelineError([f"{line} (sweep variant {label})" for line in e.lines]) from None
        out.append(Variant(label, sets, p))
    return out
