"""The application's own commands, one module each, every one exporting ``COMMAND``
(a :class:`luckystack.graph.cli.Command`); :func:`luckystack.cli.app_commands` lists them, with
``COMMAND`` of :mod:`luckystack.compare` and :mod:`luckystack.bench`.

A command module stays light: what the command needs only when it runs is imported inside its run
function, so ``luckystack --help`` and the other commands start without it.
"""

from __future__ import annotations

import sys

from luckystack.graph.progress import Reporter, auto_reporter


def progress_reporter() -> Reporter:
    """Progress on stderr: bars on a terminal, plain lines otherwise."""
    return auto_reporter(sys.stderr)
