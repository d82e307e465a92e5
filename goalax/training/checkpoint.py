"""Orbax checkpoints of the whole training state (params, optimisers, buffer, envs, keys, counters).

Orbax writes each step into a temporary folder and renames it when complete, so an interrupted
save never damages the previous checkpoint; ``max_to_keep`` keeps the latest K. A checkpoint that
is damaged afterwards (a bad disk, a truncated copy) is skipped in favour of the newest one that
still reads, with one warning line (``restore_run``).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from goalax.errors import ConfigError
from goalax.training import distributed

#: Leaf value of a restore target that orbax skips: the leaf is neither read nor materialised.
SKIP = ocp.PLACEHOLDER

UNREADABLE_SUFFIX = ".unreadable"
_DRAIN_S = 2.0  # longest wait for the reads a failed restore left in flight


class UnreadableCheckpoints(Exception):
    """Every checkpoint of a run failed to restore; ``failures`` is ``[(step, error type)]``."""

    def __init__(self, failures: list[tuple[int, str]]):
        super().__init__(", ".join(f"{step} ({kind})" for step, kind in failures))
        self.failures = failures


def manager(run_dir: str, max_to_keep: int = 3, create: bool = True) -> ocp.CheckpointManager:
    """Checkpoints of ``run_dir``; ``create=False`` for read-only use (nothing is written).

    Saves are synchronous: ``save`` waits for each one anyway, and with orbax's asynchronous
    saving that wait is counted against the next save, which then logs absl's "Waiting for
    previous save to complete took ... seconds" although saves never overlap.
    """
    path = os.path.abspath(os.path.join(run_dir, "checkpoints"))
    if not create and not os.path.isdir(path):
        raise FileNotFoundError(f"no checkpoint directory in {run_dir}")
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=create, enable_async_checkpointing=False
    )
    return ocp.CheckpointManager(path, options=options)


def _is_empty(leaf: Any) -> bool:
    """A leaf with no elements (e.g. MJX's ``act`` for a model without actuator states)."""
    return getattr(leaf, "size", 1) == 0


def _without_empty(tree: Any) -> Any:
    """``tree`` with every zero-size leaf replaced by ``None``: orbax refuses to save arrays
    with no elements, and they hold no data to restore."""
    return jax.tree.map(lambda x: None if _is_empty(x) else x, tree)


def _with_empty(like: Any, restored: Any) -> Any:
    """``restored`` (from a ``_without_empty`` target) with ``like``'s zero-size leaves back."""
    leaves, treedef = jax.tree.flatten(like)
    got = jax.tree.flatten(restored, is_leaf=lambda x: x is None)[0]
    pairs = zip(leaves, got, strict=True)
    full = [np.zeros(x.shape, x.dtype) if _is_empty(x) else r for x, r in pairs]
    return jax.tree.unflatten(treedef, full)


def save(mngr: ocp.CheckpointManager, step: int, state: Any) -> None:
    """Save ``state`` under ``step`` (env steps); durable when this returns."""
    mngr.save(step, args=ocp.args.StandardSave(_without_empty(state)), force=True)
    mngr.wait_until_finished()


def skip_all(like: Any) -> Any:
    """``like`` with every leaf replaced by ``SKIP``; put back the leaves a restore needs."""
    return jax.tree.map(lambda _: SKIP, like)


def restore_latest_intact(
    mngr: ocp.CheckpointManager, like: Any
) -> tuple[int, Any, list[tuple[int, str]]]:
    """The newest checkpoint that restores into the structure, shapes and dtypes of ``like``.

    Returns ``(step, state, skipped)``: ``skipped`` lists the newer steps that failed, newest
    first, with the type name of their error. Leaves of ``like`` that are ``SKIP`` come back as
    ``SKIP`` without being read. Raises FileNotFoundError when there is no checkpoint and
    UnreadableCheckpoints when none restores.
    """
    steps = sorted(mngr.all_steps(), reverse=True)
    if not steps:
        raise FileNotFoundError(f"no checkpoint in {mngr.directory}")
    target = jax.tree.map(
        lambda x: x if x is SKIP else ocp.utils.to_shape_dtype_struct(x), _without_empty(like)
    )
    if any(leaf is SKIP for leaf in jax.tree.leaves(target)):
        # StandardRestore refuses placeholders; PyTreeRestore skips them (leaves come back as
        # numpy arrays)
        restore_args = ocp.checkpoint_utils.construct_restore_args(target)
        args = ocp.args.PyTreeRestore(item=target, restore_args=restore_args)
    else:
        args = ocp.args.StandardRestore(target)
    skipped: list[tuple[int, str]] = []
    for step in steps:
        try:
            return step, _with_empty(like, mngr.restore(step, args=args)), skipped
        except Exception as err:  # orbax raises many types for damaged files
            skipped.append((step, type(err).__name__))
    raise UnreadableCheckpoints(skipped)


def restore_run(run_dir: str, like: Any, set_aside: bool = False) -> tuple[int, Any]:
    """``(step, state)`` of the newest intact checkpoint of ``run_dir``, read-only.

    Newer checkpoints that cannot be read are reported in one warning line on stderr (what orbax
    itself reports about them is held back). With ``set_aside`` (resuming, which will save those
    steps again) they are renamed to ``<step>.unreadable``, so nothing is deleted and orbax no
    longer sees them. A run without a readable checkpoint is a ConfigError.
    """
    with _notices_about_skipped(run_dir) as skipped:
        try:
            mngr = manager(run_dir, create=False)
        except FileNotFoundError as err:
            raise ConfigError(f"{run_dir} has no checkpoint to restore") from err
        try:
            step, state, failures = restore_latest_intact(mngr, like)
        except FileNotFoundError as err:
            raise ConfigError(f"{run_dir} has no checkpoint to restore") from err
        except UnreadableCheckpoints as err:
            skipped += [s for s, _ in err.failures]
            kinds = ", ".join(sorted({kind for _, kind in err.failures}))
            which = "checkpoint" if len(err.failures) == 1 else "checkpoints"
            raise ConfigError(
                f"the {which} in {run_dir} cannot be read ({kinds}); resume from an intact copy "
                "or start a new run"
            ) from err
        finally:
            mngr.close()
        skipped += [s for s, _ in failures]
    if failures and distributed.is_primary():
        moved = _set_aside(run_dir, skipped) if set_aside else []
        print(_fallback_warning(run_dir, failures, step, moved), file=sys.stderr, flush=True)
    return step, state


@contextlib.contextmanager
def _notices_about_skipped(run_dir: str) -> Iterator[list[int]]:
    """Hold back what orbax reports about the checkpoints a restore skips; the body adds those
    steps to the yielded list, and goalax's warning line reports them instead.

    - absl log lines (e.g. "Failed to json parse Metadata file", logged when the manager opens)
      are held; on exit those naming a skipped step's folder are dropped, the rest shown.
    - A failed restore closes orbax's event loop while other tensorstore reads are in flight:
      each then reports "Event loop is closed", and its abandoned orbax coroutine reports an
      error when it is garbage-collected, both as ignored exceptions with tracebacks. Exactly
      those are dropped; on exit after a failure the stragglers are waited for (at most
      ``_DRAIN_S``) and the coroutines collected, so their reports arrive while dropped.
    """
    held: list[logging.LogRecord] = []
    skipped: list[int] = []
    last_stray = [0.0]

    def hold(record: logging.LogRecord) -> bool:
        held.append(record)
        return False

    previous_hook = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        value, code = unraisable.exc_value, getattr(unraisable.object, "cr_code", None)
        closed = isinstance(value, RuntimeError) and str(value) == "Event loop is closed"
        if closed or (code is not None and "orbax" in code.co_filename):
            last_stray[0] = time.monotonic()
        else:
            previous_hook(unraisable)

    absl = logging.getLogger("absl")
    absl.addFilter(hold)
    sys.unraisablehook = hook
    try:
        yield skipped
    finally:
        if skipped:
            deadline = time.monotonic() + _DRAIN_S
            while time.monotonic() < deadline and time.monotonic() - last_stray[0] < 0.1:
                time.sleep(0.02)
            gc.collect()
        sys.unraisablehook = previous_hook
        absl.removeFilter(hold)
        folder = os.path.abspath(os.path.join(run_dir, "checkpoints"))
        about = re.compile(
            "|".join(re.escape(os.path.join(folder, str(s))) + r"(?![0-9])" for s in skipped)
            or r"(?!)"  # nothing was skipped: matches no line
        )
        for record in held:
            if not about.search(record.getMessage()):
                absl.handle(record)


def _set_aside(run_dir: str, steps: list[int]) -> list[str]:
    """Rename the folders of ``steps`` to ``<step>.unreadable`` (``-2``, ... if taken)."""
    folder = os.path.join(run_dir, "checkpoints")
    moved = []
    for step in steps:
        target, n = os.path.join(folder, f"{step}{UNREADABLE_SUFFIX}"), 1
        while os.path.exists(target):
            n += 1
            target = os.path.join(folder, f"{step}{UNREADABLE_SUFFIX}-{n}")
        os.rename(os.path.join(folder, str(step)), target)
        moved.append(os.path.basename(target))
    return moved


def _fallback_warning(
    run_dir: str, skipped: list[tuple[int, str]], step: int, moved: list[str]
) -> str:
    folder = os.path.join(run_dir, "checkpoints")
    steps = ", ".join(str(s) for s, _ in skipped)
    kinds = ", ".join(sorted({kind for _, kind in skipped}))
    which = "checkpoint" if len(skipped) == 1 else "checkpoints"
    line = f"goalax: warning: {which} {steps} in {folder} cannot be read ({kinds}); "
    line += f"using checkpoint {step}"
    if moved:
        line += f" (kept as {', '.join(moved)})"
    return line
