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

    def next_carry(carry: EnvCarry, nxt: State, t: jax.Array, reset_key: jax.Array) -> EnvCarry:
        steps = carry.steps + 1
        done = (nxt.done > 0) | (steps >= episode_length)

        def with_resets():
            fresh = jax.vmap(env.reset)(jax.random.split(reset_key, num_envs))
            return tree_where(done, fresh, nxt)

        next_state = jax.lax.cond(jnp.any(done), with_resets, lambda: nxt)
        active = t * num_envs + env_index < budget
        return EnvCarry(
            state=tree_where(active, next_state, carry.state),
            steps=jnp.where(active, jnp.where(done, 0, steps), carry.steps),
            episode_id=jnp.where(active & done, carry.episode_id + 1, carry.episode_id),
        )

    def record(carry: EnvCarry, action: jax.Array, nxt: State, t: jax.Array):
        obs = carry.state.obs
        terminated = nxt.done > 0
        truncated = (carry.steps + 1 >= episode_length) & ~terminated
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
        return transition, carry.episode_id

    carry, (transitions, episode_ids) = play(
        env,
        policy,
        carry,
        key,
        unroll_length,
        state_of=lambda c: c.state,
        next_carry=next_carry,
        record=record,
    )
    return carry, transitions, episode_ids


def play(
    env: GoalEnv,
    policy: Policy,
    carry: Any,
    key: jax.Array,
    num_steps: int,
    *,
    state_of: Callable[[Any], State] = lambda carry: carry,
    next_carry: Callable[[Any, State, jax.Array, jax.Array], Any] | None = None,
    record: Callable[[Any, jax.Array, State, jax.Array], Any] = lambda c, a, nxt, t: nxt,
    batched: bool = True,
) -> tuple[Any, Any]:
    """goalax's one episode-stepping loop (training collection, evaluation, render, bench):
    ``num_steps`` steps of ``policy`` in ``env`` as one ``lax.scan``.

    ``carry`` holds the env state (``state_of(carry)``) and whatever the caller tracks with it.
    At step ``t`` with key ``k``: ``act_key, aux_key = split(k)``; ``action = policy(obs,
    act_key)``; every env steps; ``record(carry, action, next_state, t)`` is kept (stacked over
    steps) and ``next_carry(carry, next_state, t, aux_key)`` is carried on (default: the next
    state itself, for a carry that is the state). ``batched``: states with a leading env axis.
    Returns ``(final carry, records)``.
    """
    step = jax.vmap(env.step) if batched else env.step

    def body(carry, inputs):
        t, step_key = inputs
        act_key, aux_key = jax.random.split(step_key)
        state = state_of(carry)
        action = policy(state.obs, act_key)
        nxt = step(state, action)
        out = record(carry, action, nxt, t)
        carry = nxt if next_carry is None else next_carry(carry, nxt, t, aux_key)
        return carry, out

    keys = jax.random.split(key, num_steps)
    return jax.lax.scan(body, carry, (jnp.arange(num_steps), keys))
