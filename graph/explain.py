"""Cache keys for a pipeline on one input, and why each node is cached or must run.

``plan`` hashes every node in topological order (no data is read: keys are recipes, see
:mod:`hashing`). ``explain`` compares each key's preimage with the one recorded for the same
(pipeline name, slot, node id) in ``<cache>/index/`` by the last run, and names root causes:
first run, param X changed a→b, upstream changed, input file changed, code version changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from luckystack.graph import aliases
from luckystack.graph.dag import topological_order
from luckystack.graph.fileparams import file_params
from luckystack.graph.fingerprint import fingerprint
from luckystack.graph.hashing import family_of, flatten, key_of, preimage
from luckystack.graph.spec import Pipeline, PipelineError
from luckystack.graph.store import CacheStore


@dataclass
class NodeStatus:
    """A node's key and whether it will run, with direct reasons and root causes."""

    id: str
    type: str
    key: str
    preimage: dict[str, Any] = field(repr=False)
    cached: bool = False
    reasons: list[str] = field(default_factory=list)
    root_causes: list[str] = field(default_factory=list)
    earlier: int = 0  # earlier results an incremental node type will be offered to build on
    same_as: dict[str, Any] = field(default_factory=dict)  # params set to what "auto" chose for this key
    chose: dict[str, str] = field(default_factory=dict)  # cached: what its automatic params chose (and why)

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.id, "type": self.type, "key": self.key,
                "status": "cached" if self.cached else "run",
                "reasons": self.reasons, "root_causes": self.root_causes, "earlier": self.earlier,
                "same_as_auto": self.same_as, "auto_chose": self.chose}


def topo_order(pipeline: Pipeline) -> list[str]:
    return topological_order(list(pipeline.nodes),
                             ((src, nid) for nid, n in pipeline.nodes.items() for src, _ in n.inputs.values()))


def plan(pipeline: Pipeline, input_file: Path | None, store: CacheStore) -> dict[str, NodeStatus]:
    """Keys of every node in topological order. ``cached`` is filled in only for a node planned to the key
    an alias points at (see :mod:`aliases`), whose entry was asked for here; :func:`explain` asks for
    the others."""
    cache_dir = store.root
    out: dict[str, NodeStatus] = {}
    input_fp = None
    for nid in topo_order(pipeline):
        node = pipeline.nodes[nid]
        params = node.params.model_dump(mode="json")
        files: dict[str, str] = {}
        for param in file_params(node.params):
            fps = []
            for p in param.paths:
                if p is None:
                    fps.append(None)
                    continue
                try:
                    fps.append(fingerprint(p, cache_dir))
                except OSError as e:
                    raise PipelineError(f"{pipeline.source}: node {nid!r}: params.{param.name}: cannot read "
                                        f"{p} ({e.strerror or e})") from None
            files[f"params.{param.name}"] = fps if param.many else fps[0]
            params[param.name] = "<file content>" if param.value is not None else None  # path excluded from key
        if node.type.reads_input:
            if input_file is None:
                raise PipelineError(f"{pipeline.source}: node {nid!r} reads the input file; "
                                    "give one with --input FILE")
            if input_fp is None:
                try:
                    input_fp = fingerprint(input_file, cache_dir)
                except OSError as e:
                    raise PipelineError(f"input file {input_file}: {e.strerror or e}") from None
            files["input"] = input_fp
        inputs = {port: {"key": out[src].key, "port": sport} for port, (src, sport) in node.inputs.items()}
        pre = preimage(node.type.cache_name, node.type.version, params, inputs, files)
        key, same_as = key_of(pre), {}
        alias = aliases.lookup(cache_dir, key)
        aliased = alias is not None and store.has(alias[0])
        if aliased:
            key, same_as = alias
        out[nid] = NodeStatus(nid, node.type.name, key, pre, cached=aliased, same_as=same_as)
    return out


# -- the index of last keys ------------------------------------------------------------------------

def slot_name(input_file: Path | None, variant: str | None) -> str:
    return (Path(input_file).name if input_file else "-") + (f"|{variant}" if variant else "")


def _index_path(cache_dir: Path, pipeline_name: str) -> Path:
    h = hashlib.sha256(pipeline_name.encode()).hexdigest()[:16]
    return Path(cache_dir) / "index" / f"{h}.json"


def read_index(cache_dir: Path, pipeline_name: str) -> dict[str, dict]:
    try:
        return json.loads(_index_path(cache_dir, pipeline_name).read_text()).get("slots", {})
    except (OSError, ValueError):
        return {}


