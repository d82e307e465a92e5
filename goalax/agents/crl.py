"""Contrastive RL (Eysenbach et al. 2022; JaxGCRL 2024): a critic f(φ(s,a), ψ(g)) trained to
classify which goal was reached in the future of (s, a), and a goal-conditioned actor that
maximises it.

The agent is three pure functions bundled in ``Agent``: ``init(key) -> CRLState``,
``update(state, batch, key) -> (state, metrics)`` and ``act(params, obs, key, deterministic)``.
A batch is a dict of ``state_obs [B, state_dim]``, ``action [B, action_dim]`` and
``goal [B, goal_dim]`` where the goal is a future achieved goal of the same trajectory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import optax
from flax import struct

from goalax import contrastive
from goalax.agents.base import Agent, check_network_sizes, check_positive
from goalax.networks import MLP, TanhGaussianActor, policy_action, sample_tanh_gaussian

GoalStrategy = Literal["geometric", "uniform", "random_state"]
Energy = Literal["l2", "l2_squared", "l1", "dot", "cosine"]
Loss = Literal[
    "infonce_forward",
    "infonce_backward",
    "infonce_sym",
    "binary_nce",
    "flatnce",
    "forward_backward",
    "dpo",
    "ipo",
    "sppo",
]


@dataclass(frozen=True)
class CRLConfig:
    """CRL hyperparameters (defaults follow the JaxGCRL paper)."""

    energy: Energy = "l2"
    """Critic energy f(φ, ψ)."""
    loss: Loss = "infonce_sym"
    """Contrastive objective over the batch's (state-action, goal) pairs."""
    logsumexp_penalty: float = 0.1
    """Coefficient of the logsumexp² regulariser that pins the critic's scale."""
    repr_dim: int = 64
    """Dimension of φ(s, a) and ψ(g)."""
    depth: int = 2
    """Hidden layers of each critic encoder (multiple of 4 with --residual)."""
    width: int = 256
    """Hidden units per layer of the critic encoders."""
    layer_norm: bool = False
    """LayerNorm after each hidden Dense layer of the critic."""
    residual: bool = False
    """Residual blocks of 4×(Dense→LayerNorm→swish) in critic and actor (deep networks)."""
    actor_depth: int = 2
    """Hidden layers of the actor (multiple of 4 with --residual)."""
    actor_width: int = 256
    """Hidden units per layer of the actor."""
    actor_layer_norm: bool = False
    """LayerNorm after each hidden Dense layer of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    alpha_lr: float = 3e-4
    """Adam learning rate of the entropy temperature."""
    target_entropy_scale: float = 0.5
    """Target entropy is -scale × action_dim."""
    discount: float = 0.99
    """γ of the discounted future-goal distribution."""
    goal_strategy: GoalStrategy = "geometric"
    """Future goals: discounted (geometric γ), uniform over the episode's future, or any state."""

    def validate(self) -> None:
        """Raise ValueError with a one-line fix for impossible settings."""
        check_network_sizes(self, ("repr_dim", "depth", "width", "actor_depth", "actor_width"))
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f"--discount must be in (0, 1), got {self.discount}")
        check_positive(self, ("critic_lr", "actor_lr", "alpha_lr"))
        if self.logsumexp_penalty < 0:
            raise ValueError(f"--logsumexp-penalty must be >= 0, got {self.logsumexp_penalty}")


@struct.dataclass
class CRLParams:
    sa_encoder: Any
    goal_encoder: Any
    actor: Any
    log_alpha: jax.Array


@struct.dataclass
class CRLState:
    params: CRLParams
    critic_opt: Any
    actor_opt: Any
    alpha_opt: Any


METRICS = (
    "critic_loss",
    "actor_loss",
    "alpha",
    "entropy",
    "logits_pos",
    "logits_neg",
    "categorical_accuracy",
)


