"""Known start-up notices of goalax's physics dependencies, silenced where they arise.

- ``mujoco.mjx`` prints "Failed to import warp: ..." and "Failed to import mujoco_warp: ..." on
  stdout when it is imported without the optional ``warp`` package, which goalax never uses; on
  stdout they would also corrupt ``goalax eval --json``. Importing this module imports
  ``mujoco.mjx`` once with its stdout captured and prints again anything else it printed, so it
  must be imported before brax (which imports ``mujoco.mjx``).
- brax warns on every model load that its pipelines are no longer maintained; goalax uses them
  deliberately. ``load_mjcf``/``load_model`` build brax systems with exactly that warning
  filtered, in a scoped ``warnings.catch_warnings``.

Nothing else is hidden and no process-wide filter or stream is left changed.
"""

from __future__ import annotations

import contextlib
import io
import sys
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import brax
    import mujoco

MJX_NOTICES = ("Failed to import warp:", "Failed to import mujoco_warp:")
BRAX_NOTICE = r"Brax System, piplines and environments are not actively being maintained"


def import_mjx() -> None:
    """Import ``mujoco.mjx`` with its two warp notices dropped (once: later calls do nothing)."""
    if "mujoco.mjx" in sys.modules:
        return
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            import mujoco.mjx  # noqa: F401
    finally:
        sys.stdout.write(without_mjx_notices(captured.getvalue()))


def without_mjx_notices(text: str) -> str:
    """``text`` without its lines that start with one of ``MJX_NOTICES``."""
    lines = text.splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith(MJX_NOTICES))


def load_mjcf(xml: str) -> brax.System:
    """``brax.io.mjcf.loads(xml)`` without brax's "not actively being maintained" warning."""
    from brax.io import mjcf

    with _brax_notice_filtered():
        return mjcf.loads(xml)


def load_model(model: mujoco.MjModel) -> brax.System:
    """``brax.io.mjcf.load_model(model)`` without brax's "not actively being maintained"
    warning."""
    from brax.io import mjcf

    with _brax_notice_filtered():
        return mjcf.load_model(model)


@contextlib.contextmanager
def _brax_notice_filtered():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=BRAX_NOTICE, category=UserWarning)
        yield


import_mjx()
