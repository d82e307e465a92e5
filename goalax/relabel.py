"""Training batches from the replay buffer: future-goal relabelling, written once for every agent.

CRL trains on ``(s_t, a_t, g)`` with ``g`` an achieved goal of a later state of the same episode.
SAC/TD3 with HER replace the episode's goal by such a future goal with probability
``relabel_fraction`` and recompute the sparse (or dense) reward for the goal actually used. Both
draw the future state from ``goalax.buffer.sample``, so a relabelled goal never comes from another
episode, also after an early termination.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from goalax import buffer as replay

#: ``(achieved [B, G], goal [B, G]) -> (reward [B], metrics)``: a task's ``GoalEnv.goal_reward``.
GoalReward = Callable[[jax.Array, jax.Array], tuple[jax.Array, dict]]


def future_goal_batch(
    buf: replay.BufferState,
    key: jax.Array,
    batch_size: int,
    *,
    max_episode_length: int,
    gamma: float,
    strategy: str,
) -> tuple[dict, dict]:
    """``(now, goal)``: stored fields at the sampled rows and a future achieved goal for each.

    ``now`` has every stored field ``[B, ...]``; ``goal`` is ``[B, goal_dim]``.
    """
    s = replay.sample(
        buf, key, batch_size, max_episode_length=max_episode_length, gamma=gamma, strategy=strategy
    )
    now = replay.gather(buf, s.env_idx, s.row)
    future = replay.gather(buf, s.goal_env_idx, s.goal_row)
    return now, future["next_goal"]


def contrastive_batch(buf, key, batch_size, *, max_episode_length, gamma, strategy) -> dict:
    """CRL batch: ``state_obs [B, S]``, ``action [B, A]``, ``goal [B, G]`` (a future goal)."""
    now, goal = future_goal_batch(
        buf,
        key,
        batch_size,
        max_episode_length=max_episode_length,
        gamma=gamma,
        strategy=strategy,
    )
    return {"state_obs": now["state_obs"], "action": now["action"], "goal": goal}


def her_batch(
    buf: replay.BufferState,
    key: jax.Array,
    batch_size: int,
    *,
    max_episode_length: int,
    gamma: float,
    strategy: str,
    relabel_fraction: float,
    goal_reward: GoalReward,
) -> dict:
    """SAC/TD3 batch with hindsight relabelling.

    Returns ``state_obs, action, next_state_obs [B, S]``, ``goal [B, G]``, ``reward [B]``,
    ``terminated [B]`` and ``relabelled [B]``. With ``relabel_fraction = 0`` this is plain
    replay of the episode goals. Rewards come from the task's own ``goal_reward`` (its success
    function, e.g. every puck of ``pusher2`` in place), for relabelled and original goals alike.
    """
    sample_key, mask_key = jax.random.split(key)
    now, future_goal = future_goal_batch(
        buf,
        sample_key,
        batch_size,
        max_episode_length=max_episode_length,
        gamma=gamma,
        strategy=strategy,
    )
    relabel = jax.random.uniform(mask_key, (batch_size,)) < relabel_fraction
    goal = jnp.where(relabel[:, None], future_goal, now["goal"])
    reward, _ = goal_reward(now["next_goal"], goal)
    return {
        "state_obs": now["state_obs"],
        "action": now["action"],
        "next_state_obs": now["next_state_obs"],
        "goal": goal,
        "reward": reward,
        "terminated": now["terminated"],
        "relabelled": relabel.astype(jnp.float32),
    }
