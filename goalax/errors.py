"""The error types every part of goalax raises: the user's (input it cannot use) and its own.

It lives alone so that envs, agents and viz report bad input without importing the run
configuration (``goalax.config`` re-exports it for the CLI and the training code).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["ConfigError", "GoalaxBug", "NoSpaceLeft", "closest"]


def closest(name: str, options: Iterable[str]) -> str:
    """The up to three ``options`` nearest to a mistyped ``name`` (all of them when none is
    near), comma-separated: the one "did you mean" of every unknown-name message."""
    options = sorted(options)
    return ", ".join(difflib.get_close_matches(name, options, n=3) or options)


class ConfigError(ValueError):
    """A configuration or input that cannot run; the message says what to change."""


class GoalaxBug(RuntimeError):
    """A failure in goalax's own code, not in the user's input or files.

    Raised where goalax could otherwise blame intact files (a checkpoint that was read, then
    mishandled); the CLI says so in one line and shows the traceback with ``GOALAX_DEBUG=1``.
    """


class NoSpaceLeft(RuntimeError):
    """The device holding a run directory filled up while goalax wrote it; the message says what
    was being written, the newest intact checkpoint and how to go on (the CLI exits 1: not bad
    input, and nothing the user typed needs to change)."""