def make(
    config: CRLConfig, *, state_dim: int, goal_dim: int, action_dim: int, env: Any = None
) -> Agent:
    """Build CRL for the given sizes. Networks come from ``goalax.networks``; losses from
    ``goalax.contrastive``, so every agent variant shares them."""
    config.validate()
    sa_encoder = MLP(
        out_dim=config.repr_dim,
        width=config.width,
        depth=config.depth,
        layer_norm=config.layer_norm,
        residual=config.residual,
    )
    goal_encoder = MLP(
        out_dim=config.repr_dim,
        width=config.width,
        depth=config.depth,
        layer_norm=config.layer_norm,
        residual=config.residual,
    )
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

    def init(key: jax.Array) -> CRLState:
        sa_key, g_key, actor_key = jax.random.split(key, 3)
        params = CRLParams(
            sa_encoder=sa_encoder.init(sa_key, jnp.zeros((1, state_dim + action_dim))),
            goal_encoder=goal_encoder.init(g_key, jnp.zeros((1, goal_dim))),
            actor=actor.init(actor_key, jnp.zeros((1, state_dim + goal_dim))),
            log_alpha=jnp.zeros(()),
        )
        return CRLState(
            params=params,
            critic_opt=critic_tx.init((params.sa_encoder, params.goal_encoder)),
            actor_opt=actor_tx.init(params.actor),
            alpha_opt=alpha_tx.init(params.log_alpha),
        )

    def critic_loss(sa_params, psi, batch):
        """Contrastive loss of ``φ(s, a)`` against the goal embeddings ``psi [B, repr_dim]``."""
        phi = sa_encoder.apply(
            sa_params, jnp.concatenate([batch["state_obs"], batch["action"]], axis=-1)
        )
        logits = contrastive.pairwise_logits(config.energy, phi, psi)
        loss, metrics = contrastive.contrastive_loss(config.loss, logits)
        loss = loss + config.logsumexp_penalty * contrastive.logsumexp_penalty(logits)
        return loss, metrics

    def actor_loss(actor_params, sa_params, psi, log_alpha, batch, key):
        obs = jnp.concatenate([batch["state_obs"], batch["goal"]], axis=-1)
        mean, log_std = actor.apply(actor_params, obs)
        action, log_prob = sample_tanh_gaussian(mean, log_std, key)
        phi = sa_encoder.apply(sa_params, jnp.concatenate([batch["state_obs"], action], axis=-1))
        score = contrastive.paired_logits(config.energy, phi, psi)
        alpha = jnp.exp(log_alpha)
        return jnp.mean(alpha * log_prob - score), log_prob

    def update(state: CRLState, batch: dict, key: jax.Array) -> tuple[CRLState, dict]:
        """Actor and α step against the critic as it was, then the critic step (the reference's
        order). Both see the same goal embeddings ``ψ(g)``: computed once, with a VJP that
        carries the critic's gradient back into the goal encoder."""
        p = state.params
        psi, psi_vjp = jax.vjp(lambda g: goal_encoder.apply(g, batch["goal"]), p.goal_encoder)

        (a_loss, log_prob), a_grads = jax.value_and_grad(actor_loss, has_aux=True)(
            p.actor, jax.lax.stop_gradient(p.sa_encoder), psi, p.log_alpha, batch, key
        )
        a_updates, actor_opt = actor_tx.update(a_grads, state.actor_opt, p.actor)
        actor_params = optax.apply_updates(p.actor, a_updates)

        entropy_gap = jax.lax.stop_gradient(-log_prob - target_entropy)
        alpha_grad = jax.grad(lambda la: jnp.mean(la * entropy_gap))(p.log_alpha)
        al_updates, alpha_opt = alpha_tx.update(alpha_grad, state.alpha_opt, p.log_alpha)
        log_alpha = optax.apply_updates(p.log_alpha, al_updates)

        (c_loss, c_metrics), (sa_grads, psi_grad) = jax.value_and_grad(
            critic_loss, argnums=(0, 1), has_aux=True
        )(p.sa_encoder, psi, batch)
        (g_grads,) = psi_vjp(psi_grad)
        critic = (p.sa_encoder, p.goal_encoder)
        c_updates, critic_opt = critic_tx.update((sa_grads, g_grads), state.critic_opt, critic)
        critic = optax.apply_updates(critic, c_updates)

        new_state = CRLState(
            params=CRLParams(critic[0], critic[1], actor_params, log_alpha),
            critic_opt=critic_opt,
            actor_opt=actor_opt,
            alpha_opt=alpha_opt,
        )
        metrics = {
            "critic_loss": c_loss,
            "actor_loss": a_loss,
            "alpha": jnp.exp(log_alpha),
            "entropy": -jnp.mean(log_prob),
            **{k: c_metrics[k] for k in ("logits_pos", "logits_neg", "categorical_accuracy")},
        }
        return new_state, metrics

    def act(params: CRLParams, obs: jax.Array, key: jax.Array, deterministic: bool) -> jax.Array:
        """``obs [..., state_dim + goal_dim] -> action [..., action_dim]`` in [-1, 1]."""
        mean, log_std = actor.apply(params.actor, obs)
        return policy_action(mean, log_std, key, deterministic)

    return Agent(
        init=init,
        update=update,
        act=act,
        metric_names=METRICS,
        data="contrastive",
        fields=("state_obs", "action", "next_goal"),
    )
