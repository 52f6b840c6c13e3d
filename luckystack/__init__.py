"""luckystack: a lucky-imaging stacker for planetary, lunar and solar video, run as a cached dataflow graph."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("luckystack")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0.1.0"
