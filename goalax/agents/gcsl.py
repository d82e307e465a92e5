"""Goal-conditioned supervised learning, GCSL (Ghosh, Gupta, Reddy, Fu, Devin, Eysenbach, Levine,
"Learning to Reach Goals via Iterated Supervised Learning", ICLR 2021).

Every trajectory is a demonstration of how to reach the states it visited. GCSL relabels each
stored ``(s_t, a_t)`` with ``g``, the achieved goal of a later state of the same episode, and
maximises ``log π(a_t | s_t, g)``: plain maximum likelihood, no critic, no reward. Acting with
the improved policy collects better data, which the next updates imitate. On a fixed dataset the
same objective is goal-conditioned behavioural cloning (GCBC).

The policy is goalax's tanh-Gaussian actor with a learned, state-dependent standard deviation.
Only actions ``a in (-1, 1)`` are stored, so the likelihood is taken of
``u = atanh(clip(a, ±(1 - 1e-6)))`` under the pre-tanh Gaussian ``N(mean, std)`` (shared with PPO:
``networks.gaussian_log_prob``). The tanh Jacobian ``-sum log(1 - a²)`` does not depend on the
parameters, so dropping it leaves the gradient of ``log π`` unchanged.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from goalax.agents import crl
from goalax.agents.base import Agent, check_network_sizes, check_positive
from goalax.agents.critics import policy_obs
from goalax.buffer import GoalStrategy
from goalax.networks import TanhGaussianActor, gaussian_entropy, gaussian_log_prob, policy_action


@dataclass(frozen=True)
class GCSLConfig:
    """GCSL hyperparameters (learning rate from the official code, goals from the paper)."""

    #: Default ``--prefill-steps`` per env: none; the policy learns from its first data.
    PREFILL_STEPS: ClassVar[int] = 0

    learning_rate: float = 5e-4
    """Adam learning rate of the policy (the official GCSL code's)."""
    goal_strategy: GoalStrategy = "uniform"
    """Relabelled goals: uniform over the episode's future (the paper), discounted (geometric γ),
    or any stored state."""
    discount: float = 0.99
    """γ of the geometric goal strategy (read only with --goal-strategy geometric)."""
    actor_depth: int = 2
    """Hidden layers of the policy (multiple of 4 with --actor-residual)."""
    actor_width: int = 256
    """Hidden units per layer of the policy."""
    actor_layer_norm: bool = False
    """LayerNorm after each hidden Dense layer of the policy."""
    actor_residual: bool = False
    """Residual blocks of 4×(Dense→LayerNorm→swish) in the policy."""

    def validate(self) -> None:
        """Raise ValueError with a one-line fix for impossible settings."""
        check_network_sizes(self, ("actor_depth", "actor_width"))
        check_positive(self, ("learning_rate",))
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f"--discount must be in (0, 1), got {self.discount}")


@struct.dataclass
class GCSLParams:
    actor: Any


@struct.dataclass
class GCSLState:
    params: GCSLParams
    opt: Any


#: ``actor_loss``: mean negative log-likelihood of the stored actions (pre-tanh, see above);
#: ``entropy``: mean entropy of the pre-tanh Gaussian (how much the policy still explores).
METRICS = ("actor_loss", "entropy")


class GCSLNets(NamedTuple):
    """What ``make`` builds once: the policy network and its optimiser."""

    actor: TanhGaussianActor
    tx: optax.GradientTransformation


def build_nets(config: GCSLConfig, action_dim: int) -> GCSLNets:
    actor = TanhGaussianActor(
        action_dim=action_dim,
        width=config.actor_width,
        depth=config.actor_depth,
        layer_norm=config.actor_layer_norm,
        residual=config.actor_residual,
    )
    return GCSLNets(actor, optax.adam(config.learning_rate))


def init(nets: GCSLNets, obs_dim: int, key: jax.Array) -> GCSLState:
    """Fresh policy parameters for observations ``concat(state_obs, goal)`` of ``obs_dim``."""
    actor = nets.actor.init(key, jnp.zeros((1, obs_dim)))
    return GCSLState(params=GCSLParams(actor), opt=nets.tx.init(actor))


def loss_fn(nets: GCSLNets, actor_params: Any, batch: dict) -> tuple[jax.Array, dict]:
    """``-mean_B log N(atanh(a_t); mean(s_t, g), std(s_t, g))`` over a relabelled batch."""
    mean, log_std = nets.actor.apply(actor_params, policy_obs(batch["state_obs"], batch["goal"]))
    nll = -jnp.mean(gaussian_log_prob(mean, log_std, batch["action"]))
    return nll, {"actor_loss": nll, "entropy": jnp.mean(gaussian_entropy(log_std))}


def update(nets: GCSLNets, state: GCSLState, batch: dict, key: jax.Array) -> tuple[GCSLState, dict]:
    """One Adam step on the likelihood of the batch's actions (deterministic: ``key`` unused)."""
    del key
    actor = state.params.actor
    grads, metrics = jax.grad(functools.partial(loss_fn, nets), has_aux=True)(actor, batch)
    updates, opt = nets.tx.update(grads, state.opt, actor)
    return GCSLState(GCSLParams(optax.apply_updates(actor, updates)), opt), metrics


def act(
    nets: GCSLNets, params: GCSLParams, obs: jax.Array, key: jax.Array, deterministic: bool
) -> jax.Array:
    """``obs [..., state_dim + goal_dim] -> action [..., action_dim]`` in [-1, 1]: a sample of
    the policy (collection explores with its own noise), or ``tanh(mean)`` when deterministic."""
    mean, log_std = nets.actor.apply(params.actor, obs)
    return policy_action(mean, log_std, key, deterministic)


def make(config: GCSLConfig, *, state_dim: int, goal_dim: int, action_dim: int) -> Agent:
    """Build GCSL for the given sizes: a replay agent whose update is supervised learning."""
    config.validate()
    nets = build_nets(config, action_dim)
    return Agent(
        init=functools.partial(init, nets, state_dim + goal_dim),
        update=functools.partial(update, nets),
        act=functools.partial(act, nets),
        metric_names=METRICS,
        fields=("state_obs", "action", "next_goal"),
        sample=functools.partial(crl.sample, config),  # CRL's batch: (s, a, future goal)
    )
