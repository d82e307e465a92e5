"""What every agent provides to the training loop.

An agent is pure functions over a frozen state pytree (``state.params`` holds what acting needs),
closed over its static config and the task's sizes. It also says how it learns from data: a
replay agent (CRL, SAC, TD3) gives ``sample``, which draws its own training batch from the
replay buffer (future-goal relabelling, HER); an on-policy agent (PPO) gives ``sample=None`` and
its ``update`` takes the latest rollout itself. The loop reads nothing else about an agent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from goalax.fields import flag


class SampleContext(NamedTuple):
    """What a batch sampler needs from the run and the task (built once by the loop)."""

    batch_size: int
    #: Static bound on an episode's length (the run's time limit).
    max_episode_length: int
    #: The task's ``GoalEnv.goal_reward``: ``(achieved [B, G], goal [B, G]) -> (reward, metrics)``.
    goal_reward: Callable[[Any, Any], tuple[Any, dict]]
    #: The task's ``GoalEnv.achieved_goal``: ``state_obs [B, S] -> [B, G]`` (HER scored on s_t).
    achieved_goal: Callable[[Any], Any] | None = None


#: ``(key) -> state``: a fresh agent state (``state.params`` holds what acting needs).
InitFn = Callable[[jax.Array], Any]
#: ``(state, batch, key) -> (state, metrics)``: metrics are scalars named ``metric_names``.
UpdateFn = Callable[[Any, dict[str, jax.Array], jax.Array], tuple[Any, dict[str, jax.Array]]]
#: ``(params, obs [..., obs_dim], key, deterministic) -> action [..., A]``.
ActFn = Callable[[Any, jax.Array, jax.Array, bool], jax.Array]
#: ``(buffer, key, SampleContext) -> batch``: a replay agent draws its own training batch.
SampleFn = Callable[[Any, jax.Array, SampleContext], dict[str, jax.Array]]


class Agent(NamedTuple):
    """The pure functions and static facts of an agent."""

    init: InitFn
    update: UpdateFn
    act: ActFn
    metric_names: tuple[str, ...]
    #: Transition fields ``goalax.training.rollout.collect`` records for this agent.
    fields: tuple[str, ...]
    #: The replay sampler; ``None``: on-policy (``update`` takes the latest rollout).
    sample: SampleFn | None = None
    grad_steps_per_update: int = 1  # gradient steps one ``update`` call takes


#: Depth fields and the flag that makes that network residual (blocks of 4 layers).
_RESIDUAL_OF = {"depth": "residual", "actor_depth": "actor_residual"}


def check_network_sizes(config: Any, sizes: tuple[str, ...]) -> None:
    """Raise ValueError unless every field in ``sizes`` is a positive integer and each residual
    network's depth (``depth`` with ``residual``, ``actor_depth`` with ``actor_residual``) is a
    multiple of 4."""
    for name in sizes:
        value = getattr(config, name)
        if value < 1:
            raise ValueError(f"{flag(name)} must be a positive integer, got {value}")
    for depth, residual in _RESIDUAL_OF.items():
        if depth in sizes and getattr(config, residual) and getattr(config, depth) % 4:
            raise ValueError(
                f"{flag(depth)} must be a multiple of 4 with {flag(residual)} (blocks of 4 "
                f"layers), got {getattr(config, depth)}"
            )


def check_positive(config: Any, names: tuple[str, ...]) -> None:
    """Raise ValueError unless every field in ``names`` (learning rates, ...) is > 0."""
    for name in names:
        if not getattr(config, name) > 0:
            raise ValueError(f"{flag(name)} must be positive, got {getattr(config, name)}")
