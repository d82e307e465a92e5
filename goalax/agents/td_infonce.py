"""TD-InfoNCE (Zheng, Salakhutdinov, Eysenbach, "Contrastive Difference Predictive Coding",
ICLR 2024): contrastive RL whose critic is trained by temporal differences.

CRL classifies which goal was reached in the future of ``(s, a)`` from Monte Carlo futures of
one episode. TD-InfoNCE learns the same discounted occupancy ratio by bootstrapping: the future of
``(s, a)`` is the next state ``s'`` with weight ``1 - γ``, and with weight ``γ`` the future of
``(s', a')``, ``a' ~ π(· | s', g)``, which the target critic scores over the batch's goals. So it
can stitch pieces of different episodes. The critic is the paper's goal-conditioned one,
``f(s, a, g, s_f) = energy(φ(s, a, g), ψ(s_f))``: ``φ`` also reads the commanded goal ``g`` (the
occupancy belongs to the policy that pursues ``g``), ``ψ`` embeds a goal-space state ``s_f``.

On a batch of ``(s_i, a_i, s'_i, g_i)`` (``g_i`` from replay, ``--goal-strategy``), with
``γ_i = γ (1 - terminated_i)`` and ``a'_i ~ π(· | s'_i, g_i)``::

    L = mean_i [ (1 - γ_i) CE_i( f(s_i, a_i, g_i, s'_j) over j; target j = i )
                 + γ_i sum_j w_ij (-log softmax_j f(s_i, a_i, g_i, g_j)) ]
    w_ij = stop_gradient(softmax_j f̄(s'_i, a'_i, g_i, g_j))

with ``f̄`` the Polyak-averaged target critic (rate ``--tau``). A terminal ``s'`` is absorbing:
its future is ``s'`` itself, so the whole weight goes to the first term. The actor maximises
``log softmax_j f(s_i, π(s_i, g_i), g_i, g_j)`` at ``j = i`` (the paper's actor: the per-row
constant that InfoNCE leaves free cancels), with goalax's entropy-regularised actor.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import jax
import jax.numpy as jnp
import optax
from flax import struct

from goalax import contrastive, relabel
from goalax.agents import critics, crl, entropy_actor
from goalax.agents.base import Agent, SampleContext, check_network_sizes, check_positive
from goalax.buffer import BufferState, GoalStrategy

#: Energies of ``goalax.contrastive`` that need no constraint on ``--repr-dim``.
Energy = Literal["l2", "l2_squared", "l1", "dot", "cosine"]

#: Replay fields: ``s'`` for the next action and ``φ(s', a', g)``, its achieved goal for the
#: first term, and termination (an absorbing ``s'`` stops the bootstrap).
FIELDS = ("state_obs", "action", "next_goal", "next_state_obs", "terminated")

METRICS = (
    "critic_loss",
    "actor_loss",
    "alpha",
    "entropy",
    "logits_pos",
    "logits_neg",
    "categorical_accuracy",
    "next_state_loss",
    "bootstrap_loss",
    "weight_entropy",
)


@dataclass(frozen=True)
class TDInfoNCEConfig:
    """TD-InfoNCE hyperparameters (sources in docs/agents.md)."""

    #: Default ``--prefill-steps`` per env: CRL's (the official code waits for 10,000 transitions).
    PREFILL_STEPS: ClassVar[int] = 1000

    energy: Energy = "l2"
    """Critic energy f(φ(s, a, g), ψ(s_f)) (the official code: cosine, i.e. normalised dot)."""
    repr_dim: int = 64
    """Dimension of φ(s, a, g) and ψ(s_f)."""
    depth: int = 2
    """Hidden layers of each critic encoder (multiple of 4 with --residual)."""
    width: int = 256
    """Hidden units per layer of the critic encoders."""
    layer_norm: bool = False
    """LayerNorm after each hidden Dense layer of the critic."""
    residual: bool = False
    """Residual blocks of 4×(Dense→LayerNorm→swish) in the critic encoders (deep networks)."""
    actor_depth: int = 2
    """Hidden layers of the actor (multiple of 4 with --actor-residual)."""
    actor_width: int = 256
    """Hidden units per layer of the actor."""
    actor_layer_norm: bool = False
    """LayerNorm after each hidden Dense layer of the actor."""
    actor_residual: bool = False
    """Residual blocks of 4×(Dense→LayerNorm→swish) in the actor (independent of --residual)."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    alpha_lr: float = 3e-4
    """Adam learning rate of the entropy temperature."""
    target_entropy_scale: float = 0.5
    """Target entropy is -scale × action_dim."""
    discount: float = 0.99
    """γ of the TD target (and of the geometric goal strategy)."""
    tau: float = 0.005
    """Polyak rate of the target critic: target <- (1 - tau) target + tau online."""
    goal_strategy: GoalStrategy = "random_state"
    """Goals g, commanded and bootstrap candidates: any stored state (paper's) or a future one."""

    def validate(self) -> None:
        """Raise ValueError with a one-line fix for impossible settings."""
        check_network_sizes(self, ("repr_dim", "depth", "width", "actor_depth", "actor_width"))
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f"--discount must be in (0, 1), got {self.discount}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"--tau must be in (0, 1], got {self.tau}")
        check_positive(self, ("critic_lr", "actor_lr", "alpha_lr"))


