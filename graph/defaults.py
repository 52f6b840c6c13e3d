"""What a run uses unless told: its cache folder and how many processes compute a node.

A module of its own, importing nothing of the engine, so a command can know them before it imports
the engine (the command line starts a first run's workers ahead of its imports).
"""

from __future__ import annotations

import os
from pathlib import Path


def default_cache() -> Path:
    """``$LUCKYSTACK_CACHE`` or ``./cache``."""
    return Path(os.environ.get("LUCKYSTACK_CACHE") or "cache")


def default_jobs() -> int:
    """Processes per node: one per core."""
    return os.cpu_count() or 1
