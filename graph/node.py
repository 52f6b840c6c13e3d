"""The contract between the engine and the nodes.

A node type is a pure function from validated params and upstream results to new results. The engine
(`graph/`) computes cache keys, stores results, schedules work and shows progress; a node knows nothing
of any of that. It sees only a :class:`Context`:

    @node_type(
        "combine",
        params=CombineParams,
        inputs={"items": Port(), "weights": Port(required=False)},
        outputs=("combined",),
        version="1",
    )
    def combine(ctx: Context) -> Result:
        items = ctx.inputs["items"]            # an upstream Result
        ...
        return Result(arrays={"total": total}, meta={"count": count})

Rules every node follows:

* Pure: the same params, inputs and files give the same output bits, whatever ``ctx.jobs`` is. Split
  parallel work into chunks whose boundaries do not depend on ``ctx.jobs`` and reduce the chunk
  results in chunk order (``ctx.map`` returns them in order).
* Small results stay small: one value per item is a 1-D array, one per item and region is (items, regions).
  Large arrays that a later node streams are written chunk by chunk through ``ctx.create_array``.
* Bump ``version`` whenever the algorithm's output changes; the cache key includes it.
* A node type may declare params ``incremental``: then ``ctx.earlier()`` offers results it made before
  from the same inputs and other params, which it may build on (e.g. a sum over more items on the sum
  over fewer). The output bits must be the same whether it does or computes from scratch.
* Bad data or unusable params raise :class:`NodeError` with one clear sentence for the user.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, TypeVar, get_args, get_origin

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

T = TypeVar("T")
R = TypeVar("R")


class NodeError(Exception):
    """A problem with the data or params that the user can fix; shown as one line, no traceback."""


class InputFileMarker:
    """Marks a params field holding a file path whose *content* is part of the node's cache key."""


# A params field of this type names a file (a calibration file, a reference...) that the engine
# fingerprints by content, so editing the file reruns the node and renaming it does not.
InputFile = Annotated[Path, InputFileMarker()]


class Params(BaseModel):
    """Base class of every node's params: unknown fields are errors, models are immutable, NaN and
    infinity are refused, and true/false is never taken for a number (nor a number for true/false),
    while numbers written as text ("25") still convert."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_guessing(cls, value: Any, info: ValidationInfo) -> Any:
        """What pydantic's lax mode would guess wrong: true taken for 1, 1 for true, "" for the current
        folder; and what it would refuse though meant: a number written as text for a Literal of numbers."""
        field = cls.model_fields.get(info.field_name or "")
        if field is None:
            return value
        kind = field.annotation
        takes_bool, takes_number = _mentions(kind, bool), _mentions(kind, int, float)
        if takes_number and not takes_bool and _holds(value, bool):
            raise PydanticCustomError("bool_not_number", "true/false is not a number")
        if takes_bool and not takes_number and _holds(value, int, float, exclude=bool):
            raise PydanticCustomError("number_not_bool", "a number is not true/false")
        if isinstance(value, str) and not value.strip() and _mentions(kind, Path):
            raise PydanticCustomError("empty_path", "an empty path names no file")
        if isinstance(value, str) and takes_number and not _mentions(kind, str):
            try:
                number = float(value)
            except ValueError:
                return value
            return int(number) if number.is_integer() and "." not in value else number
        return value


def _mentions(annotation: Any, *types: type) -> bool:
    """Whether ``annotation`` (unions, lists, tuples, Annotated, Literal included) admits one of ``types``."""
    if annotation in types:
        return True
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return any(type(a) in types for a in args)
    if origin is Annotated:
        return _mentions(args[0], *types)
    return any(_mentions(a, *types) for a in args if a is not Ellipsis)


def _holds(value: Any, *types: type, exclude: type | None = None) -> bool:
    """Whether ``value`` or any item of a list/tuple in it is an instance of ``types`` (not ``exclude``)."""
    if isinstance(value, (list, tuple)):
        return any(_holds(v, *types, exclude=exclude) for v in value)
    return isinstance(value, types) and not (exclude is not None and isinstance(value, exclude))


@dataclass(frozen=True)
class Port:
    """An input port. ``required=False`` ports may be left unconnected (``ctx.inputs`` lacks them).

    ``kind`` names what the port accepts (a word the node types agree on, e.g. ``"shifts"``); the
    engine checks at load time that the connected output was declared with that kind. Empty: anything.
    """

    required: bool = True
    doc: str = ""
    kind: str = ""


@dataclass
class Result:
    """What a node returns for one output port: named arrays plus JSON-serialisable metadata.

    When a downstream node receives a Result from the cache, ``arrays`` holds read-only zarr arrays;
    index them (``r.arrays["shift"][:]``) or use :meth:`array`, which returns numpy. Large arrays
    written with ``ctx.create_array`` arrive the same way and can be read chunk by chunk.
    """

    arrays: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def array(self, name: str) -> np.ndarray:
        """The whole array ``name`` as numpy (load only small arrays this way)."""
        return np.asarray(self.arrays[name][...])


class Progress(Protocol):
    def update(self, n: int = 1) -> None: ...


class Context(Protocol):
    """What the engine hands a node function."""

    params: Any  # the node's validated params model instance
    inputs: Mapping[str, Result]  # connected input ports → upstream results
    input_file: Path | None  # the run's input file, for nodes with reads_input=True
    jobs: int  # worker processes the node may use (>= 1)
    node_id: str

    def map(self, fn: Callable[[T], R], items: Iterable[T], *, total: int | None = None,
            label: str = "", parallel: bool = True, sizes: Sequence[int] | None = None) -> Iterator[R]:
        """Apply a picklable module-level ``fn`` to ``items`` in parallel; yield results in order.

        Progress is reported per item, or by ``sizes`` (what each item counts for, e.g. the indices it covers; items
        that are ranges count their length). Make items chunks of many small pieces of work. ``parallel=False``
        runs them all in this thread: for work too small to repay starting a worker process (~0.3 s).
        """
        ...

    def progress(self, total: int, label: str = "") -> Progress:
        """A progress counter for work done in this process."""
        ...

    def create_array(self, port: str, name: str, shape: tuple[int, ...], dtype: Any,
                     chunks: tuple[int, ...]) -> Any:
        """A writable, chunked array stored with this node's result; put it in ``Result.arrays``."""
        ...

    def log(self, message: str) -> None:
        """A warning or note for the user (shown on the terminal and kept in the run record)."""
        ...

    def earlier(self) -> Iterator[Mapping[str, Result]]:
        """Results (by port) this node type made before from the same inputs, files and params except
        its ``incremental`` ones, most recently used first; empty when there are none (or no cache).

        A shortcut, never a source of truth: the node must give the same bits without them. Reading one
        may fail (another process may evict it meanwhile); treat errors as "not there".
        """
        ...