@struct.dataclass
class TDInfoNCEState:
    params: crl.CRLParams  # sa_encoder is φ(s, a, g)
    target_critic: Any  # (φ, ψ) parameters, Polyak-averaged
    critic_opt: Any
    actor_opt: entropy_actor.ActorOpt


def td_infonce_loss(
    next_logits: jax.Array,
    goal_logits: jax.Array,
    target_logits: jax.Array,
    discounts: jax.Array,
) -> tuple[jax.Array, dict]:
    """The TD-InfoNCE loss on logit matrices (the paper's, with absorbing terminals), and its
    metrics.

    ``next_logits [B, B]``: ``f(s_i, a_i, g_i, s'_j)``; ``goal_logits [B, B]``:
    ``f(s_i, a_i, g_i, g_j)``; ``target_logits [B, B]``: ``f̄(s'_i, a'_i, g_i, g_j)``;
    ``discounts [B]``: ``γ (1 - terminated_i)``. Returns
    ``mean_i [(1 - γ_i) CE(next_logits_i, i) + γ_i CE(goal_logits_i, w_i)]`` with
    ``w = stop_gradient(softmax(target_logits, axis=1))``.
    """
    next_state_loss = jax.nn.logsumexp(next_logits, axis=1) - jnp.diagonal(next_logits)
    weights = jax.lax.stop_gradient(jax.nn.softmax(target_logits, axis=1))
    bootstrap_loss = -jnp.sum(weights * jax.nn.log_softmax(goal_logits, axis=1), axis=1)
    loss = jnp.mean((1.0 - discounts) * next_state_loss + discounts * bootstrap_loss)
    _, metrics = contrastive.contrastive_loss("infonce_forward", next_logits)
    log_weights = jax.nn.log_softmax(target_logits, axis=1)
    return loss, {
        **metrics,
        "next_state_loss": jnp.mean(next_state_loss),
        "bootstrap_loss": jnp.mean(bootstrap_loss),
        "weight_entropy": -jnp.mean(jnp.sum(weights * log_weights, axis=1)),
    }


def phi(
    nets: crl.CRLNets, sa_params: Any, state_obs: jax.Array, action: jax.Array, goal: jax.Array
) -> jax.Array:
    """``φ(s, a, g)``: ``[B, S], [B, A], [B, G] -> [B, repr_dim]``."""
    return nets.sa_encoder.apply(sa_params, jnp.concatenate([state_obs, action, goal], axis=-1))


def critic_loss(
    nets: crl.CRLNets, critic: Any, target_critic: Any, batch: dict, next_action: jax.Array
) -> tuple[jax.Array, dict]:
    """``td_infonce_loss`` of the critic ``(φ, ψ)`` params on ``batch`` with
    ``next_action [B, A] ~ π(· | s', g)``; the importance weights come from ``target_critic``."""
    energy = nets.config.energy
    sa_params, g_params = critic
    target_sa, target_g = target_critic
    goal = batch["goal"]
    phi_now = phi(nets, sa_params, batch["state_obs"], batch["action"], goal)
    psi_next = nets.goal_encoder.apply(g_params, batch["next_goal"])
    psi_goal = nets.goal_encoder.apply(g_params, goal)
    phi_next = phi(nets, target_sa, batch["next_state_obs"], next_action, goal)
    target_logits = contrastive.pairwise_logits(
        energy, phi_next, nets.goal_encoder.apply(target_g, goal)
    )
    discounts = nets.config.discount * (1.0 - batch["terminated"])
    return td_infonce_loss(
        contrastive.pairwise_logits(energy, phi_now, psi_next),
        contrastive.pairwise_logits(energy, phi_now, psi_goal),
        target_logits,
        discounts,
    )


