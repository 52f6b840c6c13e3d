"""luckystack: a lucky-imaging stacker for planetary, lunar and solar video, run as a cached dataflow graph."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # __version__ is looked up when first asked for: importlib.metadata costs ~10 MB and some ms, which a
    # process that imports only a small part of the package (loky's resource tracker) does without.
    if name != "__version__":
        raise AttributeError(f"module 'luckystack' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("luckystack")
    except PackageNotFoundError:  # run from a source tree that was never installed
        value = "0.1.0"
    globals()["__version__"] = value
    return value
