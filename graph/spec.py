"""Pipeline files: the pydantic models of the JSON format, loading, ``--set`` overrides, JSON Schema.

A pipeline file::

    {"name": "example", "description": "...",
     "nodes": {"read": {"type": "reader", "params": {...}},
               "scale": {"type": "scale", "params": {"factor": [25]},
                         "inputs": {"values": "read", "offsets": "measure.offsets"}}},
     "sweep": {"mode": "product", "params": {"scale.factor": [5, 10, 25]}}}

An input names ``"node"`` (its only output port) or ``"node.port"``. Every problem is reported as one
line naming the file, the node and the parameter path, before any work starts (see :mod:`validate`).
"""

from __future__ import annotations

import copy
import difflib
import json
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo

from luckystack.graph.node import NodeType, Params, find, registry


class PipelineError(Exception):
    """A bad pipeline file, override or sweep. ``lines`` holds one message per problem."""

    def __init__(self, lines: str | list[str]) -> None:
        # user-chosen names (keys, values) may hold line breaks: one problem stays one line
        self.lines = [_one_line(s) for s in ([lines] if isinstance(lines, str) else lines)]
        super().__init__("\n".join(self.lines))


def _one_line(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class NodeEntry(BaseModel):
    """One node of a pipeline file."""

    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="The node type (one of those this schema lists).")
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
    """A validated pipeline, ready to hash and run. Build with :func:`~luckystack.graph.validate.load_pipeline`."""

    name: str
    description: str
    nodes: dict[str, PipelineNode]
    source: str
    raw: dict[str, Any] = field(repr=False)
    sweep: SweepEntry | None = None
    overrides: dict[str, Any] = field(default_factory=dict)



