"""Several hosts training one model: ``jax.distributed`` setup and "only the primary writes".

Every process runs the same program over the global device mesh (``goalax.training.sharding``);
process 0 alone writes the run directory's files, all processes take part in checkpoints (orbax
coordinates them). On SLURM, ``jax.distributed.initialize()`` finds the coordinator itself.
"""

from __future__ import annotations

import os

import jax

from goalax.config import ConfigError, RunConfig


def wanted(run: RunConfig) -> bool:
    explicit = run.coordinator_address is not None or (run.num_processes or 1) > 1
    slurm = run.num_processes is None and int(os.environ.get("SLURM_NTASKS", "1")) > 1
    return explicit or slurm


def initialize(run: RunConfig) -> None:
    """Join the process group described by the run flags (or SLURM); no-op for one process."""
    if not wanted(run) or jax.distributed.is_initialized():
        return
    incomplete = run.num_processes is None or run.process_id is None
    if run.coordinator_address is not None and incomplete:
        raise ConfigError(
            "--coordinator-address needs --num-processes and --process-id (or run under SLURM)"
        )
    if not incomplete and not 0 <= run.process_id < run.num_processes:
        raise ConfigError(
            f"--process-id {run.process_id} must be in [0, --num-processes {run.num_processes})"
        )
    # CPU processes need a collectives backend for cross-process reductions.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=run.coordinator_address,
            num_processes=run.num_processes,
            process_id=run.process_id,
        )
    except RuntimeError as err:
        raise ConfigError(f"could not join the process group: {err}") from err


def is_primary() -> bool:
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches this point (no-op for one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