def write_index(cache_dir: Path, pipeline_name: str, slot: str, statuses: dict[str, NodeStatus]) -> None:
    """Remember these keys and preimages as the latest for (pipeline, slot) and as the default."""
    path = _index_path(cache_dir, pipeline_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    slots = read_index(cache_dir, pipeline_name)
    entry = {nid: {"key": s.key, "preimage": s.preimage} for nid, s in statuses.items()}
    slots.setdefault(slot, {}).update(entry)
    slots.setdefault("*", {}).update(entry)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"pipeline": pipeline_name, "slots": slots}))
    os.replace(tmp, path)


# -- reasons --------------------------------------------------------------------------------------

def _short(v: Any) -> str:
    s = json.dumps(v)
    return s if len(s) <= 30 else s[:27] + "..."


def diff_reasons(pre: dict, old: dict, upstream_ids: dict[str, str]) -> list[str]:
    """Direct reasons a node's preimage differs from ``old``."""
    reasons = []
    if pre["type"] != old.get("type"):
        reasons.append(f"node type changed {old.get('type')}→{pre['type']}")
    elif pre["version"] != old.get("version"):
        reasons.append(f"code version changed {old.get('version')}→{pre['version']}")
    new_p, old_p = flatten(pre["params"]), flatten(old.get("params", {}))
    for name in sorted(new_p.keys() | old_p.keys()):
        if name not in old_p:
            reasons.append(f"param {name} added ({_short(new_p[name])})")
        elif name not in new_p:
            reasons.append(f"param {name} removed")
        elif new_p[name] != old_p[name]:
            reasons.append(f"param {name} changed {_short(old_p[name])}→{_short(new_p[name])}")
    old_f = old.get("files", {})
    for name, fp in pre["files"].items():
        if old_f.get(name) != fp:
            reasons.append("input file changed" if name == "input" else f"file {name} changed")
    old_in = old.get("inputs", {})
    for port, ref in pre["inputs"].items():
        if old_in.get(port) != ref:
            reasons.append(f"upstream {upstream_ids.get(port, port)!r} changed")
    return reasons


def explain(pipeline: Pipeline, input_file: Path | None, store: CacheStore,
            variant: str | None = None) -> dict[str, NodeStatus]:
    """Statuses of every node: cached, or why it will run (with root causes), computing nothing."""
    statuses = plan(pipeline, input_file, store)
    slots = read_index(store.root, pipeline.name)
    previous = {**slots.get("*", {}), **slots.get(slot_name(input_file, variant), {})}
    for nid, st in statuses.items():
        st.cached = st.cached or store.has(st.key)
        if st.cached:
            if aliases.has_resolved(st.type):
                try:
                    st.chose = aliases.chosen(st.type, st.preimage.get("params") or {}, store.load(st.key))
                except (KeyError, OSError, ValueError):
                    st.chose = {}
            continue
        node = pipeline.nodes[nid]
        ups = {port: src for port, (src, _) in node.inputs.items()}
        old = previous.get(nid)
        if old is None:
            st.reasons = ["first run"]
        elif old["key"] == st.key:
            st.reasons = ["result not in cache (evicted, or the last run stopped before it finished)"]
        else:
            st.reasons = diff_reasons(st.preimage, old["preimage"], ups) or ["key changed"]
        roots: list[str] = []
        for r in st.reasons:
            if r.startswith("upstream "):
                src = r.split("'")[1]
                roots += [x for x in statuses[src].root_causes if x not in roots]
            elif f"{nid}: {r}" not in roots:
                roots.append(f"{nid}: {r}")
        st.root_causes = roots
        if node.type.incremental:
            st.earlier = len(store.family(family_of(st.preimage, node.type.incremental), prune=False))
    return statuses


def render(statuses: dict[str, NodeStatus]) -> str:
    """A table: node, type, status, reasons (← root causes for upstream changes)."""
    rows = []
    for st in statuses.values():
        if st.cached:
            why = ("the automatic run's result: " + ", ".join(f"{k} {_short(v)}" for k, v in st.same_as.items())
                   + " is what auto chose") if st.same_as else ""
            if st.chose:
                why = "; ".join([why] * bool(why) + [f"auto chose {k} {v}" for k, v in st.chose.items()])
        else:
            why = "; ".join(st.reasons)
            upstream_only = all(r.startswith("upstream ") for r in st.reasons)
            if upstream_only and st.root_causes:
                why += " ← " + "; ".join(st.root_causes)
            if st.earlier:
                why += f" (incremental: {st.earlier} earlier result{'s' if st.earlier > 1 else ''} to build on)"
        rows.append((st.id, st.type, "cached" if st.cached else "will run", why))
    w = [max([len(r[i]) for r in rows] + [4]) for i in range(3)]
    head = f"{'node'.ljust(w[0])}  {'type'.ljust(w[1])}  {'status'.ljust(w[2])}  why"
    return "\n".join([head] + [f"{a.ljust(w[0])}  {b.ljust(w[1])}  {c.ljust(w[2])}  {d}".rstrip()
                               for a, b, c, d in rows])
