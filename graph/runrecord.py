"""Run records: what one run did, per node — the basis of summaries, reports and rerun tests."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from luckystack.graph.files import write_file


@dataclass
class NodeRecord:
    """One node in one run: ``status`` is "ran" or "cached"; ``reasons`` say why it ran."""

    id: str
    type: str
    key: str
    status: str = "pending"
    reasons: list[str] = field(default_factory=list)
    seconds: float = 0.0
    exports: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class RunRecord:
    """One pipeline run on one input (one sweep variant)."""

    pipeline: str
    input: str | None
    variant: str | None
    overrides: dict[str, Any]
    out_dir: str
    cache: str
    jobs: int
    started: float
    seconds: float = 0.0
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    error: str | None = None

    def ran(self) -> list[str]:
        """Ids of nodes that were computed (not taken from the cache), in run order."""
        return [n.id for n in self.nodes.values() if n.status == "ran"]

    def cached(self) -> list[str]:
        return [n.id for n in self.nodes.values() if n.status == "cached"]

    def exports(self) -> list[str]:
        return [p for n in self.nodes.values() for p in n.exports]

    def warnings(self) -> list[str]:
        return [f"{n.id}: {w}" for n in self.nodes.values() for w in n.warnings]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["nodes"] = [asdict(n) for n in self.nodes.values()]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunRecord":
        d = dict(d)
        nodes = {n["id"]: NodeRecord(**n) for n in d.pop("nodes")}
        return cls(**d, nodes=nodes)

    def save(self, path: Path) -> None:
        write_file(path, json.dumps(self.to_dict(), indent=1, default=str))

    @classmethod
    def load(cls, path: Path) -> "RunRecord":
        return cls.from_dict(json.loads(Path(path).read_text()))


def executions(records: list[RunRecord]) -> dict[str, int]:
    """How many times each node id was computed across several runs (e.g. a sweep)."""
    counts: dict[str, int] = {}
    for r in records:
        for n in r.nodes.values():
            counts.setdefault(n.id, 0)
            if n.status == "ran":
                counts[n.id] += 1
    return counts


def summary_table(record: RunRecord) -> str:
    """A plain-text table: node, type, cached/ran, seconds."""
    rows = [("node", "type", "status", "time")]
    rows += [(n.id, n.type, n.status, f"{n.seconds:.2f} s") for n in record.nodes.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