NodeFunc = Callable[[Context], "Result | Mapping[str, Result]"]
ExportFunc = Callable[[Mapping[str, Result], Any, Path, str], list[Path]]


@dataclass(frozen=True)
class NodeType:
    """A registered node type. See the module docstring."""

    name: str
    params: type[Params]
    inputs: Mapping[str, Port]
    outputs: tuple[str, ...]
    version: str
    func: NodeFunc
    doc: str = ""
    # What each output port carries (see Port.kind); ports missing here carry an undeclared kind.
    output_kinds: Mapping[str, str] = field(default_factory=dict)
    reads_input: bool = False
    # Writes user-facing files from the node's results into an output folder; runs on every run,
    # cached or not. Signature: export(results_by_port, params, out_dir, stem) -> written paths,
    # where stem names the input (e.g. "night1" for night1.dat) for use in file names.
    export: ExportFunc | None = None
    # Params whose change the node can absorb by building on an earlier result (see Context.earlier).
    incremental: tuple[str, ...] = ()
    # Checks params against the run's input file before any node runs (headers only, cheap): raises
    # ValueError with one sentence naming the param and its range, e.g. a box larger than the input.
    check_input: Callable[[Any, Path], None] | None = None
    # Former names that pipeline files may still use for this type (see :func:`find`).
    aliases: tuple[str, ...] = ()
    # The name the cache key holds; differs from ``name`` only for a renamed type whose results stay valid.
    key_name: str = ""

    @property
    def cache_name(self) -> str:
        """The type's name in cache keys: ``key_name`` if set, else ``name``."""
        return self.key_name or self.name

    def run(self, ctx: Context) -> dict[str, Result]:
        """Call the node function and normalise its return value to ``{port: Result}``."""
        out = self.func(ctx)
        if isinstance(out, Result):
            if len(self.outputs) != 1:
                raise TypeError(f"node type {self.name!r} has ports {self.outputs}; return a dict")
            return {self.outputs[0]: out}
        missing = set(self.outputs) - set(out)
        if missing:
            raise TypeError(f"node type {self.name!r} did not return ports {sorted(missing)}")
        return dict(out)


_REGISTRY: dict[str, NodeType] = {}
_ALIASES: dict[str, str] = {}  # former name -> registered name


def node_type(name: str, *, params: type[Params], inputs: Mapping[str, Port] | None = None,
              outputs: tuple[str, ...] | Mapping[str, str] = ("out",), version: str,
              reads_input: bool = False, export: ExportFunc | None = None, incremental: tuple[str, ...] = (),
              check_input: Callable[[Any, Path], None] | None = None, aliases: tuple[str, ...] = (),
              key_name: str = "") -> Callable[[NodeFunc], NodeFunc]:
    """Register the decorated function as node type ``name``.

    ``outputs`` lists the output ports, or maps each to the kind it carries (``{"shifts": "shifts"}``)
    so that wiring it to an input port of another kind is a pipeline error. A renamed type lists its
    former names in ``aliases`` (pipeline files using them still load) and may keep its former name in
    cache keys with ``key_name``, so that results computed before the rename stay cached.
    """

    def register(func: NodeFunc) -> NodeFunc:
        if name in _REGISTRY and _REGISTRY[name].func is not func:
            raise ValueError(f"node type {name!r} is registered twice")
        if _ALIASES.get(name, name) != name:
            raise ValueError(f"node type {name!r} is already a former name of node type {_ALIASES[name]!r}")
        for alias in aliases:
            taken = find(alias)
            if taken is not None and taken.func is not func:
                raise ValueError(f"node type {name!r}: alias {alias!r} already names node type {taken.name!r}")
        unknown = set(incremental) - set(params.model_fields)
        if unknown:
            raise ValueError(f"node type {name!r}: incremental names unknown params {sorted(unknown)}")
        _REGISTRY[name] = NodeType(
            name=name, params=params, inputs=dict(inputs or {}), outputs=tuple(outputs),
            output_kinds=dict(outputs) if isinstance(outputs, Mapping) else {}, version=version, func=func,
            doc=(func.__doc__ or "").strip(), reads_input=reads_input,
            export=export, incremental=tuple(incremental), check_input=check_input,
            aliases=tuple(aliases), key_name=key_name,
        )
        _ALIASES.update(dict.fromkeys(aliases, name))
        return func

    return register


def registry() -> Mapping[str, NodeType]:
    """All registered node types by name (importing a node package registers its node types)."""
    return _REGISTRY


def find(name: str) -> NodeType | None:
    """The node type registered as ``name`` or formerly called ``name`` (one of its ``aliases``); None if neither."""
    return _REGISTRY.get(name) or _REGISTRY.get(_ALIASES.get(name, ""))
