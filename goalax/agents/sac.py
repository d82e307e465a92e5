"""Goal-conditioned Soft Actor-Critic (Haarnoja et al. 2018), optionally with HER (Andrychowicz
et al. 2017): twin critics ``Q(s, g, a)`` with Polyak-averaged targets, a tanh-Gaussian actor
``π(a | s, g)`` and an automatically tuned entropy temperature α.

Critic target (soft Bellman backup, bootstrapping through time-limit truncation):
``y = r + γ (1 - terminated) [min_k Q_target,k(s', g, a') - α log π(a' | s', g)]``,
``a' ~ π(· | s', g)``. Actor loss: ``E[α log π(a | s, g) - min_k Q_k(s, g, a)]``. Temperature
loss: ``E[log α · (-log π(a | s, g) - H_target)]`` with ``H_target = -scale × action_dim``.
Batches come from ``goalax.relabel.her_batch`` (see ``goalax.agents.critics``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from goalax.agents import entropy_actor
from goalax.agents.base import Agent, check_positive
from goalax.agents.critics import (
    HER_FIELDS,
    OffPolicyConfig,
    TwinQ,
    actor_critic,
    critic_step,
    her_sample,
    make_twin_q,
    policy_obs,
    polyak,
    td_target,
)
from goalax.networks import LECUN_UNIFORM


@dataclass(frozen=True)
class SACConfig(OffPolicyConfig):
    """SAC hyperparameters: the shared off-policy ones plus the entropy temperature's."""

    alpha_lr: float = 3e-4
    """Adam learning rate of the entropy temperature (log α)."""
    target_entropy_scale: float = 0.5
    """Target entropy is -scale × action_dim (automatic temperature)."""

    def validate(self) -> None:
        super().validate()
        check_positive(self, ("alpha_lr",))


@struct.dataclass
class SACParams:
    actor: Any
    critic: Any  # TwinQ variables, leaves [2, ...]
    log_alpha: jax.Array


@struct.dataclass
class SACState:
    params: SACParams
    target_critic: Any
    critic_opt: Any
    actor_opt: entropy_actor.ActorOpt


METRICS = ("critic_loss", "actor_loss", "q_mean", "alpha", "entropy", "relabelled_fraction")


class SACNets(NamedTuple):
    """What ``make`` builds once: the twin critic, the actor, the critic's optimiser."""

    config: SACConfig
    twin_q: TwinQ
    actor: entropy_actor.EntropyActor
    critic_tx: optax.GradientTransformation


def build_nets(config: SACConfig, action_dim: int) -> SACNets:
    actor = entropy_actor.make(
        action_dim,
        width=config.actor_width,
        depth=config.actor_depth,
        layer_norm=config.actor_layer_norm,
        residual=config.actor_residual,
        actor_lr=config.actor_lr,
        alpha_lr=config.alpha_lr,
        target_entropy_scale=config.target_entropy_scale,
        kernel_init=LECUN_UNIFORM,
        activation=config.activation,
    )
    return SACNets(config, make_twin_q(config), actor, optax.adam(config.critic_lr))


def init(nets: SACNets, sizes: tuple[int, int, int], key: jax.Array) -> SACState:
    """Fresh parameters for ``sizes = (state_dim, goal_dim, action_dim)``."""
    state_dim, goal_dim, action_dim = sizes
    actor_key, critic_key = jax.random.split(key)
    state_obs, goal = jnp.zeros((1, state_dim)), jnp.zeros((1, goal_dim))
    critic = nets.twin_q.init(critic_key, state_obs, goal, jnp.zeros((1, action_dim)))
    actor_params, log_alpha, actor_opt = entropy_actor.init(
        nets.actor, actor_key, state_dim + goal_dim
    )
    return SACState(
        params=SACParams(actor=actor_params, critic=critic, log_alpha=log_alpha),
        target_critic=critic,
        critic_opt=nets.critic_tx.init(critic),
        actor_opt=actor_opt,
    )


def soft_target(nets: SACNets, state: SACState, batch: dict, key: jax.Array) -> jax.Array:
    """``r + γ (1 - terminated) [min_k Q_target,k(s', g, a') - α log π(a' | s', g)]``."""
    p = state.params
    next_obs = policy_obs(batch["next_state_obs"], batch["goal"])
    next_action, next_log_prob = entropy_actor.sample(nets.actor, p.actor, next_obs, key)
    next_q = nets.twin_q.apply(
        state.target_critic, batch["next_state_obs"], batch["goal"], next_action
    )
    next_value = jnp.min(next_q, axis=0) - jnp.exp(p.log_alpha) * next_log_prob
    return td_target(batch["reward"], batch["terminated"], next_value, nets.config.discount)


def update(nets: SACNets, state: SACState, batch: dict, key: jax.Array) -> tuple[SACState, dict]:
    """Critic step towards the soft target, then actor and α against the updated critic (or,
    with ``--actor-critic previous``, against the critic before this step, as the reference)."""
    target_key, actor_key = jax.random.split(key)
    p = state.params
    target = soft_target(nets, state, batch, target_key)
    critic, critic_opt, c_loss, q_mean = critic_step(
        nets.twin_q, nets.critic_tx, p.critic, state.critic_opt, batch, target
    )

    climbed = actor_critic(nets.config, p.critic, critic)

    def score(action):
        q = nets.twin_q.apply(climbed, batch["state_obs"], batch["goal"], action)
        return jnp.min(q, axis=0)

    obs = policy_obs(batch["state_obs"], batch["goal"])
    actor_params, log_alpha, actor_opt, actor_metrics = entropy_actor.actor_step(
        nets.actor, p.actor, p.log_alpha, state.actor_opt, obs, score, actor_key
    )
    new_state = SACState(
        params=SACParams(actor=actor_params, critic=critic, log_alpha=log_alpha),
        target_critic=polyak(state.target_critic, critic, nets.config.tau),
        critic_opt=critic_opt,
        actor_opt=actor_opt,
    )
    metrics = {
        "critic_loss": c_loss,
        "q_mean": q_mean,
        "relabelled_fraction": jnp.mean(batch["relabelled"]),
        **actor_metrics,
    }
    return new_state, metrics


def act(nets: SACNets, params: SACParams, obs: jax.Array, key: jax.Array, deterministic: bool):
    """``obs [..., state_dim + goal_dim] -> action [..., action_dim]`` in [-1, 1]."""
    return entropy_actor.act(nets.actor, params.actor, obs, key, deterministic)


def make(config: SACConfig, *, state_dim: int, goal_dim: int, action_dim: int) -> Agent:
    """Build SAC for the given sizes."""
    config.validate()
    nets = build_nets(config, action_dim)
    return Agent(
        init=functools.partial(init, nets, (state_dim, goal_dim, action_dim)),
        update=functools.partial(update, nets),
        act=functools.partial(act, nets),
        metric_names=METRICS,
        fields=HER_FIELDS,
        sample=functools.partial(her_sample, config),
    )
