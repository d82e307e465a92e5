"""Orbax checkpoints of the whole training state (params, optimisers, buffer, envs, keys, counters).

Orbax writes each step into a temporary folder and renames it when complete, so an interrupted
save never damages the previous checkpoint; ``max_to_keep`` keeps the latest K.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


def manager(run_dir: str, max_to_keep: int = 3, create: bool = True) -> ocp.CheckpointManager:
    """Checkpoints of ``run_dir``; ``create=False`` for read-only use (nothing is written)."""
    path = os.path.abspath(os.path.join(run_dir, "checkpoints"))
    if not create and not os.path.isdir(path):
        raise FileNotFoundError(f"no checkpoint directory in {run_dir}")
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create)
    return ocp.CheckpointManager(path, options=options)


def save(mngr: ocp.CheckpointManager, step: int, state: Any) -> None:
    """Save ``state`` under ``step`` (env steps) and wait until it is durable."""
    mngr.save(step, args=ocp.args.StandardSave(state), force=True)
    mngr.wait_until_finished()


def restore(mngr: ocp.CheckpointManager, like: Any, step: int | None = None) -> tuple[int, Any]:
    """Restore the latest (or given) step into the structure, shapes and dtypes of ``like``."""
    step = mngr.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"no checkpoint in {mngr.directory}")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    return step, mngr.restore(step, args=ocp.args.StandardRestore(abstract))