def actor_score(nets: crl.CRLNets, critic: Any, batch: dict):
    """``action [B, A] -> log softmax_j f(s_i, action_i, g_i, g_j)`` at ``j = i``, ``[B]``."""
    sa_params, g_params = critic
    psi_goal = nets.goal_encoder.apply(g_params, batch["goal"])

    def score(action: jax.Array) -> jax.Array:
        phi_now = phi(nets, sa_params, batch["state_obs"], action, batch["goal"])
        logits = contrastive.pairwise_logits(nets.config.energy, phi_now, psi_goal)
        return jnp.diagonal(jax.nn.log_softmax(logits, axis=1))

    return score


def update(
    nets: crl.CRLNets, state: TDInfoNCEState, batch: dict, key: jax.Array
) -> tuple[TDInfoNCEState, dict]:
    """The critic step and the actor and α step, both computed from the state as it was (the
    official code's order), then the target critic's Polyak step."""
    next_key, actor_key = jax.random.split(key)
    p = state.params
    critic = (p.sa_encoder, p.goal_encoder)
    obs = jnp.concatenate([batch["state_obs"], batch["goal"]], axis=-1)
    next_obs = jnp.concatenate([batch["next_state_obs"], batch["goal"]], axis=-1)
    next_action, _ = entropy_actor.sample(nets.actor, p.actor, next_obs, next_key)
    (loss, critic_metrics), grads = jax.value_and_grad(
        functools.partial(critic_loss, nets), has_aux=True
    )(critic, state.target_critic, batch, next_action)
    updates, critic_opt = nets.critic_tx.update(grads, state.critic_opt, critic)
    new_critic = optax.apply_updates(critic, updates)

    score = actor_score(nets, critic, batch)
    actor_params, log_alpha, actor_opt, actor_metrics = entropy_actor.actor_step(
        nets.actor, p.actor, p.log_alpha, state.actor_opt, obs, score, actor_key
    )
    new_state = TDInfoNCEState(
        params=crl.CRLParams(new_critic[0], new_critic[1], actor_params, log_alpha),
        target_critic=critics.polyak(state.target_critic, new_critic, nets.config.tau),
        critic_opt=critic_opt,
        actor_opt=actor_opt,
    )
    metrics = {"critic_loss": loss, **critic_metrics, **actor_metrics}
    return new_state, {name: metrics[name] for name in METRICS}


def init(nets: crl.CRLNets, sizes: tuple[int, int, int], key: jax.Array) -> TDInfoNCEState:
    """Fresh parameters for ``sizes = (state_dim, goal_dim, action_dim)``; the target critic
    starts as a copy of the critic."""
    state_dim, goal_dim, action_dim = sizes
    base = crl.init_state(
        nets,
        key,
        sa_dim=state_dim + action_dim + goal_dim,
        goal_dim=goal_dim,
        obs_dim=state_dim + goal_dim,
    )
    return TDInfoNCEState(
        params=base.params,
        target_critic=(base.params.sa_encoder, base.params.goal_encoder),
        critic_opt=base.critic_opt,
        actor_opt=base.actor_opt,
    )


def sample(config: TDInfoNCEConfig, buf: BufferState, key: jax.Array, context: SampleContext):
    """``FIELDS`` of uniformly drawn transitions and a goal ``[B, G]`` for each from replay."""
    now, goal = relabel.future_goal_batch(
        buf,
        key,
        context.batch_size,
        max_episode_length=context.max_episode_length,
        gamma=config.discount,
        strategy=config.goal_strategy,
    )
    return {**{name: now[name] for name in FIELDS}, "goal": goal}


def make(config: TDInfoNCEConfig, *, state_dim: int, goal_dim: int, action_dim: int) -> Agent:
    """Build TD-InfoNCE for the given sizes: CRL's encoders and entropy actor
    (``goalax.agents.crl.build_nets``), a target critic, the loss above."""
    config.validate()
    nets = crl.build_nets(config, action_dim)
    return Agent(
        init=functools.partial(init, nets, (state_dim, goal_dim, action_dim)),
        update=functools.partial(update, nets),
        act=functools.partial(crl.act, nets),
        metric_names=METRICS,
        fields=FIELDS,
        sample=functools.partial(sample, config),
    )
