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
import pathlib
import re
import shutil
import sys
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import numpy as np
import orbax.checkpoint as ocp

from goalax.errors import ConfigError, GoalaxBug
from goalax.training import distributed

#: Leaf value of a restore target that orbax skips: the leaf is neither read nor materialised.
SKIP = ocp.PLACEHOLDER

UNREADABLE_SUFFIX = ".unreadable"
_DRAIN_S = 2.0  # longest wait for the reads a failed restore left in flight


class UnreadableCheckpoints(Exception):
    """Every checkpoint of a run failed to restore; ``failures`` lists each one (``Failure``)."""

    def __init__(self, failures: list[Failure]):
        super().__init__(", ".join(f"{f.step} ({f.kind})" for f in failures))
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
    """``restored`` (from a ``_without_empty(like)`` target) with ``like``'s zero-size leaves
    back.

    The pairing follows ``like``'s own structure: each of its leaves is matched with the subtree
    at the same place in ``restored``, so ``None`` fields of the state (no leaves at all, e.g.
    brax's ``contact`` on tasks without contacts), leaves dropped as empty (``None`` in
    ``restored``) and ``SKIP`` leaves never shift one another.
    """

    def fill(template: Any, got: Any) -> Any:
        return np.zeros(template.shape, template.dtype) if _is_empty(template) else got

    return jax.tree.map(fill, like, restored)


def save(mngr: ocp.CheckpointManager, step: int, state: Any) -> None:
    """Save ``state`` under ``step`` (env steps); durable when this returns.

    A save that fails (a full disk) leaves nothing behind: its temporary folder is removed and
    what orbax, asyncio and absl report about it is held back (a dozen tracebacks from orbax's
    writer threads); the error itself is raised for the caller to report in one line. The
    previous checkpoints are never touched.
    """
    folder = os.fspath(mngr.directory)

    def unretrieved(record: logging.LogRecord) -> bool:
        return "exception was never retrieved" not in record.getMessage()

    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.addFilter(unretrieved)
    try:
        with _orbax_notices_held(os.path.dirname(folder)) as failed:
            try:
                mngr.save(step, args=ocp.args.StandardSave(_without_empty(state)), force=True)
                mngr.wait_until_finished()
            except Exception:
                failed.append(step)
                for name in os.listdir(folder):
                    if name.startswith(f"{step}.orbax-checkpoint-tmp"):
                        shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
                raise
    finally:
        asyncio_log.removeFilter(unretrieved)


def skip_all(like: Any) -> Any:
    """``like`` with every leaf replaced by ``SKIP``; put back the leaves a restore needs."""
    return jax.tree.map(lambda _: SKIP, like)


