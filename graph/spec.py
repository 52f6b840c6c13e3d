"""Pipeline files: the pydantic models of the JSON format, loading, ``--set`` overrides, JSON Schema.

A pipeline file::

    {"name": "planet", "description": "...",
     "nodes": {"read": {"type": "reader", "params": {...}},
               "stack": {"type": "stack", "params": {"percent": [25]},
                         "inputs": {"frames": "read", "shifts": "stabilize.shifts"}}},
     "sweep": {"mode": "product", "params": {"stack.percent": [5, 10, 25]}}}

An input names ``"node"`` (its only output port) or ``"node.port"``. Every problem is reported as one
line naming the file, the node and the parameter path, before any work starts (see :mod:`validate`).
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from luckystack.graph.node import NodeType, Params, registry


class PipelineError(Exception):
    """A bad pipeline file, override or sweep. ``lines`` holds one message per problem."""

    def __init__(self, lines: str | list[str]) -> None:
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        super().__init__("\n".join(self.lines))


class NodeEntry(BaseModel):
    """One node of a pipeline file."""

    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="The node type (see `luckystack schema`).")
    params: dict[str, Any] = Field(default_factory=dict, description="Params; defaults fill the rest.")
    inputs: dict[str, str] = Field(default_factory=dict,
                                   description='Input port → "node" or "node.port".')


class SweepEntry(BaseModel):
    """Run the pipeline once per combination of param values."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["product", "zip"] = Field("product", description="Cartesian product or zip of the lists.")
    params: dict[str, list[Any]] = Field(description='"node.param" → list of values to try.')


class PipelineFile(BaseModel):
    """The top level of a pipeline file."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    schema_ref: str | None = Field(None, alias="$schema", description="Path or URL of the JSON Schema.")
    name: str = Field(min_length=1, description="Pipeline name: part of run records and the cache index.")
    description: str = ""
    nodes: dict[str, NodeEntry] = Field(description="Nodes by id.")
    sweep: SweepEntry | None = None


@dataclass(frozen=True)
class PipelineNode:
    """A validated node: its type, validated params, and inputs as port → (node id, port)."""

    id: str
    type: NodeType
    params: Params
    inputs: dict[str, tuple[str, str]]


@dataclass
class Pipeline:
    """A validated pipeline, ready to hash and run. Build with :func:`load_pipeline`."""

    name: str
    description: str
    nodes: dict[str, PipelineNode]
    source: str
    raw: dict[str, Any] = field(repr=False)
    sweep: SweepEntry | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def with_overrides(self, sets: Mapping[str, Any]) -> "Pipeline":
        """A copy with ``{"node.param": value}`` overrides applied and validated."""
        from luckystack.graph.validate import build
        raw = apply_overrides(self.raw, dict(sets), self.source)
        p = build(raw, self.source)
        p.raw, p.overrides = raw, {**self.overrides, **dict(sets)}
        return p


def suggest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def read_file(path: Path | str) -> dict[str, Any]:
    """Parse a pipeline file's JSON; PipelineError with line and column on bad JSON."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise PipelineError(f"{path}: cannot read pipeline file ({e.strerror or e})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise PipelineError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(raw, dict):
        raise PipelineError(f"{path}: a pipeline file must be a JSON object with 'name' and 'nodes'")
    return raw


def parse_value(text: str) -> Any:
    """A --set value: JSON if it parses, else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_sets(items: Iterable[str], source: str = "--set") -> dict[str, Any]:
    """``["stack.percent=25"]`` → ``{"stack.percent": 25}``."""
    out = {}
    for item in items:
        target, sep, value = item.partition("=")
        if not sep or "." not in target:
            raise PipelineError(f"{source} {item!r}: expected NODE.PARAM=VALUE, e.g. stack.percent=25")
        out[target.strip()] = parse_value(value)
    return out


def apply_overrides(raw: dict[str, Any], sets: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A deep copy of ``raw`` with ``node.param[.sub...]`` set; the result is validated by ``build``."""
    original = raw
    raw = copy.deepcopy(raw)
    nodes = raw.get("nodes")
    for target, value in sets.items():
        node_id, _, path = target.partition(".")
        if not isinstance(nodes, dict) or node_id not in nodes:
            raise PipelineError(f"{source}: override {target!r}: no node {node_id!r}"
                                f"{suggest(node_id, nodes or {})}")
        if not path:
            raise PipelineError(f"{source}: override {target!r}: name a param, e.g. {node_id}.PARAM")
        entry = nodes[node_id]
        if not isinstance(entry, dict):
            continue  # reported by build
        here = entry.setdefault("params", {})
        parts = path.split(".")
        for part in parts[:-1]:
            nxt = here.get(part) if isinstance(here, dict) else None
            if not isinstance(nxt, dict):
                nxt = {}
                here[part] = nxt
            here = nxt
        here[parts[-1]] = value
    for node_id in {t.partition(".")[0] for t in sets}:
        _drop_conflicting(nodes[node_id], original["nodes"][node_id], {t.partition(".")[2] for t in sets
                                                                       if t.partition(".")[0] == node_id})
    return raw


