"""Contrastive RL (Eysenbach et al. 2022; JaxGCRL 2024): a critic f(φ(s,a), ψ(g)) trained to
classify which goal was reached in the future of (s, a), and a goal-conditioned actor that
maximises it.

The agent is three pure functions bundled in ``Agent``: ``init(key) -> CRLState``,
``update(state, batch, key) -> (state, metrics)`` and ``act(params, obs, key, deterministic)``,
plus ``sample``, which draws its batches from replay: ``state_obs [B, state_dim]``,
``action [B, action_dim]`` and ``goal [B, goal_dim]``, a future achieved goal of the same
episode (``goalax.relabel.contrastive_batch``). Each is a module-level function of ``CRLNets``
(the networks and optimisers ``make`` builds once).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from goalax import contrastive, relabel
from goalax.agents import entropy_actor
from goalax.agents.base import Agent, SampleContext, check_network_sizes, check_positive
from goalax.buffer import BufferState, GoalStrategy
from goalax.networks import MLP

Energy = Literal["l2", "l2_squared", "l1", "dot", "cosine", "mrn", "iqe"]
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

    #: Default ``--prefill-steps`` per env: the reference's ``min_replay_size``.
    PREFILL_STEPS: ClassVar[int] = 1000

    energy: Energy = "l2"
    """Critic energy f(φ, ψ); mrn and iqe are quasimetrics (-distance from φ to ψ)."""
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
    """γ of the discounted future-goal distribution."""
    goal_strategy: GoalStrategy = "geometric"
    """Future goals: discounted (geometric γ), uniform over the episode's future, or any state."""

    def validate(self) -> None:
        """Raise ValueError with a one-line fix for impossible settings."""
        check_network_sizes(self, ("repr_dim", "depth", "width", "actor_depth", "actor_width"))
        if self.energy == "mrn" and self.repr_dim % 2:
            raise ValueError(
                f"--repr-dim must be even with --energy mrn (half symmetric, half asymmetric), "
                f"got {self.repr_dim}"
            )
        components = contrastive.IQE_COMPONENTS
        if self.energy == "iqe" and self.repr_dim % components:
            raise ValueError(
                f"--repr-dim must be a multiple of {components} with --energy iqe "
                f"({components} components), got {self.repr_dim}"
            )
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
    actor_opt: entropy_actor.ActorOpt


METRICS = (
    "critic_loss",
    "actor_loss",
    "alpha",
    "entropy",
    "logits_pos",
    "logits_neg",
    "categorical_accuracy",
)


class CRLNets(NamedTuple):
    """What ``make`` builds once: the encoders, the actor, the critic's optimiser, the config
    (a ``CRLConfig``; TD-InfoNCE builds the same networks from its own config)."""

    config: Any
    sa_encoder: MLP
    goal_encoder: MLP
    actor: entropy_actor.EntropyActor
    critic_tx: optax.GradientTransformation


def metric_names(config: CRLConfig) -> tuple[str, ...]:
    """``METRICS``, plus the loss's own extra metrics (FlatNCE: its un-flattened value)."""
    return METRICS + contrastive.extra_metric_names(config.loss)


def build_nets(config: Any, action_dim: int) -> CRLNets:
    """φ and ψ encoders, the entropy actor and the critic's Adam from ``config``'s network and
    optimiser fields: a ``CRLConfig``, or a config with the same field names (TD-InfoNCE's)."""

    def encoder() -> MLP:
        return MLP(
            out_dim=config.repr_dim,
            width=config.width,
            depth=config.depth,
            layer_norm=config.layer_norm,
            residual=config.residual,
        )

    actor = entropy_actor.make(
        action_dim,
        width=config.actor_width,
        depth=config.actor_depth,
        layer_norm=config.actor_layer_norm,
        residual=config.actor_residual,
        actor_lr=config.actor_lr,
        alpha_lr=config.alpha_lr,
        target_entropy_scale=config.target_entropy_scale,
    )
    return CRLNets(config, encoder(), encoder(), actor, optax.adam(config.critic_lr))


def init(nets: CRLNets, sizes: tuple[int, int, int], key: jax.Array) -> CRLState:
    """Fresh parameters for ``sizes = (state_dim, goal_dim, action_dim)``."""
    state_dim, goal_dim, action_dim = sizes
    sa_dim, obs_dim = state_dim + action_dim, state_dim + goal_dim
    return init_state(nets, key, sa_dim=sa_dim, goal_dim=goal_dim, obs_dim=obs_dim)


def init_state(
    nets: CRLNets, key: jax.Array, *, sa_dim: int, goal_dim: int, obs_dim: int
) -> CRLState:
    """Fresh ``CRLState`` for φ inputs of ``sa_dim`` (TD-InfoNCE's φ also reads the goal), ψ
    inputs of ``goal_dim`` and actor observations of ``obs_dim``."""
    sa_key, g_key, actor_key = jax.random.split(key, 3)
    sa_params = nets.sa_encoder.init(sa_key, jnp.zeros((1, sa_dim)))
    g_params = nets.goal_encoder.init(g_key, jnp.zeros((1, goal_dim)))
    actor_params, log_alpha, actor_opt = entropy_actor.init(nets.actor, actor_key, obs_dim)
    return CRLState(
        params=CRLParams(sa_params, g_params, actor_params, log_alpha),
        critic_opt=nets.critic_tx.init((sa_params, g_params)),
        actor_opt=actor_opt,
    )