def _path_name(path: tuple) -> str:
    """``seeds.buffer.obs`` for a key path, the way orbax names a leaf in its metadata."""
    parts = []
    for key in path:
        for attr in ("name", "key", "idx"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
    return ".".join(parts)


def layout(tree: Any) -> dict[str, tuple[tuple[int, ...], str]]:
    """``{leaf name: (shape, dtype)}`` of the array leaves of a state or of orbax's metadata
    tree; ``None`` and ``SKIP`` are not arrays and are left out."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {
        _path_name(path): (tuple(leaf.shape), np.dtype(leaf.dtype).name)
        for path, leaf in leaves
        if hasattr(leaf, "shape") and hasattr(leaf, "dtype")
    }


def layout_difference(saved: dict, expected: dict) -> str | None:
    """The first way a checkpoint's layout differs from the expected one, or ``None``.

    Only the expected leaves are checked: a params-only restore asks for a part of the state.
    """
    for name, (shape, dtype) in sorted(expected.items()):
        if name not in saved:
            return f"it has no {name}"
        if saved[name] != (shape, dtype):
            (got_shape, got_dtype) = saved[name]
            return (
                f"{name} is {got_dtype}{list(got_shape)} in the checkpoint but "
                f"{dtype}{list(shape)} for this config"
            )
    return None


class Failure(NamedTuple):
    """Why one checkpoint did not restore: ``kind`` is the error's type name; ``mismatch`` says
    how an intact checkpoint differs from the state the config describes (``None`` when its files
    are damaged)."""

    step: int
    kind: str
    mismatch: str | None = None


def saved_layout(mngr: ocp.CheckpointManager, step: int) -> dict[str, tuple[tuple[int, ...], str]]:
    """``layout`` of what checkpoint ``step`` holds, from orbax's metadata file alone."""
    folder = pathlib.Path(mngr.directory) / str(step) / "default"
    return layout(ocp.StandardCheckpointHandler().metadata(folder).tree)


def _diagnose(mngr: ocp.CheckpointManager, step: int, target: Any, err: Exception) -> Failure:
    """Tell a damaged checkpoint (its metadata or data do not read) from an intact one written
    for another state layout (config.json edited, another goalax version)."""
    try:
        saved = saved_layout(mngr, step)
    except Exception:  # metadata itself unreadable: damaged
        return Failure(step, type(err).__name__)
    return Failure(step, type(err).__name__, layout_difference(saved, layout(target)))


def restore_latest_intact(mngr: ocp.CheckpointManager, like: Any) -> tuple[int, Any, list[Failure]]:
    """The newest checkpoint that restores into the structure, shapes and dtypes of ``like``.

    Returns ``(step, state, skipped)``: ``skipped`` lists the newer steps that failed, newest
    first (``Failure``). Leaves of ``like`` that are ``SKIP`` come back as ``SKIP`` without being
    read; ``None`` fields and zero-size leaves come back as they are in ``like``. Raises
    FileNotFoundError when there is no checkpoint, UnreadableCheckpoints when none restores, and
    GoalaxBug when goalax's own handling of a restored state fails (the files are not at fault).
    """
    steps = sorted(mngr.all_steps(), reverse=True)
    if not steps:
        raise FileNotFoundError(f"no checkpoint in {mngr.directory}")
    try:
        target = jax.tree.map(
            lambda x: x if x is SKIP else ocp.utils.to_shape_dtype_struct(x), _without_empty(like)
        )
        if any(leaf is SKIP for leaf in jax.tree.leaves(target)):
            # StandardRestore refuses placeholders; PyTreeRestore skips them
            restore_args = ocp.checkpoint_utils.construct_restore_args(target)
            args = ocp.args.PyTreeRestore(item=target, restore_args=restore_args)
        else:
            args = ocp.args.StandardRestore(target)
    except Exception as err:
        raise GoalaxBug(
            f"building the restore target failed ({type(err).__name__}: {err})"
        ) from err
    skipped: list[Failure] = []
    for step in steps:
        try:
            restored = mngr.restore(step, args=args)
        except Exception as err:  # orbax raises many types for damaged files
            skipped.append(_diagnose(mngr, step, target, err))
            continue
        try:
            return step, _with_empty(like, restored), skipped
        except Exception as err:
            raise GoalaxBug(
                f"checkpoint {step} was read, then goalax failed to rebuild the state from it "
                f"({type(err).__name__}: {err})"
            ) from err
    raise UnreadableCheckpoints(skipped)


def restore_run(run_dir: str, like: Any, set_aside: bool = False) -> tuple[int, Any]:
    """``(step, state)`` of the newest intact checkpoint of ``run_dir``, read-only.

    Newer checkpoints that cannot be read are reported in one warning line on stderr (what orbax
    itself reports about them is held back). With ``set_aside`` (resuming, which will save those
    steps again) they are renamed to ``<step>.unreadable``, so nothing is deleted and orbax no
    longer sees them. A run without a readable checkpoint is a ConfigError that says whether the
    files are damaged or were written for another state than ``like``; a failure in goalax's
    own code is a GoalaxBug instead, which blames no file.
    """
    with _orbax_notices_held(run_dir) as skipped:
        try:
            mngr = manager(run_dir, create=False)
        except FileNotFoundError as err:
            raise ConfigError(f"{run_dir} has no checkpoint to restore") from err
        try:
            step, state, failures = restore_latest_intact(mngr, like)
        except FileNotFoundError as err:
            raise ConfigError(f"{run_dir} has no checkpoint to restore") from err
        except UnreadableCheckpoints as err:
            skipped += [f.step for f in err.failures]
            damaged = any(f.mismatch is None for f in err.failures)
            advice = "resume from an intact copy" if damaged else "put back the run's config.json"
            raise ConfigError(
                f"{describe_failures(run_dir, err.failures)}; {advice} or start a new run"
            ) from err
        finally:
            mngr.close()
        skipped += [f.step for f in failures]
    if failures and distributed.is_primary():
        moved = _set_aside(run_dir, skipped) if set_aside else []
        print(_fallback_warning(run_dir, failures, step, moved), file=sys.stderr, flush=True)
    return step, state


def describe_failures(run_dir: str, failures: list[Failure]) -> str:
    """One clause per cause: damaged checkpoints, and intact ones written for another state."""
    folder = os.path.join(run_dir, "checkpoints")
    damaged = [f for f in failures if f.mismatch is None]
    other = [f for f in failures if f.mismatch is not None]
    clauses = []
    if damaged:
        steps = ", ".join(str(f.step) for f in damaged)
        kinds = ", ".join(sorted({f.kind for f in damaged}))
        which = "checkpoint" if len(damaged) == 1 else "checkpoints"
        clauses.append(f"{which} {steps} in {folder} cannot be read ({kinds})")
    if other:
        steps = ", ".join(str(f.step) for f in other)
        which = "checkpoint" if len(other) == 1 else "checkpoints"
        clauses.append(
            f"{which} {steps} in {folder} hold another training state than config.json "
            f"describes ({other[0].mismatch}; was config.json edited?)"
        )
    return "; ".join(clauses)


@contextlib.contextmanager
def _orbax_notices_held(run_dir: str) -> Iterator[list[int]]:
    """Hold back what orbax reports about checkpoints goalax handles itself (those a restore
    skips, a save that failed); the body adds those steps to the yielded list, and goalax's own
    line reports them instead.

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


def _fallback_warning(run_dir: str, skipped: list[Failure], step: int, moved: list[str]) -> str:
    line = f"goalax: warning: {describe_failures(run_dir, skipped)}; using checkpoint {step}"
    if moved:
        line += f" (kept as {', '.join(moved)})"
    return line
