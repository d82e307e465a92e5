"""Vectorised acting in a GoalEnv: time limits, auto-reset with fresh goals, and budget masking.

Written here (not brax's wrappers) for two reasons: brax's AutoResetWrapper restores a cached
first state, which repeats the same goal after every reset (the predecessor's "same goal" bug);
and the trainer needs the achieved goal of the *true* next state, before any reset replaces it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from goalax.envs.base import GoalEnv, State

Policy = Callable[[jax.Array, jax.Array], jax.Array]  # (obs [E, obs_dim], key) -> action [E, A]


@struct.dataclass
class EnvCarry:
    """Batched env state plus the bookkeeping the buffer needs to see episode boundaries."""

    state: State
    steps: jax.Array  # [E] int32: steps taken in the current episode
    episode_id: jax.Array  # [E] int32: incremented at every reset of that env


def tree_where(mask: jax.Array, on_true: Any, on_false: Any) -> Any:
    """Per-env select between two batched pytrees; ``mask [E]`` broadcasts over trailing axes."""

    def pick(a, b):
        m = mask.reshape(mask.shape + (1,) * (a.ndim - mask.ndim))
        return jnp.where(m, a, b)

    return jax.tree.map(pick, on_true, on_false)


#: Shape of one env step's value of each transition field ``collect`` can record (all float32).
TRANSITION_SHAPES: dict[str, Callable[[GoalEnv], tuple[int, ...]]] = {
    "state_obs": lambda env: (env.state_dim,),
    "action": lambda env: (env.action_size,),
    "next_goal": lambda env: (env.goal_dim,),
    "next_state_obs": lambda env: (env.state_dim,),
    "goal": lambda env: (env.goal_dim,),
    "reward": lambda env: (),
    "terminated": lambda env: (),
    "truncated": lambda env: (),
}


def transition_example(
    env: GoalEnv, fields: tuple[str, ...], num_envs: int
) -> dict[str, jax.Array]:
    """Zeros in the layout of one step of ``collect``'s transitions (leaves ``[num_envs, ...]``),
    without tracing the physics: the replay buffer is sized from it, so building a run's initial
    state traces no env step."""
    return {
        name: jnp.zeros((num_envs, *TRANSITION_SHAPES[name](env)), jnp.float32) for name in fields
    }


def reset(env: GoalEnv, key: jax.Array, num_envs: int) -> EnvCarry:
    state = jax.vmap(env.reset)(jax.random.split(key, num_envs))
    zeros = jnp.zeros((num_envs,), jnp.int32)
    return EnvCarry(state=state, steps=zeros, episode_id=zeros)


def collect(
    env: GoalEnv,
    policy: Policy,
    carry: EnvCarry,
    key: jax.Array,
    *,
    unroll_length: int,
    episode_length: int,
    budget: jax.Array,
    fields: tuple[str, ...] = ("state_obs", "action", "next_goal"),
) -> tuple[EnvCarry, dict, jax.Array]:
    """Step all envs ``unroll_length`` times with auto-reset.

    Only the first ``budget`` env steps (in order step-major, env-minor) take effect: the others
    leave their env untouched, so a run can end exactly on its env-step budget. Returns the new
    carry, the transitions (the requested ``fields`` of ``TRANSITION_SHAPES``, leaves
    ``[T, E, ...]``, float32) and their ``episode_id [T, E]``; rows with ``t >= budget // E`` are
    incomplete and must not be stored (the caller inserts ``budget // E`` rows).
    """
    num_envs = carry.steps.shape[0]
    env_index = jnp.arange(num_envs)

    def step(carry: EnvCarry, inputs):
        t, step_key = inputs
        act_key, reset_key = jax.random.split(step_key)
        obs = carry.state.obs
        action = policy(obs, act_key)
        nxt = jax.vmap(env.step)(carry.state, action)
        steps = carry.steps + 1
        terminated = nxt.done > 0
        truncated = (steps >= episode_length) & ~terminated
        done = terminated | truncated

        def with_resets(nxt=nxt):
            fresh = jax.vmap(env.reset)(jax.random.split(reset_key, num_envs))
            return tree_where(done, fresh, nxt)

        next_state = jax.lax.cond(jnp.any(done), with_resets, lambda: nxt)
        active = t * num_envs + env_index < budget
        new_carry = EnvCarry(
            state=tree_where(active, next_state, carry.state),
            steps=jnp.where(active, jnp.where(done, 0, steps), carry.steps),
            episode_id=jnp.where(active & done, carry.episode_id + 1, carry.episode_id),
        )
        next_state_obs = nxt.obs[..., : env.state_dim]
        available = {
            "state_obs": lambda: obs[..., : env.state_dim],
            "action": lambda: action,
            "next_goal": lambda: env.achieved_goal(next_state_obs),
            "next_state_obs": lambda: next_state_obs,
            "goal": lambda: obs[..., env.state_dim :],
            "reward": lambda: nxt.reward,
            "terminated": lambda: terminated.astype(jnp.float32),
            "truncated": lambda: truncated.astype(jnp.float32),
        }
        transition = {name: available[name]().astype(jnp.float32) for name in fields}
        return new_carry, (transition, carry.episode_id)

    steps_keys = jax.random.split(key, unroll_length)
    carry, (transitions, episode_ids) = jax.lax.scan(
        step, carry, (jnp.arange(unroll_length), steps_keys)
    )
    return carry, transitions, episode_ids
