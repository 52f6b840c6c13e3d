"""A node's file params: the fields typed ``InputFile`` (or an optional or a list of it), whose files'
content, not their paths, is part of the node's cache key.

One walk over them for everything that needs their paths: planning (fingerprints), watching the files
while a run reads them, and making the paths absolute for a task that runs elsewhere.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from luckystack.graph.node import InputFileMarker, Params


def _has_marker(annotation: Any) -> bool:
    if typing.get_origin(annotation) is typing.Annotated:
        if any(isinstance(m, InputFileMarker) for m in annotation.__metadata__):
            return True
    return any(_has_marker(a) for a in typing.get_args(annotation))


@lru_cache(maxsize=None)
def file_fields(model: type[Params]) -> tuple[str, ...]:
    """Names of the params fields typed ``InputFile`` (or Optional/list of it)."""
    out = []
    for name, f in model.model_fields.items():
        if any(isinstance(m, InputFileMarker) for m in f.metadata) or _has_marker(f.annotation):
            out.append(name)
    return tuple(out)


@dataclass(frozen=True)
class FileParam:
    """One file param of a node: its name and its value as the params hold it (a path, None, or a
    list of paths and Nones)."""

    name: str
    value: Any

    @property
    def many(self) -> bool:
        """Whether the param holds a list of paths."""
        return isinstance(self.value, (list, tuple))

    @property
    def paths(self) -> list[Any]:
        """Its paths as a list (None where none is set)."""
        return list(self.value) if self.many else [self.value]

    def shaped(self, items: Sequence[Any]) -> Any:
        """``items``, one per path, in the shape of the value: the list's type, or the one item."""
        return type(self.value)(items) if self.many else items[0]


def file_params(params: Params) -> Iterator[FileParam]:
    """The file params of ``params``, in field order."""
    for name in file_fields(type(params)):
        yield FileParam(name, getattr(params, name))
