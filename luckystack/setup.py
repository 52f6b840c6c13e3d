"""The application's set-up step, which the command line and :func:`luckystack.api.run` call.

Importing luckystack's modules changes nothing in the process; this does: glibc's allocator thresholds
and, once the node types are imported, OpenCV's thread count (see :mod:`luckystack.graph.process`), and
it names the libraries whose versions every result's provenance records.
The engine repeats the step wherever nodes run (worker processes, cluster tasks), so code that calls
:func:`luckystack.graph.api.run` directly is set up as well.
"""

from __future__ import annotations

from luckystack.graph import process
from luckystack.graph.versions import record_versions_of

# Installed distributions whose versions every result's provenance records.
LIBRARIES = ("luckystack", "numpy", "scipy", "opencv-python-headless", "zarr", "joblib", "pydantic")


def configure_process() -> None:
    """Set this process up for running luckystack's nodes (idempotent)."""
    record_versions_of(*LIBRARIES)
    process.configure_process()
