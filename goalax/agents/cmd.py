"""CMD, contrastive metric distillation (Myers, Zheng, Dragan, Levine, Eysenbach, "Learning
Temporal Distances: Contrastive Successor Features Can Provide a Metric Structure for
Decision-Making", ICML 2024): contrastive RL whose critic is a quasimetric.

The paper's successor distance ``d_SD(x, y) = log p(s_f = y | y) - log p(s_f = y | x)``
satisfies the triangle inequality, and a contrastive critic ``f(x, y)`` recovers it as
``f(y, y) - f(x, y)``. CMD-1 (the paper's one-step variant) therefore writes the critic as
``f(x, g) = c(g) - d(φ(x), ψ(g))``, a goal potential ``c`` minus a quasimetric ``d`` (MRN), and
trains it with CRL's contrastive loss, so that ``d`` itself is the learned temporal distance.
Here ``x = (s, a)``; goals live in the task's goal space, embedded by their own encoder ``ψ``.
The paper's code embeds both sides with one encoder, goals with another batch row's action,
so that a state is at distance 0 from itself whatever the action; with two encoders that
identity becomes the action-invariance term ``d(ψ(ŝ), φ(s, a)) -> 0`` (``ŝ``: the achieved goal
of ``s``), as in the same authors' TMD (Myers et al. 2025). On a batch of ``(s_i, a_i, g_i, ŝ_i)``::

    d_ij = d(φ(s_i, a_i), ψ(g_j)),   logits_ij = c(g_j) - d_ij
    L = contrastive(logits) + λ_lse mean_i (logsumexp_j logits_ij)^2
        + λ_inv mean_i d(ψ(ŝ_i), sg(φ(s_i, a_i)))

(``sg``: stop-gradient; the invariance trains ``ψ`` only.)

With the triangle inequality, ``d(φ(s, a), ψ(g)) <= d(φ(s, a), ψ(ŝ')) + d(φ(s', a'), ψ(g))``
for every next action ``a'``: the distance stays consistent over actions. The actor maximises
``-d(φ(s, π(s, g)), ψ(g))`` with goalax's entropy-regularised actor (``c(g)`` does not depend on
the action). ``c`` is one extra output of the goal encoder; everything else is CRL's
(``goalax.agents.crl``): encoders, update order, actor, sampler.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import jax
import jax.numpy as jnp

from goalax import contrastive
from goalax.agents import crl
from goalax.agents.base import Agent, SampleContext
from goalax.buffer import BufferState, GoalStrategy

#: The quasimetric energies of ``goalax.contrastive`` (energy = -distance).
Quasimetric = Literal["mrn", "iqe"]

METRICS = crl.METRICS + ("contrastive_loss", "invariance_loss", "potential")


@dataclass(frozen=True)
class CMDConfig:
    """CMD hyperparameters (sources in docs/agents.md)."""

    #: Default ``--prefill-steps`` per env: CRL's.
    PREFILL_STEPS: ClassVar[int] = 1000

    energy: Quasimetric = "mrn"
    """Quasimetric d(φ(s, a), ψ(g)) of the critic (the paper's: MRN)."""
    loss: crl.Loss = "infonce_sym"
    """Contrastive objective of the logits c(g_j) - d(φ(s_i, a_i), ψ(g_j))."""
    logsumexp_penalty: float = 0.1
    """Coefficient of the logsumexp² regulariser that pins the critic's scale."""
    invariance_coef: float = 1.0
    """Weight of the action-invariance term mean d(ψ(ŝ), φ(s, a)), ŝ the achieved goal of s."""
    repr_dim: int = 64
    """Dimension of φ(s, a) and ψ(g) (the goal encoder adds one output, the potential c(g))."""
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
        """Raise ValueError with a one-line fix for impossible settings (CRL's checks, and a
        non-negative invariance weight)."""
        crl.CRLConfig.validate(self)  # same field names, same constraints
        if self.invariance_coef < 0:
            raise ValueError(f"--invariance-coef must be >= 0, got {self.invariance_coef}")


def cmd_loss(
    config: CMDConfig,
    distances: jax.Array,
    potential: jax.Array,
    state_distances: jax.Array,
) -> tuple[jax.Array, dict]:
    """CMD's critic loss from ``distances [B, B]`` ``d(φ(s_i, a_i), ψ(g_j))``, the goals'
    ``potential [B]`` ``c(g_j)`` and ``state_distances [B]`` ``d(ψ(ŝ_i), sg(φ(s_i, a_i)))``:
    ``contrastive(c(g_j) - d_ij)`` with its logsumexp penalty, plus ``config.invariance_coef ×
    mean_i state_distances_i``. Returns the loss and its metrics."""
    logits = potential[None, :] - distances
    contrastive_loss, metrics = crl.contrastive_terms(config, logits)
    invariance = jnp.mean(state_distances)
    return contrastive_loss + config.invariance_coef * invariance, {
        **metrics,
        "contrastive_loss": contrastive_loss,
        "invariance_loss": invariance,
        "potential": jnp.mean(potential),
    }


def goal_rows(batch: dict) -> jax.Array:
    """The goal encoder's inputs ``[2B, goal_dim]``: the future goals, then the states' own
    achieved goals ``ŝ``."""
    return jnp.concatenate([batch["goal"], batch["state_goal"]], axis=0)


def split_goal_outputs(config: CMDConfig, outputs: jax.Array, num: int):
    """``(ψ(g) [B, repr_dim], c(g) [B], ψ(ŝ) [B, repr_dim])`` from the goal encoder's
    ``outputs [2B, repr_dim + 1]`` on ``goal_rows``."""
    psi = outputs[:, : config.repr_dim]
    return psi[:num], outputs[:num, config.repr_dim], psi[num:]


def critic_loss(nets: crl.CRLNets, sa_params: Any, outputs: jax.Array, batch: dict):
    """``cmd_loss`` of ``φ(s, a)`` against the goal encoder's ``outputs`` on ``goal_rows``."""
    config = nets.config
    psi, potential, psi_state = split_goal_outputs(config, outputs, batch["goal"].shape[0])
    phi = crl.sa_embedding(nets, sa_params, batch["state_obs"], batch["action"])
    distances = -contrastive.pairwise_logits(config.energy, phi, psi)
    # The invariance moves ψ(ŝ) only: its gradient into φ would pull φ(s, a) onto ψ(ŝ) for
    # every a, erase the action from φ and stall the actor (measured: docs/agents.md).
    state_distances = -contrastive.paired_logits(
        config.energy, psi_state, jax.lax.stop_gradient(phi)
    )
    return cmd_loss(config, distances, potential, state_distances)


def actor_score(nets: crl.CRLNets, phi: jax.Array, outputs: jax.Array) -> jax.Array:
    """``-d(φ(s_i, a_i), ψ(g_i))`` ``[B]``: the potential is constant in the action."""
    psi, _, _ = split_goal_outputs(nets.config, outputs, phi.shape[0])
    return contrastive.paired_logits(nets.config.energy, phi, psi)


def sample(config: CMDConfig, buf: BufferState, key: jax.Array, context: SampleContext) -> dict:
    """CRL's batch of ``(s, a, future goal)`` plus ``state_goal``, the achieved goal of ``s``."""
    if context.achieved_goal is None:
        raise ValueError("CMD needs the task's achieved_goal function (the goal of s itself)")
    batch = crl.sample(config, buf, key, context)
    return {**batch, "state_goal": context.achieved_goal(batch["state_obs"])}


def build_nets(config: CMDConfig, action_dim: int) -> crl.CRLNets:
    """CRL's networks, the goal encoder with one more output: ``[ψ(g), c(g)]``."""
    nets = crl.build_nets(config, action_dim)
    return nets._replace(goal_encoder=nets.goal_encoder.clone(out_dim=config.repr_dim + 1))


def make(config: CMDConfig, *, state_dim: int, goal_dim: int, action_dim: int) -> Agent:
    """Build CMD for the given sizes: CRL's networks (``build_nets``), update and actor, CMD's
    critic loss and action score."""
    config.validate()
    nets = build_nets(config, action_dim)
    update = functools.partial(
        crl.update, nets, goal_rows=goal_rows, loss_fn=critic_loss, score_fn=actor_score
    )
    return Agent(
        init=functools.partial(crl.init, nets, (state_dim, goal_dim, action_dim)),
        update=update,
        act=functools.partial(crl.act, nets),
        metric_names=METRICS + contrastive.extra_metric_names(config.loss),
        fields=("state_obs", "action", "next_goal"),
        sample=functools.partial(sample, config),
    )
