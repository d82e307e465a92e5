"""Goal-conditioned TD3 (Fujimoto et al. 2018), optionally with HER: twin critics ``Q(s, g, a)``,
a deterministic tanh actor ``μ(s, g)``, target policy smoothing and a delayed actor.

Critic target (bootstrapping through time-limit truncation):
``y = r + γ (1 - terminated) min_k Q_target,k(s', g, a')`` with the smoothed target action
``a' = clip(μ_target(s', g) + clip(ε, -c, c), -1, 1)``, ``ε ~ N(0, σ²)``. Every
``policy_delay``-th update also takes an actor step on ``-Q_1(s, g, μ(s, g))`` and moves both
target networks by Polyak averaging. Batches come from ``goalax.relabel.her_batch``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from goalax.agents.base import Agent
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
from goalax.networks import LECUN_UNIFORM, MLP


@dataclass(frozen=True)
class TD3Config(OffPolicyConfig):
    """TD3 hyperparameters: the shared off-policy ones plus smoothing, exploration and delay."""

    policy_noise: float = 0.2
    """Std of the Gaussian noise added to the target action (target policy smoothing)."""
    noise_clip: float = 0.5
    """The target-smoothing noise is clipped to [-noise_clip, noise_clip]."""
    exploration_noise: float = 0.1
    """Std of the Gaussian noise added to the actor's action when collecting data."""
    exploration_noise_clip: float | None = None
    """Clip the exploration noise to [-clip, clip] (the reference: 0.5); default: unclipped."""
    policy_delay: int = 2
    """Critic updates per actor (and target-network) update."""

    def validate(self) -> None:
        super().validate()
        for name in ("policy_noise", "noise_clip", "exploration_noise", "exploration_noise_clip"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
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


class TD3Nets(NamedTuple):
    """What ``make`` builds once: the twin critic, the actor network and both optimisers."""

    config: TD3Config
    twin_q: TwinQ
    actor: MLP
    critic_tx: optax.GradientTransformation
    actor_tx: optax.GradientTransformation


def smoothed_target_action(
    action: jax.Array, key: jax.Array, policy_noise: float, noise_clip: float
) -> jax.Array:
    """``clip(action + clip(policy_noise ε, -noise_clip, noise_clip), -1, 1)``, ``[B, A]``.

    Smoothing the target over nearby actions stops the critic from exploiting narrow peaks.
    """
    noise = policy_noise * jax.random.normal(key, action.shape, action.dtype)
    return jnp.clip(action + jnp.clip(noise, -noise_clip, noise_clip), -1.0, 1.0)


def build_nets(config: TD3Config, action_dim: int) -> TD3Nets:
    actor = MLP(
        out_dim=action_dim,
        width=config.actor_width,
        depth=config.actor_depth,
        layer_norm=config.actor_layer_norm,
        residual=config.actor_residual,
        kernel_init=LECUN_UNIFORM,
        activation=config.activation,
    )
    return TD3Nets(
        config,
        make_twin_q(config),
        actor,
        optax.adam(config.critic_lr),
        optax.adam(config.actor_lr),
    )


def mu(nets: TD3Nets, actor_params: Any, state_obs: jax.Array, goal: jax.Array) -> jax.Array:
    """The deterministic policy ``tanh(actor(s, g))``, ``[B, A]``."""
    return jnp.tanh(nets.actor.apply(actor_params, policy_obs(state_obs, goal)))


def init(nets: TD3Nets, sizes: tuple[int, int, int], key: jax.Array) -> TD3State:
    """Fresh parameters for ``sizes = (state_dim, goal_dim, action_dim)``."""
    state_dim, goal_dim, action_dim = sizes
    actor_key, critic_key = jax.random.split(key)
    state_obs, goal = jnp.zeros((1, state_dim)), jnp.zeros((1, goal_dim))
    params = TD3Params(
        actor=nets.actor.init(actor_key, policy_obs(state_obs, goal)),
        critic=nets.twin_q.init(critic_key, state_obs, goal, jnp.zeros((1, action_dim))),
    )
    return TD3State(
        params=params,
        target_actor=params.actor,
        target_critic=params.critic,
        critic_opt=nets.critic_tx.init(params.critic),
        actor_opt=nets.actor_tx.init(params.actor),
        step=jnp.zeros((), jnp.int32),
    )


def actor_loss(nets: TD3Nets, actor_params: Any, critic: Any, batch: dict) -> jax.Array:
    """``-mean Q_1(s, g, μ(s, g))``: Q_1 only, as in TD3 (the min of both would bias the actor
    towards pessimism twice)."""
    action = mu(nets, actor_params, batch["state_obs"], batch["goal"])
    return -jnp.mean(nets.twin_q.apply(critic, batch["state_obs"], batch["goal"], action)[0])


def actor_and_targets(nets: TD3Nets, state: TD3State, critic: Any, batch: dict):
    """The delayed step: one actor step (on ``--actor-critic``'s critic), and both target
    networks move by Polyak averaging (the critic's towards the updated ``critic``)."""
    climbed = actor_critic(nets.config, state.params.critic, critic)
    a_loss, a_grads = jax.value_and_grad(functools.partial(actor_loss, nets))(
        state.params.actor, climbed, batch
    )
    updates, actor_opt = nets.actor_tx.update(a_grads, state.actor_opt, state.params.actor)
    actor_params = optax.apply_updates(state.params.actor, updates)
    tau = nets.config.tau
    target_actor = polyak(state.target_actor, actor_params, tau)
    target_critic = polyak(state.target_critic, critic, tau)
    return actor_params, actor_opt, target_actor, target_critic, a_loss


def hold(nets: TD3Nets, state: TD3State, critic: Any, batch: dict):
    """Between delayed steps nothing moves; the actor loss is reported, not followed."""
    climbed = actor_critic(nets.config, state.params.critic, critic)
    a_loss = actor_loss(nets, state.params.actor, climbed, batch)
    return state.params.actor, state.actor_opt, state.target_actor, state.target_critic, a_loss


def update(nets: TD3Nets, state: TD3State, batch: dict, key: jax.Array) -> tuple[TD3State, dict]:
    """Critic step towards the smoothed target; every ``policy_delay``-th call the actor too."""
    config = nets.config
    next_action = smoothed_target_action(
        mu(nets, state.target_actor, batch["next_state_obs"], batch["goal"]),
        key,
        config.policy_noise,
        config.noise_clip,
    )
    next_q = nets.twin_q.apply(
        state.target_critic, batch["next_state_obs"], batch["goal"], next_action
    )
    target = td_target(
        batch["reward"], batch["terminated"], jnp.min(next_q, axis=0), config.discount
    )
    critic, critic_opt, c_loss, q_mean = critic_step(
        nets.twin_q, nets.critic_tx, state.params.critic, state.critic_opt, batch, target
    )
    actor_params, actor_opt, target_actor, target_critic, a_loss = jax.lax.cond(
        state.step % config.policy_delay == 0,
        functools.partial(actor_and_targets, nets),
        functools.partial(hold, nets),
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


def act(nets: TD3Nets, params: TD3Params, obs: jax.Array, key: jax.Array, deterministic: bool):
    """``obs [..., state_dim + goal_dim] -> action [..., action_dim]`` in [-1, 1]; exploration
    adds Gaussian noise of std ``exploration_noise`` (clipped to ``exploration_noise_clip``)."""
    action = jnp.tanh(nets.actor.apply(params.actor, obs))
    if deterministic:
        return action
    config = nets.config
    noise = config.exploration_noise * jax.random.normal(key, action.shape, action.dtype)
    if config.exploration_noise_clip is not None:
        noise = jnp.clip(noise, -config.exploration_noise_clip, config.exploration_noise_clip)
    return jnp.clip(action + noise, -1.0, 1.0)


def make(config: TD3Config, *, state_dim: int, goal_dim: int, action_dim: int) -> Agent:
    """Build TD3 for the given sizes."""
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
