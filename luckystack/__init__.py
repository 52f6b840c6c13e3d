"""luckystack: a lucky-imaging stacker for planetary, lunar and solar video, run as a cached dataflow graph."""

__version__ = "0.1.0"