def sa_embedding(nets: CRLNets, sa_params: Any, state_obs: jax.Array, action: jax.Array):
    """``φ(s, a)``: ``[B, state_dim], [B, action_dim] -> [B, repr_dim]``."""
    return nets.sa_encoder.apply(sa_params, jnp.concatenate([state_obs, action], axis=-1))


def contrastive_terms(config: Any, logits: jax.Array) -> tuple[jax.Array, dict]:
    """``config.loss`` of the critic's ``logits [B, B]`` plus ``config.logsumexp_penalty`` ×
    the logsumexp² regulariser, and the loss's metrics (CRL's and CMD's critic objective)."""
    loss, metrics = contrastive.contrastive_loss(config.loss, logits)
    return loss + config.logsumexp_penalty * contrastive.logsumexp_penalty(logits), metrics


def critic_loss(nets: CRLNets, sa_params: Any, psi: jax.Array, batch: dict):
    """Contrastive loss (plus the logsumexp penalty) of ``φ(s, a)`` against the goal
    embeddings ``psi [B, repr_dim]``, and its metrics."""
    phi = sa_embedding(nets, sa_params, batch["state_obs"], batch["action"])
    return contrastive_terms(nets.config, contrastive.pairwise_logits(nets.config.energy, phi, psi))


def critic_step(nets: CRLNets, state: CRLState, batch: dict, psi, psi_vjp, loss_fn=critic_loss):
    """One Adam step of both encoders on ``loss_fn(nets, sa_params, psi, batch)``; ``psi_vjp``
    carries ``dL/dψ`` into the goal encoder."""
    p = state.params
    (loss, metrics), (sa_grads, psi_grad) = jax.value_and_grad(
        functools.partial(loss_fn, nets), argnums=(0, 1), has_aux=True
    )(p.sa_encoder, psi, batch)
    (g_grads,) = psi_vjp(psi_grad)
    critic = (p.sa_encoder, p.goal_encoder)
    updates, critic_opt = nets.critic_tx.update((sa_grads, g_grads), state.critic_opt, critic)
    return optax.apply_updates(critic, updates), critic_opt, {"critic_loss": loss, **metrics}


def goal_rows(batch: dict) -> jax.Array:
    """The goal encoder's inputs: CRL embeds the batch's goals ``[B, goal_dim]``."""
    return batch["goal"]


def actor_score(nets: CRLNets, phi: jax.Array, psi: jax.Array) -> jax.Array:
    """The actor's score of matched pairs, ``f(φ(s_i, a_i), ψ(g_i))`` ``[B]``."""
    return contrastive.paired_logits(nets.config.energy, phi, psi)


def update(
    nets: CRLNets,
    state: CRLState,
    batch: dict,
    key: jax.Array,
    *,
    goal_rows=goal_rows,
    loss_fn=critic_loss,
    score_fn=actor_score,
) -> tuple[CRLState, dict]:
    """Actor and α step against the critic as it was, then the critic step (the reference's
    order). Both see the same goal-encoder outputs ``ψ(goal_rows(batch))``: computed once, with
    a VJP that carries the critic's gradient back into the goal encoder. The keywords let an
    agent with CRL's networks embed more rows (CMD: also the states' own achieved goals), train
    on another loss and score actions its own way."""
    p = state.params
    psi, psi_vjp = jax.vjp(lambda g: nets.goal_encoder.apply(g, goal_rows(batch)), p.goal_encoder)

    def score(action):
        return score_fn(nets, sa_embedding(nets, p.sa_encoder, batch["state_obs"], action), psi)

    obs = jnp.concatenate([batch["state_obs"], batch["goal"]], axis=-1)
    actor_params, log_alpha, actor_opt, actor_metrics = entropy_actor.actor_step(
        nets.actor, p.actor, p.log_alpha, state.actor_opt, obs, score, key
    )
    critic, critic_opt, critic_metrics = critic_step(nets, state, batch, psi, psi_vjp, loss_fn)
    new_state = CRLState(
        params=CRLParams(critic[0], critic[1], actor_params, log_alpha),
        critic_opt=critic_opt,
        actor_opt=actor_opt,
    )
    return new_state, {**critic_metrics, **actor_metrics}


def act(nets: CRLNets, params: CRLParams, obs: jax.Array, key: jax.Array, deterministic: bool):
    """``obs [..., state_dim + goal_dim] -> action [..., action_dim]`` in [-1, 1]."""
    return entropy_actor.act(nets.actor, params.actor, obs, key, deterministic)


def sample(config: CRLConfig, buf: BufferState, key: jax.Array, context: SampleContext) -> dict:
    """A batch of ``(s, a, future goal)`` from replay, goals by ``config.goal_strategy`` (the
    discounted future by default); read by CRL, CMD and GCSL, whose configs share the two
    fields it reads (``discount``, ``goal_strategy``)."""
    return relabel.contrastive_batch(
        buf,
        key,
        context.batch_size,
        max_episode_length=context.max_episode_length,
        gamma=config.discount,
        strategy=config.goal_strategy,
    )


def make(config: CRLConfig, *, state_dim: int, goal_dim: int, action_dim: int) -> Agent:
    """Build CRL for the given sizes. Networks come from ``goalax.networks``, losses from
    ``goalax.contrastive`` and the actor from ``goalax.agents.entropy_actor``."""
    config.validate()
    nets = build_nets(config, action_dim)
    return Agent(
        init=functools.partial(init, nets, (state_dim, goal_dim, action_dim)),
        update=functools.partial(update, nets),
        act=functools.partial(act, nets),
        metric_names=metric_names(config),
        fields=("state_obs", "action", "next_goal"),
        sample=functools.partial(sample, config),
    )
