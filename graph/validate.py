"""Turn a raw pipeline dict into a validated :class:`~luckystack.graph.spec.Pipeline`, and load pipelines.

:mod:`luckystack.graph.spec` owns the model (the file format, :class:`Pipeline`, overrides, the JSON
Schema); this module uses it: :func:`load_pipeline`, :func:`pipeline_from_dict` and
:func:`with_overrides` are the ways to get a validated pipeline.

Finds every problem before any work starts, one line each: unknown keys, unknown node type, bad
params (unknown name with a suggestion, wrong type, out of range), inputs naming a missing node or
port or an unknown input port, outputs wired to an input port of another kind (``Port.kind``),
unconnected required inputs, cycles, a pipeline with no nodes, and bad sweep entries. A pipeline
whose nodes export no file is valid: its results stay in the cache, readable with ``api.read_result``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from luckystack.graph.dag import find_cycle
from luckystack.graph.node import NodeType, find, registry
from luckystack.graph.spec import (Pipeline, PipelineError, PipelineFile, PipelineNode, apply_overrides,
                                   format_validation_error, parse_sets, read_file, suggest)

_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def load_pipeline(path: Path | str, sets: Mapping[str, Any] | Iterable[str] | None = None) -> Pipeline:
    """Read, override and validate a pipeline file. Raises PipelineError listing every problem."""
    source = str(path)
    raw = read_file(path)
    if sets is not None and not isinstance(sets, Mapping):
        sets = parse_sets(sets)
    sets = dict(sets or {})
    raw2 = apply_overrides(raw, sets, source) if sets else raw
    p = build(raw2, source)
    p.raw, p.overrides = raw2, sets
    return p


def pipeline_from_dict(raw: dict[str, Any], source: str = "<pipeline>") -> Pipeline:
    """Validate an in-memory pipeline description (same rules as a file)."""
    p = build(copy.deepcopy(raw), source)
    p.raw = copy.deepcopy(raw)
    return p


def with_overrides(pipeline: Pipeline, sets: Mapping[str, Any]) -> Pipeline:
    """A copy of ``pipeline`` with ``{"node.param": value}`` overrides applied and validated."""
    raw = apply_overrides(pipeline.raw, dict(sets), pipeline.source)
    p = build(raw, pipeline.source)
    p.raw, p.overrides = raw, {**pipeline.overrides, **dict(sets)}
    return p


def build(raw: dict[str, Any], source: str) -> Pipeline:
    """Validate ``raw`` (a parsed pipeline file) fully; raise PipelineError with all problems."""
    try:
        pf = PipelineFile.model_validate(raw)
    except ValidationError as e:
        raise PipelineError(format_validation_error(e, f"{source}: ", PipelineFile.model_fields.keys()
                                                    | {"$schema"})) from None
    errors: list[str] = []
    types = registry()
    if not pf.nodes:
        raise PipelineError(f"{source}: the pipeline has no nodes; 'nodes' must name at least one")
    nodes: dict[str, PipelineNode] = {}
    for nid, entry in pf.nodes.items():
        where = f"{source}: node {nid!r}"
        if not _ID_RE.match(nid):
            errors.append(f"{where}: node ids may hold only letters, digits, '_' and '-'")
            continue
        nt = find(entry.type)
        if nt is None:
            known = ", ".join(sorted(types)) or "none registered"
            errors.append(f"{where}: unknown node type {entry.type!r}{suggest(entry.type, types)}"
                          f" (known: {known})")
            continue
        try:
            params = nt.params.model_validate(entry.params)
        except ValidationError as e:
            errors.extend(format_validation_error(e, f"{where}: params.", nt.params.model_fields,
                                                  nt.params))
            continue
        inputs: dict[str, tuple[str, str]] = {}
        for port, ref in entry.inputs.items():
            if port not in nt.inputs:
                errors.append(f"{where}: inputs.{port}: {entry.type!r} has no input port {port!r}"
                              f"{suggest(port, nt.inputs)} (ports: {', '.join(nt.inputs) or 'none'})")
                continue
            src, _, src_port = ref.partition(".")
            if src not in pf.nodes:
                errors.append(f"{where}: inputs.{port}: no node {src!r}{suggest(src, pf.nodes)}")
                continue
            src_type = find(pf.nodes[src].type)
            if src_type is None:
                continue  # reported on that node
            if not src_port:
                if len(src_type.outputs) != 1:
                    errors.append(f"{where}: inputs.{port}: node {src!r} has several outputs "
                                  f"({', '.join(src_type.outputs)}); write {src!r}.PORT")
                    continue
                src_port = src_type.outputs[0]
            elif src_port not in src_type.outputs:
                errors.append(f"{where}: inputs.{port}: node {src!r} has no output port {src_port!r}"
                              f"{suggest(src_port, src_type.outputs)}")
                continue
            wrong = _kind_mismatch(nt.inputs[port].kind, src, src_type, src_port)
            if wrong:
                errors.append(f"{where}: input {port!r} {wrong}")
                continue
            inputs[port] = (src, src_port)
        missing = [p for p, spec in nt.inputs.items() if spec.required and p not in entry.inputs]
        for p in missing:
            errors.append(f"{where}: required input {p!r} is not connected")
        nodes[nid] = PipelineNode(nid, nt, params, inputs)
    if not errors:
        cycle = find_cycle(list(nodes), ((src, nid) for nid, n in nodes.items() for src, _ in n.inputs.values()))
        if cycle:
            errors.append(f"{source}: cycle between nodes: {' → '.join(cycle + cycle[:1])}")
    if pf.sweep is not None:
        errors.extend(_check_sweep(pf, source))
    if errors:
        raise PipelineError(errors)
    return Pipeline(name=pf.name, description=pf.description, nodes=nodes, source=source, raw=raw,
                    sweep=pf.sweep)


def check_against_input(pipeline: Pipeline, input_file: Path | None) -> None:
    """Run every node type's ``check_input`` on ``input_file``; PipelineError listing what does not fit.

    Called before any node runs, so a param the input rules out (a region larger than the input)
    fails at once rather than deep inside a node after minutes of work.
    """
    if input_file is None:
        return
    errors = []
    for nid, node in pipeline.nodes.items():
        if node.type.check_input is None:
            continue
        try:
            node.type.check_input(node.params, Path(input_file))
        except ValueError as e:
            errors.append(f"{pipeline.source}: node {nid!r}: {e} (input {Path(input_file).name})")
    if errors:
        raise PipelineError(errors)


def _kind_mismatch(kind: str, src: str, src_type: NodeType, src_port: str) -> str:
    """Why output ``src.src_port`` cannot feed an input port of ``kind``, or '' if it can."""
    given = src_type.output_kinds.get(src_port, "")
    if not kind or given == kind:
        return ""
    makers = sorted(name for name, t in registry().items() if kind in t.output_kinds.values())
    source = " or ".join(f"{_article(m)} {m} node" for m in makers) or "a node declaring it"
    gives = f"{given}" if given else f"output {src_port!r} of no declared kind"
    return f"expects {kind} from {source}, got {src!r} ({src_type.name}), which gives {gives}"


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _check_sweep(pf: PipelineFile, source: str) -> list[str]:
    errors = []
    lengths = set()
    for target, values in pf.sweep.params.items():
        node_id, _, param = target.partition(".")
        if node_id not in pf.nodes or not param:
            errors.append(f"{source}: sweep.params: {target!r} does not name NODE.PARAM of an existing node"
                          f"{suggest(node_id, pf.nodes)}")
        if not values:
            errors.append(f"{source}: sweep.params.{target}: give at least one value")
        lengths.add(len(values))
    if pf.sweep.mode == "zip" and len(lengths) > 1:
        errors.append(f"{source}: sweep: mode 'zip' needs lists of equal length (got {sorted(lengths)})")
    return errors
