"""The tanh-Gaussian actor with an automatically tuned entropy temperature α (CRL and SAC).

Both agents train their policy the same way, only the score differs: actions
``a = tanh(mean + std ε)`` are reparameterised, the actor minimises
``E[α log π(a | s, g) - score(a)]`` (CRL: the critic's energy ``f(φ(s, a), ψ(g))``; SAC:
``min_k Q_k(s, g, a)``), and ``log α`` descends ``E[log α · (-log π(a | s, g) - H_target)]`` with
``H_target = -scale × action_dim`` (Haarnoja et al. 2018). Written once here so that both agents
act, explore and anneal α identically.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from goalax.networks import (
    KERNEL_INIT,
    Activation,
    Initializer,
    TanhGaussianActor,
    policy_action,
    sample_tanh_gaussian,
)

__all__ = ["ActorOpt", "EntropyActor", "act", "actor_step", "init", "make", "sample"]


@struct.dataclass
class ActorOpt:
    """Optimiser states of the actor and of ``log α``."""

    actor: Any
    alpha: Any


class EntropyActor(NamedTuple):
    """The static parts: the policy network, its optimisers and the target entropy."""

    module: TanhGaussianActor
    actor_tx: optax.GradientTransformation
    alpha_tx: optax.GradientTransformation
    target_entropy: float


def make(
    action_dim: int,
    *,
    width: int,
    depth: int,
    layer_norm: bool,
    residual: bool,
    actor_lr: float,
    alpha_lr: float,
    target_entropy_scale: float,
    kernel_init: Initializer = KERNEL_INIT,
    activation: Activation = "swish",
) -> EntropyActor:
    """An actor for ``action_dim`` actions with Adam on the policy and on ``log α``."""
    module = TanhGaussianActor(
        action_dim=action_dim,
        width=width,
        depth=depth,
        layer_norm=layer_norm,
        residual=residual,
        kernel_init=kernel_init,
        activation=activation,
    )
    return EntropyActor(
        module=module,
        actor_tx=optax.adam(actor_lr),
        alpha_tx=optax.adam(alpha_lr),
        target_entropy=-target_entropy_scale * action_dim,
    )


def init(actor: EntropyActor, key: jax.Array, obs_dim: int) -> tuple[Any, jax.Array, ActorOpt]:
    """``(policy params, log α = 0, optimiser states)`` for observations of ``obs_dim``."""
    params = actor.module.init(key, jnp.zeros((1, obs_dim)))
    log_alpha = jnp.zeros(())
    return params, log_alpha, ActorOpt(actor.actor_tx.init(params), actor.alpha_tx.init(log_alpha))


def sample(actor: EntropyActor, params: Any, obs: jax.Array, key: jax.Array):
    """Reparameterised ``(action [B, A], log π [B])`` for ``obs [B, obs_dim]``."""
    mean, log_std = actor.module.apply(params, obs)
    return sample_tanh_gaussian(mean, log_std, key)


def act(
    actor: EntropyActor, params: Any, obs: jax.Array, key: jax.Array, deterministic: bool
) -> jax.Array:
    """``obs [..., obs_dim] -> action [..., A]`` in [-1, 1]: the mode, or a sample."""
    mean, log_std = actor.module.apply(params, obs)
    return policy_action(mean, log_std, key, deterministic)


def actor_step(
    actor: EntropyActor,
    params: Any,
    log_alpha: jax.Array,
    opt: ActorOpt,
    obs: jax.Array,
    score: Callable[[jax.Array], jax.Array],
    key: jax.Array,
) -> tuple[Any, jax.Array, ActorOpt, dict]:
    """One Adam step of the actor on ``E[α log π - score(a)]``, then one of ``log α``.

    ``score`` maps actions ``[B, A]`` to ``[B]`` (higher is better); it is differentiated only
    through the action. Returns ``(params, log α, opt, metrics)`` with metrics ``actor_loss``,
    ``alpha`` (after the step) and ``entropy`` (``-mean log π`` of the sampled actions).
    """

    def loss(policy_params):
        action, log_prob = sample(actor, policy_params, obs, key)
        return jnp.mean(jnp.exp(log_alpha) * log_prob - score(action)), log_prob

    (actor_loss, log_prob), grads = jax.value_and_grad(loss, has_aux=True)(params)
    updates, actor_opt = actor.actor_tx.update(grads, opt.actor, params)
    params = optax.apply_updates(params, updates)

    # d/d log α of mean(log α · gap) is mean(gap).
    alpha_grad = jnp.mean(jax.lax.stop_gradient(-log_prob - actor.target_entropy))
    alpha_updates, alpha_opt = actor.alpha_tx.update(alpha_grad, opt.alpha, log_alpha)
    log_alpha = optax.apply_updates(log_alpha, alpha_updates)
    metrics = {
        "actor_loss": actor_loss,
        "alpha": jnp.exp(log_alpha),
        "entropy": -jnp.mean(log_prob),
    }
    return params, log_alpha, ActorOpt(actor_opt, alpha_opt), metrics
