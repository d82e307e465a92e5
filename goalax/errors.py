"""The user-error type every part of goalax raises for input it cannot use.

It lives alone so that envs, agents and viz report bad input without importing the run
configuration (``goalax.config`` re-exports it for the CLI and the training code).
"""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A configuration or input that cannot run; the message says what to change."""
