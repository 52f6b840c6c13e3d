"""Input files watched during a run: a file that changes while nodes read it fails the run.

Keys hold the fingerprint an input file had when the run was planned. If the file changes while a
node reads it (a program still writing it, a copy in progress), that node's result belongs to
neither content, so the scheduler checks every watched file after each node it computed, before the
result is committed, and :class:`InputChanged` fails the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from luckystack.graph.fileparams import file_params
from luckystack.graph.fingerprint import unchanged
from luckystack.graph.node import NodeError


class InputChanged(NodeError):
    """An input file changed while the run read it."""


@dataclass(frozen=True)
class Watched:
    path: Path
    fingerprint: str
    what: str  # "the input file", or "file <name> of node <id>"


def watched_files(pipeline: Any, statuses: dict[str, Any], input_file: Path | None) -> list[Watched]:
    """The input file and every file param whose fingerprint is part of a key of this run."""
    out: dict[tuple[Path, str], Watched] = {}
    for nid, st in statuses.items():
        files = st.preimage.get("files", {})
        if input_file is not None and "input" in files:
            out.setdefault((Path(input_file), files["input"]),
                           Watched(Path(input_file), files["input"], "the input file"))
        for param in file_params(pipeline.nodes[nid].params):
            fps = files.get(f"params.{param.name}")
            fps = fps if isinstance(fps, list) else [fps]
            for p, fp in zip(param.paths, fps):
                if p is not None and fp is not None:
                    what = f"file params.{param.name} of node {nid!r}"
                    out.setdefault((Path(p), fp), Watched(Path(p), fp, what))
    return list(out.values())


def check_unchanged(files: list[Watched], cache_dir: Path | None) -> None:
    """Raise InputChanged naming the first watched file whose content is not what was planned."""
    for w in files:
        if not unchanged(w.path, w.fingerprint, cache_dir):
            raise InputChanged(f"{w.what} changed while it was read: {w.path} (nothing was stored from it; "
                               "run again once the file is complete)")