def _drop_conflicting(entry: Any, file_entry: Any, overridden: set[str]) -> None:
    """An override wins over what the pipeline file set on the same node: when the node's params break
    a rule between params (``stack.frames`` set where the file gives ``stack.percent``), the file's
    param whose removal alone satisfies the rules goes back to its default."""
    from luckystack.graph.node import registry

    if not isinstance(entry, dict) or not isinstance(entry.get("params"), dict):
        return
    node_type = registry().get(str(entry.get("type")))
    if node_type is None or _param_rule_broken(node_type.params, entry["params"]) is not True:
        return
    file_params = file_entry.get("params") if isinstance(file_entry, dict) else None
    for name in (file_params or {}):
        if name in overridden or name not in entry["params"]:
            continue
        trial = {k: v for k, v in entry["params"].items() if k != name}
        if _param_rule_broken(node_type.params, trial) is None:
            del entry["params"][name]
            return


def _param_rule_broken(model: type, params: dict[str, Any]) -> bool | None:
    """None: the params validate; True: only a rule between params fails; False: a param itself is bad."""
    try:
        model(**params)
    except ValidationError as e:
        return True if all(not err["loc"] for err in e.errors()) else False
    except (TypeError, ValueError):
        return False
    return None


def load_pipeline(path: Path | str, sets: Mapping[str, Any] | Iterable[str] | None = None) -> Pipeline:
    """Read, override and validate a pipeline file. Raises PipelineError listing every problem."""
    from luckystack.graph.validate import build
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
    from luckystack.graph.validate import build
    p = build(copy.deepcopy(raw), source)
    p.raw = copy.deepcopy(raw)
    return p


def format_validation_error(err: ValidationError, prefix: str, fields: Iterable[str] = ()) -> list[str]:
    """One line per pydantic error: '<prefix><loc>: <message>' with suggestions for unknown names."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"])
        if e["type"] == "extra_forbidden":
            name = str(e["loc"][-1])
            kind = "parameter" if prefix.endswith("params.") else "key"
            lines.append(f"{prefix}{loc}: unknown {kind} {name!r}{suggest(name, fields)}")
        else:
            got = e.get("input")
            shown = json.dumps(got, default=str) if not isinstance(got, dict) else "{...}"
            if len(shown) > 40:
                shown = shown[:37] + "..."
            msg = e["msg"].removeprefix("Value error, ")
            if not e["loc"]:  # a rule between params: the message names them; no value to show
                lines.append(f"{prefix.removesuffix('.')}: {msg}")
            else:
                lines.append(f"{prefix}{loc}: {msg} (got {shown})")
    return lines


def json_schema(types: Iterable[str] | None = None) -> dict[str, Any]:
    """JSON Schema (2020-12) of pipeline files, with the params of node ``types`` (default: all registered).

    ``nodes`` values are a ``oneOf`` discriminated by the ``type`` constant, so editors validate and
    complete each node's params and input ports.
    """
    defs: dict[str, Any] = {}
    variants = []
    for name in sorted(registry() if types is None else types):
        nt = registry()[name]
        prefix = "".join(w.capitalize() for w in name.replace("_", "-").split("-"))
        sch = nt.params.model_json_schema(ref_template="#/$defs/" + prefix + "_{model}")
        for dname, d in sch.pop("$defs", {}).items():
            defs[f"{prefix}_{dname}"] = d
        sch["title"] = f"{name} params"
        defs[f"{prefix}Params"] = sch
        ports = {p: {"type": "string", "description": (port.doc or "upstream node or node.port")
                     + ("" if port.required else " (optional)")} for p, port in nt.inputs.items()}
        required_ports = sorted(p for p, port in nt.inputs.items() if port.required)
        inputs_schema: dict[str, Any] = {"type": "object", "properties": ports, "additionalProperties": False}
        if required_ports:
            inputs_schema["required"] = required_ports
        node_schema: dict[str, Any] = {
            "type": "object",
            "description": (nt.doc.splitlines()[0] if nt.doc else name) + f" (version {nt.version})",
            "properties": {"type": {"const": name}, "params": {"$ref": f"#/$defs/{prefix}Params"},
                           "inputs": inputs_schema},
            "required": ["type"] + (["inputs"] if required_ports else []),
            "additionalProperties": False,
        }
        variants.append(node_schema)
    top = PipelineFile.model_json_schema()
    top_defs = top.pop("$defs", {})
    sweep = top_defs.get("SweepEntry", {})
    top["properties"]["nodes"] = {
        "type": "object", "description": "Nodes by id.",
        "propertyNames": {"pattern": "^[A-Za-z0-9_-]+$"},
        "additionalProperties": {"oneOf": variants} if variants else {"type": "object"},
    }
    top["properties"]["sweep"] = {"anyOf": [sweep, {"type": "null"}], "default": None}
    top["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    top["title"] = "luckystack pipeline"
    top["$defs"] = dict(sorted(defs.items()))
    return top
