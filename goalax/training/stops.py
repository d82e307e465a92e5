"""Ctrl-C and SIGTERM as a request that training honours at a safe point.

Python's default SIGINT handler raises KeyboardInterrupt wherever the interpreter happens to be;
one that lands in a garbage-collection callback (JAX registers one) is printed as "Exception
ignored" and dropped, and the run goes on. ``goalax train`` therefore installs ``StopRequests``
first thing, before the heavy imports: a signal only records its name, training checks it before
compiling and between chunks, and the CLI reports a stop that came before training began. A second
signal raises KeyboardInterrupt, for a user who does not want to wait for the safe point.

Stdlib only: the CLI imports it before anything heavy.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    """A signal handler that records the name of the first stop signal in ``signal``."""

    def __init__(self) -> None:
        self.signal: str | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name

    def exit_code(self) -> int:
        """The shell's code for a process ended by the recorded signal (130, 143)."""
        return 128 + int(signal.Signals[self.signal]) if self.signal else 0


@contextlib.contextmanager
def routed(enabled: bool = True) -> Iterator[StopRequests]:
    """Route SIGINT and SIGTERM to a new ``StopRequests`` for the body, then restore the
    previous handlers (signal handlers belong to the main thread: elsewhere, or with
    ``enabled=False``, the requests are never set)."""
    requests = StopRequests()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield requests
        return
    previous = {s: signal.signal(s, requests) for s in SIGNALS}
    try:
        yield requests
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def installed() -> StopRequests | None:
    """The ``StopRequests`` that handles SIGINT now, if any (the CLI's)."""
    handler = signal.getsignal(signal.SIGINT)
    return handler if isinstance(handler, StopRequests) else None
