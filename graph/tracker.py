"""loky's resource tracker process, started without importing joblib's package.

loky starts a resource tracker beside its workers (a process that only listens on a pipe and unlinks
what a crashed process leaves behind). It starts it as ``python -c "from <module of main> import main;
main(fd)"``, and with loky vendored in joblib that module is ``joblib.externals.loky.backend.
resource_tracker``, whose import runs ``joblib/__init__.py`` first: numpy and most of joblib, 0.25 s
of CPU at the start of a run and ~22 MB of anonymous memory held for the whole run by a process that
needs none of it. :func:`use_light_tracker` has loky start :func:`main` instead, which runs the same
tracker with joblib's parent packages stood in for by empty ones (their folders, none of their code).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

_TRACKER = "joblib.externals.loky.backend.resource_tracker"
_PARENTS = ("joblib", "joblib.externals", "joblib.externals.loky")


def main(fd: int, verbose: int = 0) -> None:
    """The resource tracker's process (loky's ``main``), its module imported without running the
    ``__init__`` of joblib and of joblib's copy of loky."""
    spec = importlib.util.find_spec("joblib")  # finds the package without importing it
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations)))
        for name in _PARENTS:
            if name not in sys.modules:
                stand_in = types.ModuleType(name)
                stand_in.__path__ = [str(folder.joinpath(*name.split(".")[1:]))]
                sys.modules[name] = stand_in
    module = importlib.import_module(_TRACKER)
    module.main(fd, verbose)


def use_light_tracker() -> None:
    """Have loky start its resource tracker as :func:`main` (call before loky starts it; a tracker
    already running is left alone)."""
    tracker = sys.modules.get(_TRACKER) or importlib.import_module(_TRACKER)
    if callable(getattr(tracker, "main", None)):
        tracker.main = main
