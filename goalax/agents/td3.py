"""Goal-conditioned TD3 (Fujimoto et al. 2018), optionally with HER: twin critics ``Q(s, g, a)``,
a deterministic tanh actor ``μ(s, g)``, target policy smoothing and a delayed actor.

Critic target (bootstrapping through time-limit truncation):
``y = r + γ (1 - terminated) min_k Q_target,k(s', g, a')`` with the smoothed target action
``a' = clip(μ_target(s', g) + clip(ε, -c, c), -1, 1)``, ``ε ~ N(0, σ²)``. Every
``policy_delay``-th update also takes an actor step on ``-Q_1(s, g, μ(s, g))`` and moves both
target networks by Polyak averaging. Batches come from ``goalax.relabel.her_batch``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from goalax.agents.base import Agent
from goalax.agents.critics import (
    HER_FIELDS,
    OffPolicyConfig,
    critic_step,
    make_twin_q,
    policy_obs,
    polyak,
    td_target,
)
from goalax.networks import MLP


@dataclass(frozen=True)
class TD3Config(OffPolicyConfig):
    """TD3 hyperparameters: the shared off-policy ones plus smoothing, exploration and delay."""

    policy_noise: float = 0.2
    """Std of the Gaussian noise added to the target action (target policy smoothing)."""
    noise_clip: float = 0.5
    """The target-smoothing noise is clipped to [-noise_clip, noise_clip]."""
    exploration_noise: float = 0.1
    """Std of the Gaussian noise added to the actor's action when collecting data."""
    policy_delay: int = 2
    """Critic updates per actor (and target-network) update."""

    def validate(self) -> None:
        super().validate()
        for name in ("policy_noise", "noise_clip", "exploration_noise"):
            if getattr(self, name) < 0:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} must be >= 0, got {getattr(self, name)}")
        if self.policy_delay < 1:
            raise ValueError(f"--policy-delay must be a positive integer, got {self.policy_delay}")


@struct.dataclass
class TD3Params:
    actor: Any
    critic: Any  # TwinQ variables, leaves [2, ...]


@struct.dataclass
class TD3State:
    params: TD3Params
    target_actor: Any
    target_critic: Any
    critic_opt: Any
    actor_opt: Any
    step: jax.Array  # int32: updates taken; the actor moves when step % policy_delay == 0


METRICS = ("critic_loss", "actor_loss", "q_mean", "relabelled_fraction")


def smoothed_target_action(
    action: jax.Array, key: jax.Array, policy_noise: float, noise_clip: float
) -> jax.Array:
    """``clip(action + clip(policy_noise ε, -noise_clip, noise_clip), -1, 1)``, ``[B, A]``.

    Smoothing the target over nearby actions stops the critic from exploiting narrow peaks.
    """
    noise = policy_noise * jax.random.normal(key, action.shape, action.dtype)
    return jnp.clip(action + jnp.clip(noise, -noise_clip, noise_clip), -1.0, 1.0)


def make(
    config: TD3Config, *, state_dim: int, goal_dim: int, action_dim: int, env: Any = None
) -> Agent:
    """Build TD3 for the given sizes."""
    config.validate()
    twin_q = make_twin_q(config)
    actor = MLP(
        out_dim=action_dim,
        width=config.actor_width,
        depth=config.actor_depth,
        layer_norm=config.actor_layer_norm,
        residual=config.residual,
    )
    critic_tx = optax.adam(config.critic_lr)
    actor_tx = optax.adam(config.actor_lr)

    def mu(actor_params, state_obs, goal):
        return jnp.tanh(actor.apply(actor_params, policy_obs(state_obs, goal)))

    def init(key: jax.Array) -> TD3State:
        actor_key, critic_key = jax.random.split(key)
        state_obs, goal = jnp.zeros((1, state_dim)), jnp.zeros((1, goal_dim))
        params = TD3Params(
            actor=actor.init(actor_key, policy_obs(state_obs, goal)),
            critic=twin_q.init(critic_key, state_obs, goal, jnp.zeros((1, action_dim))),
        )
        return TD3State(
            params=params,
            target_actor=params.actor,
            target_critic=params.critic,
            critic_opt=critic_tx.init(params.critic),
            actor_opt=actor_tx.init(params.actor),
            step=jnp.zeros((), jnp.int32),
        )

    def actor_loss(actor_params, critic, batch):
        action = mu(actor_params, batch["state_obs"], batch["goal"])
        # Q_1 only, as in TD3: the min of both would bias the actor towards pessimism twice.
        return -jnp.mean(twin_q.apply(critic, batch["state_obs"], batch["goal"], action)[0])

    def actor_and_targets(state: TD3State, critic: Any, batch: dict):
        a_loss, a_grads = jax.value_and_grad(actor_loss)(state.params.actor, critic, batch)
        updates, actor_opt = actor_tx.update(a_grads, state.actor_opt, state.params.actor)
        actor_params = optax.apply_updates(state.params.actor, updates)
        target_actor = polyak(state.target_actor, actor_params, config.tau)
        target_critic = polyak(state.target_critic, critic, config.tau)
        return actor_params, actor_opt, target_actor, target_critic, a_loss

    def hold(state: TD3State, critic: Any, batch: dict):
        a_loss = actor_loss(state.params.actor, critic, batch)  # reported, not followed
        return state.params.actor, state.actor_opt, state.target_actor, state.target_critic, a_loss

    def update(state: TD3State, batch: dict, key: jax.Array) -> tuple[TD3State, dict]:
        next_action = smoothed_target_action(
            mu(state.target_actor, batch["next_state_obs"], batch["goal"]),
            key,
            config.policy_noise,
            config.noise_clip,
        )
        next_q = twin_q.apply(
            state.target_critic, batch["next_state_obs"], batch["goal"], next_action
        )
        target = td_target(
            batch["reward"], batch["terminated"], jnp.min(next_q, axis=0), config.discount
        )
        critic, critic_opt, c_loss, q_mean = critic_step(
            twin_q, critic_tx, state.params.critic, state.critic_opt, batch, target
        )
        actor_params, actor_opt, target_actor, target_critic, a_loss = jax.lax.cond(
            state.step % config.policy_delay == 0,
            actor_and_targets,
            hold,
            state,
            jax.lax.stop_gradient(critic),
            batch,
        )
        new_state = TD3State(
            params=TD3Params(actor=actor_params, critic=critic),
            target_actor=target_actor,
            target_critic=target_critic,
            critic_opt=critic_opt,
            actor_opt=actor_opt,
            step=state.step + 1,
        )
        metrics = {
            "critic_loss": c_loss,
            "actor_loss": a_loss,
            "q_mean": q_mean,
            "relabelled_fraction": jnp.mean(batch["relabelled"]),
        }
        return new_state, metrics

    def act(params: TD3Params, obs: jax.Array, key: jax.Array, deterministic: bool) -> jax.Array:
        """``obs [..., state_dim + goal_dim] -> action [..., action_dim]`` in [-1, 1]."""
        action = jnp.tanh(actor.apply(params.actor, obs))
        if deterministic:
            return action
        noise = config.exploration_noise * jax.random.normal(key, action.shape, action.dtype)
        return jnp.clip(action + noise, -1.0, 1.0)

    return Agent(
        init=init,
        update=update,
        act=act,
        metric_names=METRICS,
        data="her",
        fields=HER_FIELDS,
    )