def suggest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def read_file(path: Path | str) -> dict[str, Any]:
    """Parse a pipeline file's JSON; PipelineError with line and column on bad JSON."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a byte-order mark, as some editors write, is fine
    except OSError as e:
        raise PipelineError(f"{path}: cannot read pipeline file ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise PipelineError(f"{path}: not a text file in UTF-8 (byte {e.start} is {e.object[e.start]:#04x})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise PipelineError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise PipelineError(f"{path}: the JSON is nested too deeply to be a pipeline") from None
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
    """``["scale.factor=25"]`` → ``{"scale.factor": 25}``."""
    out = {}
    for item in items:
        target, sep, value = item.partition("=")
        if not sep or "." not in target:
            raise PipelineError(f"{source} {item!r}: expected NODE.PARAM=VALUE, e.g. scale.factor=25")
        out[target.strip()] = parse_value(value)
    return out


def apply_overrides(raw: dict[str, Any], sets: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A deep copy of ``raw`` with ``node.param[.sub...]`` set; the result is validated by ``build``."""
    original = raw
    raw = copy.deepcopy(raw)
    nodes = raw.get("nodes")
    if not isinstance(nodes, dict):
        return raw  # build reports the malformed 'nodes'
    for target, value in sets.items():
        node_id, _, path = target.partition(".")
        if node_id not in nodes:
            raise PipelineError(f"{source}: override {target!r}: no node {node_id!r}"
                                f"{suggest(node_id, nodes)}")
        if not path:
            raise PipelineError(f"{source}: override {target!r}: name a param, e.g. {node_id}.PARAM")
        entry = nodes[node_id]
        if not isinstance(entry, dict) or not isinstance(entry.setdefault("params", {}), dict):
            continue  # reported by build
        here = entry["params"]
        parts = path.split(".")
        if not all(parts):
            raise PipelineError(f"{source}: override {target!r}: empty name between dots")
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
    a rule between params (``scale.count`` set where the file gives ``scale.fraction``), the file's
    param whose removal alone satisfies the rules goes back to its default."""
    if not isinstance(entry, dict) or not isinstance(entry.get("params"), dict):
        return
    node_type = find(str(entry.get("type")))
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


_PROBLEMS = {  # pydantic error type → what the user reads
    "missing": "is required", "int_type": "must be a whole number", "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number", "int_parsing_size": "is far too large",
    "float_type": "must be a number", "float_parsing": "must be a number",
    "finite_number": "must be a finite number (not NaN or infinity)",
    "greater_than": "is too small", "greater_than_equal": "is too small",
    "less_than": "is too large", "less_than_equal": "is too large",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "literal_error": "is not one of the allowed values", "enum": "is not one of the allowed values",
    "list_type": "must be a list", "tuple_type": "must be a list", "dict_type": "must be an object",
    "too_short": "has too few items", "too_long": "has too many items",
    "string_type": "must be a text", "string_too_short": "must not be empty",
    "path_type": "must be a file path", "model_type": "must be an object", "model_attributes_type":
    "must be an object", "bool_not_number": "is true/false, not a number",
    "number_not_bool": "is a number, not true/false", "empty_path": "must name a file",
}


def format_validation_error(err: ValidationError, prefix: str, fields: Iterable[str] = (),
                            model: type[BaseModel] | None = None) -> list[str]:
    """One line per faulty field: '<prefix><field>: <problem> (got <value>); allowed: <range>'.

    Pydantic's wording and type names are translated; with ``model`` the allowed values are described
    from the field's type and bounds (e.g. "a whole number from 16 to 4096, a list of them, or null").
    Unknown names get a suggestion. Several errors of one field (from a union) give its first line only.
    """
    lines, seen = [], set()
    for e in err.errors():
        parts = [x for x in e["loc"] if isinstance(x, int) or not _is_type_tag(x, model is not None)]
        kind = e["type"]
        if kind == "missing" and len(parts) > 1 and isinstance(parts[-1], int):
            parts, kind = parts[:-1], "too_short"  # a tuple given too few items
        name = str(parts[0]) if parts else ""
        loc = ".".join(_key(x) for x in parts[:1]) + "".join(
            f"[{x}]" if isinstance(x, int) else f".{_key(x)}" for x in parts[1:])
        if kind == "extra_forbidden":
            extra = str(e["loc"][-1])
            kind = "parameter" if prefix.endswith("params.") else "key"
            lines.append(f"{prefix}{loc}: unknown {kind} {extra!r}{suggest(extra, fields)}")
            continue
        if not parts:  # a whole-model check (model_validator): its own sentence
            msg = str(e["msg"]).removeprefix("Value error, ")
            lines.append(f"{prefix.removesuffix('params.').rstrip(': ')}: {msg}")
            continue
        if name in seen:
            continue
        seen.add(name)
        problem = _PROBLEMS.get(kind) or str(e["msg"]).removeprefix("Value error, ")
        got = e.get("input")
        text = f"{prefix}{loc}: {problem}"
        if kind != "missing":
            shown = json.dumps(got, default=str) if not isinstance(got, dict) else "{...}"
            text += f" (got {shown[:37] + '...' if len(shown) > 40 else shown})"
        info = model.model_fields.get(name) if model is not None else None
        if info is not None:
            index = [x for x in parts[1:] if isinstance(x, int)]
            inner = item_type(info.annotation, index) if index else None
            allowed = describe(inner) if inner is not None else describe(info.annotation, info.metadata)
            text += f"; allowed: {allowed}"
        lines.append(text)
    return lines


def _key(part: Any) -> str:
    """A location part as written: plain names bare, anything else quoted (a key may be any text)."""
    text = str(part)
    return text if text and all(c.isalnum() or c in "_-$" for c in text) else json.dumps(text)


def _is_type_tag(part: Any, plain_words: bool) -> bool:
    """Pydantic puts union members' type names in an error's location (``list[int]``, ``float``);
    ``plain_words``: also single words like ``float`` (where no user-chosen key can follow the field)."""
    if not isinstance(part, str):
        return False
    return "[" in part or part in _TAGS or (plain_words and part in _PLAIN_TAGS)


_TAGS = {"lax-or-strict", "json-or-python", "function-after", "function-before", "function-wrap"}
_PLAIN_TAGS = {"int", "float", "str", "bool", "list", "tuple", "dict", "none", "nullable", "union"}


def describe(annotation: Any, metadata: Iterable[Any] = (), plural: bool = False) -> str:
    """The values a type annotation with pydantic/annotated-types bounds allows, in words."""
    meta = _flat(metadata)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return describe(args[0], [*meta, *_flat(args[1:])], plural)
    if origin in (typing.Union, types.UnionType):
        options = [describe(a, meta, plural) for a in args if a is not type(None)]
        if type(None) in args:
            options.append("null")
        return ", ".join(options[:-1]) + (" or " if len(options) > 1 else "") + options[-1]
    if origin is typing.Literal:
        return ("values among " if plural else "one of ") + ", ".join(json.dumps(a) for a in args)
    if origin in (list, tuple):
        items = [a for a in args if a is not Ellipsis] or [Any]
        if origin is tuple and Ellipsis not in args:
            article = "lists" if plural else "a list"
            if len({describe(a) for a in items}) == 1:
                return f"{article} of {len(items)} {describe(items[0], (), plural=True)}"
            return f"{article} of {len(items)} items ({'; '.join(describe(a) for a in items)})"
        lo = next((m.min_length for m in meta if getattr(m, "min_length", None)), None)
        hi = next((m.max_length for m in meta if getattr(m, "max_length", None) is not None), None)
        count = (f"{lo} to {hi}" if lo and hi else f"at least {lo}" if lo else f"at most {hi}" if hi
                 else "")
        return f"a list of {describe(items[0], (), plural=True)}" + (f" ({count} of them)" if count else "")
    if annotation is bool:
        return "true or false"
    if annotation in (int, float):
        noun = ("whole numbers" if plural else "a whole number") if annotation is int else \
            ("numbers" if plural else "a number")
        rng = _bounds(meta, "ge", "le")
        return f"{noun} {rng}".strip()
    if annotation is str:
        return "texts" if plural else "a text"
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "file paths" if plural else "a file path"
    if annotation is type(None):
        return "null"
    return "values" if plural else "a value"


def _flat(metadata: Iterable[Any]) -> list[Any]:
    """Constraint objects, with those inside a pydantic ``Field(...)`` used in ``Annotated`` unpacked."""
    out = []
    for m in metadata:
        out.extend(_flat(m.metadata) if isinstance(m, FieldInfo) else [m])
    return out


def item_type(annotation: Any, path: Iterable[Any]) -> Any:
    """The type of the item at ``path`` (list indices) inside ``annotation``, or None if unknown."""
    for index in path:
        while True:
            origin, args = typing.get_origin(annotation), typing.get_args(annotation)
            if origin is typing.Annotated:
                annotation = args[0]
            elif origin in (typing.Union, types.UnionType):
                seqs = [a for a in args if typing.get_origin(_bare(a)) in (list, tuple)]
                if len(seqs) != 1:
                    return None
                annotation = seqs[0]
            else:
                break
        if origin is list:
            annotation = args[0]
        elif origin is tuple:
            items = [a for a in args if a is not Ellipsis]
            annotation = items[0] if Ellipsis in args else items[index] if 0 <= index < len(items) else None
            if annotation is None:
                return None
        else:
            return None
    return annotation


def _bare(annotation: Any) -> Any:
    return typing.get_args(annotation)[0] if typing.get_origin(annotation) is typing.Annotated else annotation


def _bounds(meta: list[Any], low: str, high: str) -> str:
    """'from 16 to 4096', 'above 0 up to 1', 'of at least 1'... from Ge/Gt/Le/Lt."""
    def find(*names: str) -> tuple[str, Any] | None:
        for m in meta:
            for n in names:
                v = getattr(m, n, None)
                if v is not None:
                    return n, v
        return None
    lo = find(low, "gt") if low == "ge" else find(low)
    hi = find(high, "lt") if high == "le" else find(high)
    fmt = lambda v: f"{v:g}" if isinstance(v, float) else str(v)  # noqa: E731
    if lo and hi:
        a = f"from {fmt(lo[1])}" if lo[0] != "gt" else f"above {fmt(lo[1])}"
        b = f"to {fmt(hi[1])}" if hi[0] != "lt" else f"and below {fmt(hi[1])}"
        if lo[0] == "gt" and hi[0] != "lt":
            b = f"up to {fmt(hi[1])}"
        return f"{a} {b}"
    if lo:
        return f"of at least {fmt(lo[1])}" if lo[0] != "gt" else f"above {fmt(lo[1])}"
    if hi:
        return f"of at most {fmt(hi[1])}" if hi[0] != "lt" else f"below {fmt(hi[1])}"
    return ""


def json_schema(types: Iterable[str] | None = None, title: str = "pipeline") -> dict[str, Any]:
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
            "properties": {"type": {"enum": [name, *nt.aliases]} if nt.aliases else {"const": name},
                           "params": {"$ref": f"#/$defs/{prefix}Params"}, "inputs": inputs_schema},
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
    top["title"] = title
    top["$defs"] = dict(sorted(defs.items()))
    return top
