"""The library versions a result's provenance records: the engine's own dependencies and the
distributions the application names (its own, and those its nodes compute with)."""

from __future__ import annotations

import functools
import importlib.metadata
import sys

ENGINE_LIBRARIES = ("numpy", "zarr", "joblib", "pydantic")
_libraries: list[str] = []


def record_versions_of(*distributions: str) -> None:
    """Have every result's provenance name these installed distributions' versions as well."""
    for name in distributions:
        if name not in _libraries:
            _libraries.append(name)


def versions() -> dict[str, str]:
    """Python and library versions for a result's provenance (distributions not installed are left out)."""
    return dict(_versions((*_libraries, *(lib for lib in ENGINE_LIBRARIES if lib not in _libraries))))


@functools.cache
def _versions(libraries: tuple[str, ...]) -> dict[str, str]:
    # Looked up once per process: each metadata lookup scans the installed distributions (~1 ms).
    out = {"python": sys.version.split()[0]}
    for lib in libraries:
        try:
            out[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out
