"""Training batches from the replay buffer: future-goal relabelling, written once for every agent.

CRL trains on ``(s_t, a_t, g)`` with ``g`` an achieved goal of a later state of the same episode.
SAC/TD3 with HER replace the episode's goal by such a future goal (or by the episode's final one,
HER "final") with probability ``relabel_fraction`` and recompute the sparse (or dense) reward for
the goal actually used. Both draw the future state from ``goalax.buffer.sample``, so a relabelled
goal never comes from another episode, also after an early termination.

Terminal states may be goals: the achieved goal of a terminated transition's next state is a
state the agent did reach (the ant's position when it flipped), so "(s, a) leads to g" is true
for it. The reference never uses one, only because its auto-reset overwrites every episode's last
state before it is stored (docs/parity.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp

from goalax import buffer as replay

#: ``(achieved [B, G], goal [B, G]) -> (reward [B], metrics)``: a task's ``GoalEnv.goal_reward``.
GoalReward = Callable[[jax.Array, jax.Array], tuple[jax.Array, dict]]
#: ``state_obs [B, S] -> achieved goal [B, G]``: a task's ``GoalEnv.achieved_goal``.
AchievedGoal = Callable[[jax.Array], jax.Array]
#: HER's goal strategies: the buffer's future strategies, or the episode's final achieved goal.
HERStrategy = Literal["geometric", "uniform", "random_state", "final"]
#: Which state of a transition ``(s_t, a_t, s_{t+1})`` HER reads its achieved goal from.
AchievedAt = Literal["next_state", "state"]


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


def final_rows(
    buf: replay.BufferState, env_idx: jax.Array, row: jax.Array, max_episode_length: int
) -> tuple[jax.Array, jax.Array]:
    """``(last_row [B], ended [B])``: the newest stored row of each sampled row's episode, and
    whether that episode has ended there (a later row starts another episode, or it has the
    time limit's ``max_episode_length`` rows). A running episode's final state is not known yet.
    """
    num_offsets = replay.num_future_offsets(buf, env_idx, row, max_episode_length)
    capacity = buf.episode_id.shape[0]
    rows_after = ((buf.insert_pos - 1) % capacity - row) % capacity
    ended = (num_offsets - 1 < rows_after) | (num_offsets == max_episode_length)
    return ((row + num_offsets - 1) % capacity).astype(jnp.int32), ended


def _achieved(
    transition: dict, achieved_at: AchievedAt, achieved_goal: AchievedGoal | None
) -> jax.Array:
    """Achieved goal ``[B, G]`` of the transitions' next states, or of their own states."""
    if achieved_at == "next_state":
        return transition["next_goal"]
    if achieved_goal is None:
        raise ValueError("her_achieved='state' needs the task's achieved_goal function")
    return achieved_goal(transition["state_obs"])


def hindsight_goals(
    buf: replay.BufferState,
    key: jax.Array,
    batch_size: int,
    *,
    max_episode_length: int,
    gamma: float,
    strategy: HERStrategy,
    achieved_at: AchievedAt,
    achieved_goal: AchievedGoal | None,
) -> tuple[dict, jax.Array, jax.Array]:
    """``(now, goal [B, G], eligible [B])``: sampled transitions, a hindsight goal for each, and
    whether it may replace the episode's goal. Future strategies: always. ``"final"``: the
    achieved goal of the episode's last transition (``achieved_at`` picks its next state, or its
    own state as the reference does), only once the episode has ended."""
    if strategy != "final":
        now, goal = future_goal_batch(
            buf,
            key,
            batch_size,
            max_episode_length=max_episode_length,
            gamma=gamma,
            strategy=strategy,
        )
        return now, goal, jnp.ones((batch_size,), bool)
    s = replay.sample(
        buf, key, batch_size, max_episode_length=max_episode_length, gamma=gamma, strategy="uniform"
    )
    last_row, ended = final_rows(buf, s.env_idx, s.row, max_episode_length)
    last = replay.gather(buf, s.env_idx, last_row)
    goal = _achieved(last, achieved_at, achieved_goal)
    return replay.gather(buf, s.env_idx, s.row), goal, ended


def her_batch(
    buf: replay.BufferState,
    key: jax.Array,
    batch_size: int,
    *,
    max_episode_length: int,
    gamma: float,
    strategy: HERStrategy,
    relabel_fraction: float,
    goal_reward: GoalReward,
    achieved_at: AchievedAt = "next_state",
    achieved_goal: AchievedGoal | None = None,
) -> dict:
    """SAC/TD3 batch with hindsight relabelling.

    Returns ``state_obs, action, next_state_obs [B, S]``, ``goal [B, G]``, ``reward [B]``,
    ``terminated [B]`` and ``relabelled [B]``. With ``relabel_fraction = 0`` this is plain
    replay of the episode goals. Rewards come from the task's own ``goal_reward`` (its success
    function, e.g. every puck of ``pusher2`` in place), for relabelled and original goals alike,
    scored on the achieved goal of ``s_{t+1}`` (``achieved_at="next_state"``) or, as the
    reference's HER does, of ``s_t`` (``"state"``, with the task's ``achieved_goal``).
    """
    sample_key, mask_key = jax.random.split(key)
    now, hindsight, eligible = hindsight_goals(
        buf,
        sample_key,
        batch_size,
        max_episode_length=max_episode_length,
        gamma=gamma,
        strategy=strategy,
        achieved_at=achieved_at,
        achieved_goal=achieved_goal,
    )
    relabel = (jax.random.uniform(mask_key, (batch_size,)) < relabel_fraction) & eligible
    goal = jnp.where(relabel[:, None], hindsight, now["goal"])
    reward, _ = goal_reward(_achieved(now, achieved_at, achieved_goal), goal)
    return {
        "state_obs": now["state_obs"],
        "action": now["action"],
        "next_state_obs": now["next_state_obs"],
        "goal": goal,
        "reward": reward,
        "terminated": now["terminated"],
        "relabelled": relabel.astype(jnp.float32),
    }
