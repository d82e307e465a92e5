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

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from goalax.agents.base import Agent, check_positive
from goalax.agents.critics import (
    HER_FIELDS,
    OffPolicyConfig,
    critic_step,
    make_twin_q,
    policy_obs,
    polyak,
    td_target,
)
from goalax.networks import TanhGaussianActor, policy_action, sample_tanh_gaussian


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
    actor_opt: Any
    alpha_opt: Any


METRICS = ("critic_loss", "actor_loss", "q_mean", "alpha", "entropy", "relabelled_fraction")


def make(
    config: SACConfig, *, state_dim: int, goal_dim: int, action_dim: int, env: Any = None
) -> Agent:
    """Build SAC for the given sizes."""
    config.validate()
    twin_q = make_twin_q(config)
    actor = TanhGaussianActor(
        action_dim=action_dim,
        width=config.actor_width,
        depth=config.actor_depth,
        layer_norm=config.actor_layer_norm,
        residual=config.residual,
    )
    critic_tx = optax.adam(config.critic_lr)
    actor_tx = optax.adam(config.actor_lr)
    alpha_tx = optax.adam(config.alpha_lr)
    target_entropy = -config.target_entropy_scale * action_dim

    def init(key: jax.Array) -> SACState:
        actor_key, critic_key = jax.random.split(key)
        state_obs, goal = jnp.zeros((1, state_dim)), jnp.zeros((1, goal_dim))
        critic = twin_q.init(critic_key, state_obs, goal, jnp.zeros((1, action_dim)))
        params = SACParams(
            actor=actor.init(actor_key, policy_obs(state_obs, goal)),
            critic=critic,
            log_alpha=jnp.zeros(()),
        )
        return SACState(
            params=params,
            target_critic=critic,
            critic_opt=critic_tx.init(critic),
            actor_opt=actor_tx.init(params.actor),
            alpha_opt=alpha_tx.init(params.log_alpha),
        )

    def sample_action(actor_params, state_obs, goal, key):
        mean, log_std = actor.apply(actor_params, policy_obs(state_obs, goal))
        return sample_tanh_gaussian(mean, log_std, key)

    def soft_target(state: SACState, batch: dict, key: jax.Array) -> jax.Array:
        p = state.params
        next_action, next_log_prob = sample_action(
            p.actor, batch["next_state_obs"], batch["goal"], key
        )
        next_q = twin_q.apply(
            state.target_critic, batch["next_state_obs"], batch["goal"], next_action
        )
        next_value = jnp.min(next_q, axis=0) - jnp.exp(p.log_alpha) * next_log_prob
        return td_target(batch["reward"], batch["terminated"], next_value, config.discount)

    def actor_loss(actor_params, critic, log_alpha, batch, key):
        action, log_prob = sample_action(actor_params, batch["state_obs"], batch["goal"], key)
        q = jnp.min(twin_q.apply(critic, batch["state_obs"], batch["goal"], action), axis=0)
        return jnp.mean(jnp.exp(log_alpha) * log_prob - q), log_prob

    def update(state: SACState, batch: dict, key: jax.Array) -> tuple[SACState, dict]:
        target_key, actor_key = jax.random.split(key)
        p = state.params
        target = soft_target(state, batch, target_key)
        critic, critic_opt, c_loss, q_mean = critic_step(
            twin_q, critic_tx, p.critic, state.critic_opt, batch, target
        )

        (a_loss, log_prob), a_grads = jax.value_and_grad(actor_loss, has_aux=True)(
            p.actor, jax.lax.stop_gradient(critic), p.log_alpha, batch, actor_key
        )
        a_updates, actor_opt = actor_tx.update(a_grads, state.actor_opt, p.actor)
        actor_params = optax.apply_updates(p.actor, a_updates)

        entropy_gap = jax.lax.stop_gradient(-log_prob - target_entropy)
        alpha_grad = jax.grad(lambda la: jnp.mean(la * entropy_gap))(p.log_alpha)
        al_updates, alpha_opt = alpha_tx.update(alpha_grad, state.alpha_opt, p.log_alpha)
        log_alpha = optax.apply_updates(p.log_alpha, al_updates)

        new_state = SACState(
            params=SACParams(actor=actor_params, critic=critic, log_alpha=log_alpha),
            target_critic=polyak(state.target_critic, critic, config.tau),
            critic_opt=critic_opt,
            actor_opt=actor_opt,
            alpha_opt=alpha_opt,
        )
        metrics = {
            "critic_loss": c_loss,
            "actor_loss": a_loss,
            "q_mean": q_mean,
            "alpha": jnp.exp(log_alpha),
            "entropy": -jnp.mean(log_prob),
            "relabelled_fraction": jnp.mean(batch["relabelled"]),
        }
        return new_state, metrics

    def act(params: SACParams, obs: jax.Array, key: jax.Array, deterministic: bool) -> jax.Array:
        """``obs [..., state_dim + goal_dim] -> action [..., action_dim]`` in [-1, 1]."""
        mean, log_std = actor.apply(params.actor, obs)
        return policy_action(mean, log_std, key, deterministic)

    return Agent(
        init=init,
        update=update,
        act=act,
        metric_names=METRICS,
        data="her",
        fields=HER_FIELDS,
    )
