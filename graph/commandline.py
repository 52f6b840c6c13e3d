"""Which command a command line names, found without importing the engine (so that a command can
start what it needs, such as worker processes, before its own imports)."""

from __future__ import annotations

from collections.abc import Sequence

VALUED = ("--cache", "--jobs")  # options before the command that take a value


def chosen_command(argv: Sequence[str]) -> str | None:
    """The command named in ``argv``: the first word that is not an option or an option's value."""
    words = iter(argv)
    for word in words:
        if word in VALUED:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None
