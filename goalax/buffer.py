"""On-device ring buffer of per-env trajectories with episode-aware future-goal sampling.

Layout: every data leaf is ``[capacity, num_envs, ...]``. Row ``r`` of env ``e`` holds one time
step ``t`` of some episode: ``(s_t, a_t, achieved goal of s_{t+1}, ...)``, whatever the caller puts
in the pytree. All envs are written together, one row per env per step, so the rows of each env
are chronological modulo the ring and all envs share ``insert_pos`` and ``size``.

Episode boundaries come from ``episode_id`` ``[capacity, num_envs]``: a counter per env that
increases with every new episode. Along the chronological order of one env it is therefore
non-decreasing, so "rows ``row .. row + d`` all belong to one episode" is a prefix property of
``d`` and the longest such prefix is found by binary search in ``O(log max_episode_length)``.

The functions are pure and not jitted: jit once around the training step (sizes such as
``capacity``, ``batch_size``, ``max_episode_length`` and ``strategy`` are static Python values).
The whole :class:`BufferState` can be vmapped over a leading seed axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp

GoalStrategy = Literal["geometric", "uniform", "random_state"]


@flax.struct.dataclass
class BufferState:
    """Ring-buffer contents and write pointer.

    Attributes:
        data: pytree; each leaf ``[capacity, num_envs, ...]`` (one row per env time step).
        episode_id: ``[capacity, num_envs]`` int32; per env, increases with each new episode, so
            equal neighbouring ids mean "same episode".
        insert_pos: int32 scalar; the next row to write (the oldest row once the ring is full).
        size: int32 scalar; rows filled so far, at most ``capacity``.
    """

    data: Any
    episode_id: jax.Array
    insert_pos: jax.Array
    size: jax.Array


class Sample(NamedTuple):
    """Indices of a sampled batch; read the data with :func:`gather`.

    Attributes:
        env_idx: ``[batch]`` int32; env of the sampled transition.
        row: ``[batch]`` int32; buffer row of the sampled transition (time step ``t``).
        goal_row: ``[batch]`` int32; row whose stored next-state goal is the relabelled goal.
            For the future strategies it is ``(row + offset) % capacity`` in env ``env_idx``, so
            the goal is achieved at ``t + offset + 1``, strictly later in the same episode.
        offset: ``[batch]`` int32; ``d >= 0`` for the future strategies, ``-1`` for
            ``"random_state"`` (the goal is not on the sampled trajectory).
        goal_env_idx: ``[batch]`` int32; env of ``goal_row``; equals ``env_idx`` except for
            ``"random_state"``.
    """

    env_idx: jax.Array
    row: jax.Array
    goal_row: jax.Array
    offset: jax.Array
    goal_env_idx: jax.Array


def init(example: Any, capacity: int) -> BufferState:
    """Allocates an empty buffer.

    Args:
        example: pytree of one time step, leaves ``[num_envs, ...]``; only shapes and dtypes are
            used.
        capacity: rows per env (time steps kept per env), static.

    Returns:
        A buffer with zero-filled leaves ``[capacity, num_envs, ...]`` and ``size == 0``.
    """
    if capacity < 1:
        raise ValueError(f"buffer capacity must be >= 1, got capacity={capacity}")
    leaves = jax.tree.leaves(example)
    if not leaves:
        raise ValueError("buffer example pytree has no leaves; pass one time step of data")
    num_envs = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for leaf in leaves}
    if len(num_envs) != 1 or None in num_envs:
        raise ValueError(
            f"every example leaf needs the same leading num_envs axis, got leading sizes "
            f"{sorted(num_envs, key=str)}"
        )
    (num_envs,) = num_envs
    data = jax.tree.map(
        lambda leaf: jnp.zeros((capacity, *jnp.shape(leaf)), jnp.result_type(leaf)), example
    )
    return BufferState(
        data=data,
        episode_id=jnp.zeros((capacity, num_envs), jnp.int32),
        insert_pos=jnp.zeros((), jnp.int32),
        size=jnp.zeros((), jnp.int32),
    )


def insert(
    state: BufferState, data: Any, episode_id: jax.Array, num_rows: jax.Array | None = None
) -> BufferState:
    """Writes ``T`` new time steps of every env at the write pointer, in place.

    Args:
        state: the buffer.
        data: pytree like ``state.data`` with leaves ``[T, num_envs, ...]``; ``1 <= T <= capacity``
            (static), the oldest step first.
        episode_id: ``[T, num_envs]`` episode counter of each new step.
        num_rows: optional traced count ``0 <= num_rows <= T``: only the first ``num_rows`` steps
            are written (the rest are dropped by the scatter), so the last, partial iteration
            of a run reuses the same compiled program.

    Returns:
        The buffer with rows ``(insert_pos + arange(T)) % capacity`` overwritten (a scatter, so
        under jit with a donated state no full-buffer copy is made), ``insert_pos`` advanced by
        ``T`` and ``size = min(size + T, capacity)``.
    """
    capacity, num_envs = state.episode_id.shape
    num_steps = episode_id.shape[0]
    if not 1 <= num_steps <= capacity:
        raise ValueError(
            f"insert needs 1 <= T <= capacity, got T={num_steps} steps, capacity={capacity}"
        )
    if episode_id.shape != (num_steps, num_envs):
        raise ValueError(
            f"episode_id must be [T, num_envs] = {(num_steps, num_envs)}, got {episode_id.shape}"
        )

    def check_leaf(path: Any, old: jax.Array, new: jax.Array) -> None:
        if new.shape != (num_steps, *old.shape[1:]):
            raise ValueError(
                f"data leaf {jax.tree_util.keystr(path)} must be [T, num_envs, ...] = "
                f"{(num_steps, *old.shape[1:])}, got {new.shape}"
            )

    jax.tree.map_with_path(check_leaf, state.data, data)
    steps = jnp.arange(num_steps, dtype=jnp.int32)
    rows = (state.insert_pos + steps) % capacity
    written = num_steps if num_rows is None else jnp.clip(num_rows, 0, num_steps).astype(jnp.int32)
    if num_rows is not None:
        rows = jnp.where(steps < written, rows, capacity)  # out of bounds: dropped

    def write(old: jax.Array, new: jax.Array) -> jax.Array:
        return old.at[rows].set(new.astype(old.dtype), mode="drop", unique_indices=True)

    return state.replace(
        data=jax.tree.map(write, state.data, data),
        episode_id=write(state.episode_id, episode_id),
        insert_pos=((state.insert_pos + written) % capacity).astype(jnp.int32),
        size=jnp.minimum(state.size + written, capacity).astype(jnp.int32),
    )


def gather(state: BufferState, env_idx: jax.Array, rows: jax.Array) -> Any:
    """Reads ``data[rows, env_idx]``: leaves ``[batch, ...]`` for ``[batch]`` index arrays."""
    return jax.tree.map(lambda leaf: leaf[rows, env_idx], state.data)


def num_future_offsets(
    state: BufferState, env_idx: jax.Array, row: jax.Array, max_episode_length: int
) -> jax.Array:
    """Counts the goal offsets ``d`` that stay in the episode of each sampled row.

    Rows ``row .. row + d`` (chronologically, modulo the ring) must share the episode id of
    ``row`` and ``row + d`` must not pass the newest written row, so goals never cross an episode
    boundary or the write pointer. ``d`` is also capped at ``max_episode_length - 1`` because an
    episode never has more steps; that cap is what bounds the binary search.

    Args:
        state: the buffer; ``row`` must be filled rows.
        env_idx: ``[batch]`` env of each sampled row.
        row: ``[batch]`` buffer row of each sampled transition.
        max_episode_length: static upper bound on episode length (>= 1).

    Returns:
        ``[batch]`` int32 ``n`` with ``1 <= n <= min(max_episode_length, size)``; the valid
        offsets are ``0 .. n - 1``.
    """
    if max_episode_length < 1:
        raise ValueError(f"max_episode_length must be >= 1, got {max_episode_length}")
    capacity = state.episode_id.shape[0]
    newest_row = (state.insert_pos - 1) % capacity
    rows_after = (newest_row - row) % capacity  # chronological distance to the newest row
    own_episode = state.episode_id[row, env_idx]

    def halve(_: jax.Array, bounds: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        # Invariant: offset `low` is in the episode; every offset above `high` is not.
        low, high = bounds
        mid = (low + high + 1) // 2
        in_episode = state.episode_id[(row + mid) % capacity, env_idx] == own_episode
        return jnp.where(in_episode, mid, low), jnp.where(in_episode, high, mid - 1)

    # ceil(log2(max_episode_length)) halvings shrink a range of that many offsets to one.
    num_halvings = (max_episode_length - 1).bit_length()
    high = jnp.minimum(rows_after, max_episode_length - 1).astype(jnp.int32)
    last_offset, _ = jax.lax.fori_loop(0, num_halvings, halve, (jnp.zeros_like(high), high))
    return last_offset + 1


def _check_gamma(gamma: float) -> None:
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got gamma={gamma}")


def truncated_geometric(
    key: jax.Array, num_offsets: jax.Array, gamma: float | jax.Array
) -> jax.Array:
    """Samples ``d`` in ``[0, n - 1]`` with ``P(d) = gamma^d (1 - gamma) / (1 - gamma^n)``.

    Inverse CDF: ``P(d < k) = (1 - gamma^k) / (1 - gamma^n)``, so
    ``d = floor(log(1 - u (1 - gamma^n)) / log gamma)`` for ``u ~ U[0, 1)``. It is written with
    ``log1p``/``expm1`` so that it stays exact when ``gamma -> 1`` or ``n`` is large, and
    ``gamma == 1`` falls back to the uniform limit.

    Args:
        key: PRNG key.
        num_offsets: ``[batch]`` int ``n >= 1``.
        gamma: discount in ``(0, 1]``; a Python float keeps ``log gamma`` in float64 precision.

    Returns:
        ``[batch]`` int32 offsets.
    """
    if isinstance(gamma, (int, float)):
        _check_gamma(gamma)
        log_gamma = jnp.float32(math.log(gamma))
    else:
        log_gamma = jnp.log(jnp.asarray(gamma, jnp.float32))
    n = num_offsets.astype(jnp.float32)
    u = jax.random.uniform(key, num_offsets.shape, jnp.float32)
    is_undiscounted = log_gamma == 0.0
    safe_log_gamma = jnp.where(is_undiscounted, -1.0, log_gamma)
    geometric = jnp.log1p(u * jnp.expm1(n * safe_log_gamma)) / safe_log_gamma
    offsets = jnp.floor(jnp.where(is_undiscounted, u * n, geometric))
    # Rounding can land on n (u close to 1); n - 1 is the right answer there.
    return jnp.clip(offsets, 0.0, n - 1.0).astype(jnp.int32)


def _uniform_offsets(key: jax.Array, num_offsets: jax.Array, gamma: float | jax.Array) -> jax.Array:
    del gamma  # the uniform-future ablation ignores the discount
    return jax.random.randint(key, num_offsets.shape, 0, num_offsets, dtype=jnp.int32)


_FUTURE_OFFSET_SAMPLERS: dict[str, Callable[[jax.Array, jax.Array, Any], jax.Array]] = {
    "geometric": truncated_geometric,
    "uniform": _uniform_offsets,
}


def _random_rows(
    key: jax.Array, state: BufferState, batch_size: int
) -> tuple[jax.Array, jax.Array]:
    """Uniform (env, row) pairs among filled rows: ``([batch], [batch])`` int32."""
    capacity, num_envs = state.episode_id.shape
    env_key, age_key = jax.random.split(key)
    # Clamping to one row makes an empty buffer return row data instead of crashing.
    size = jnp.maximum(state.size, 1)
    oldest_row = (state.insert_pos - size) % capacity
    env_idx = jax.random.randint(env_key, (batch_size,), 0, num_envs, dtype=jnp.int32)
    age = jax.random.randint(age_key, (batch_size,), 0, size, dtype=jnp.int32)
    return env_idx, ((oldest_row + age) % capacity).astype(jnp.int32)


def sample(
    state: BufferState,
    key: jax.Array,
    batch_size: int,
    *,
    max_episode_length: int,
    gamma: float | jax.Array,
    strategy: GoalStrategy = "geometric",
) -> Sample:
    """Samples transitions uniformly and a relabelled goal for each.

    ``(env, row)`` is uniform over all ``num_envs * size`` filled rows. The goal row is:
    ``"geometric"``: ``row + d`` with ``P(d) ∝ gamma^d`` truncated to the ``n`` valid offsets
    (CRL's discounted future state); ``"uniform"``: ``d`` uniform over the ``n`` valid offsets
    (HER "future"); ``"random_state"``: a uniform filled row of a uniform env (ablation). ``n``
    comes from :func:`num_future_offsets`, so future goals stay in the episode of ``row`` and
    never pass the write pointer. Costs ``O(batch * log max_episode_length)``.

    Sampling an empty buffer is the caller's mistake; it returns indices of row
    ``insert_pos - 1`` rather than crashing.

    Args:
        state: the buffer.
        key: PRNG key.
        batch_size: number of samples ``B`` (static).
        max_episode_length: static bound on episode length; caps ``d`` at ``L - 1``.
        gamma: discount in ``(0, 1]`` for ``"geometric"``.
        strategy: one of ``"geometric"``, ``"uniform"``, ``"random_state"`` (static).

    Returns:
        A :class:`Sample` of ``[B]`` int32 index arrays.
    """
    valid = (*_FUTURE_OFFSET_SAMPLERS, "random_state")
    if strategy not in valid:
        raise ValueError(f"unknown goal strategy {strategy!r}; valid: {', '.join(valid)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_episode_length < 1:
        raise ValueError(f"max_episode_length must be >= 1, got {max_episode_length}")
    if isinstance(gamma, (int, float)):
        _check_gamma(gamma)
    row_key, goal_key = jax.random.split(key)
    env_idx, row = _random_rows(row_key, state, batch_size)
    if strategy == "random_state":
        goal_env_idx, goal_row = _random_rows(goal_key, state, batch_size)
        offset = jnp.full((batch_size,), -1, jnp.int32)
        return Sample(env_idx, row, goal_row, offset, goal_env_idx)
    num_offsets = num_future_offsets(state, env_idx, row, max_episode_length)
    offset = _FUTURE_OFFSET_SAMPLERS[strategy](goal_key, num_offsets, gamma)
    capacity = state.episode_id.shape[0]
    goal_row = ((row + offset) % capacity).astype(jnp.int32)
    return Sample(env_idx, row, goal_row, offset, env_idx)
