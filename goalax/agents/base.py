"""What every agent provides to the training loop.

An agent is pure functions over a frozen state pytree (``state.params`` holds what acting needs),
closed over its static config and the task's sizes. The loop feeds it one of three kinds of data:
``"contrastive"`` (state, action, future goal: CRL), ``"her"`` (transitions with hindsight
relabelled goals and rewards: SAC/TD3) or ``"rollout"`` (the latest on-policy rollout: PPO).
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

DataKind = Literal["contrastive", "her", "rollout"]

#: Fields ``goalax.training.rollout.collect`` can record per step (leaves ``[T, E, ...]``).
TRANSITION_FIELDS = (
    "state_obs",  # [S] state part of the observation before the action
    "action",  # [A]
    "next_goal",  # [G] achieved goal of the true next state (before any auto-reset)
    "next_state_obs",  # [S] true next state
    "goal",  # [G] the episode's goal
    "reward",  # [] env reward for the episode goal
    "terminated",  # [] 1.0 on true termination (bootstrap stops)
    "truncated",  # [] 1.0 when the time limit ended the episode (bootstrap continues)
)


def flag(name: str) -> str:
    """The command-line spelling of a config field, for error messages."""
    return "--" + name.replace("_", "-")


def check_network_sizes(config: Any, sizes: tuple[str, ...]) -> None:
    """Raise ValueError unless every field in ``sizes`` is a positive integer and, with
    ``config.residual``, every ``*depth`` field is a multiple of 4 (residual blocks of 4 layers)."""
    for name in sizes:
        value = getattr(config, name)
        if value < 1:
            raise ValueError(f"{flag(name)} must be a positive integer, got {value}")
    if config.residual:
        for name in sizes:
            if name.endswith("depth") and getattr(config, name) % 4:
                raise ValueError(
                    f"{flag(name)} must be a multiple of 4 with --residual (blocks of 4 layers), "
                    f"got {getattr(config, name)}"
                )


def check_positive(config: Any, names: tuple[str, ...]) -> None:
    """Raise ValueError unless every field in ``names`` (learning rates, ...) is > 0."""
    for name in names:
        if not getattr(config, name) > 0:
            raise ValueError(f"{flag(name)} must be positive, got {getattr(config, name)}")


class Agent(NamedTuple):
    """The pure functions and static facts of an agent."""

    init: Any  # (key) -> state
    update: Any  # (state, batch, key) -> (state, metrics: dict of scalars named metric_names)
    act: Any  # (params, obs [..., obs_dim], key, deterministic: bool) -> action [..., A]
    metric_names: tuple[str, ...]
    data: DataKind
    fields: tuple[str, ...]  # transition fields to store (replay) or pass (rollout)
    grad_steps_per_update: int = 1  # gradient steps one ``update`` call takes
