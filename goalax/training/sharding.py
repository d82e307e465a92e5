"""Data parallelism over devices: the env batch and the replay buffer are split along the env axis
over a 1-D ``jax.sharding.Mesh`` ("data"); parameters, optimiser states and keys are replicated.

The training program itself is unchanged: jit partitions it from these shardings (GSPMD), so
a gradient over a batch drawn from all shards is the same mean as on one device (the reduction is
inserted by the compiler), and results match the single-device program to float tolerance.
Each device holds ``1 / num_devices`` of the buffer.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from goalax.config import ConfigError

AXIS = "data"


def make_mesh(num_devices: int | None, num_envs: int) -> Mesh | None:
    """A 1-D mesh over the first ``num_devices`` devices (all by default); None for one device."""
    available = jax.devices()
    count = len(available) if num_devices is None else num_devices
    if count < 1 or count > len(available):
        raise ConfigError(
            f"--num-devices {count} is not available: this process sees {len(available)} "
            f"device(s) ({available[0].platform})"
        )
    if count == 1:
        return None
    if num_envs % count:
        raise ConfigError(
            f"--num-envs {num_envs} must be divisible by the {count} devices it is split over; "
            f"use a multiple of {count} or --num-devices 1"
        )
    return Mesh(np.array(available[:count]), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,))


def _spec(path: tuple, leaf: Any) -> PartitionSpec:
    """Env-axis partitioning by position in the TrainState: ``seeds.env`` leaves are
    ``[K, E, ...]``, ``seeds.buffer.data``/``episode_id`` leaves ``[K, capacity, E, ...]``."""
    names = [getattr(p, "name", getattr(p, "key", None)) for p in path]
    if "seeds" not in names or not hasattr(leaf, "ndim"):
        return PartitionSpec()
    if "env" in names and leaf.ndim >= 2:
        return PartitionSpec(None, AXIS)
    if "buffer" in names and ("data" in names or "episode_id" in names) and leaf.ndim >= 3:
        return PartitionSpec(None, None, AXIS)
    return PartitionSpec()


def state_shardings(mesh: Mesh, state_like: Any) -> Any:
    """NamedShardings for every leaf of a TrainState (or its abstract shape)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: NamedSharding(mesh, _spec(path, leaf)), state_like
    )


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())
