"""Goal-conditioned implicit Q-learning, GCIQL: IQL (Kostrikov, Nair, Levine, "Offline
Reinforcement Learning with Implicit Q-Learning", ICLR 2022) with goals, as the baseline of
OGBench (Park, Frans, Eysenbach, Levine, "OGBench: Benchmarking Offline Goal-Conditioned RL",
ICLR 2025), trained here online from goalax's replay buffer.

IQL never evaluates the critic at actions the data does not contain: a value ``V(s, g)`` is
fitted to an upper expectile of the target critic over the stored actions, and the critic
bootstraps from that value instead of from a maximum over actions.

- value: ``L_V = E[|τ - 1(u < 0)| u²]``, ``u = min_k Q̄_k(s, g, a) - V(s, g)`` (expectile τ);
- critic: ``Q_1, Q_2(s, g, a)`` regress to ``y = r + γ (1 - terminated) V(s', g)``;
- actor (OGBench's DDPG+BC, the option that needs no behaviour density and so suits online
  data): a deterministic ``π(s, g) = tanh(MLP(s, g))`` minimises
  ``-E[Q(s, g, π)] / (E|Q(s, g, π)| + 1e-6) + α E[½ ||π(s, g) - a||²]`` with
  ``Q = min_k Q_k`` and the normaliser held constant; ``½ ||π - a||²`` is ``-log N(a; π, I)``
  up to a constant, OGBench's behaviour-cloning term for its unit-variance actor, so α means
  what it means there.

The steps run in IQL's order: value, then the critic towards the updated value, then the actor;
the target critic moves by Polyak averaging. Value and critic goals come from one mixture (hindsight
goals with ``--relabel-fraction``, else the episode's own goal), the actor's from another
(``--actor-relabel-fraction``), as OGBench samples separate value and actor goals. Rewards are
the task's sparse success for the goal actually used (``goalax.relabel.her_batch``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from goalax.agents.base import Agent, SampleContext
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
from goalax.buffer import BufferState
from goalax.fields import flag
from goalax.networks import LECUN_UNIFORM, MLP
from goalax.relabel import HERStrategy

#: Keeps the DDPG term finite while every ``Q`` is still ~0 (as OGBench; sparse 0/1 rewards start
#: there).
Q_SCALE_EPS = 1e-6

#: What the actor's batch keeps of its own sample (``actor_`` + key in the update's batch).
ACTOR_KEYS = ("state_obs", "goal", "action")


@dataclass(frozen=True)
class GCIQLConfig(OffPolicyConfig):
    """GCIQL hyperparameters: the shared off-policy ones (OGBench's defaults where it has one),
    plus the expectile, the behaviour-cloning weight, the actor's goals and exploration."""

    her: bool = True
    """Relabel goals with achieved goals of the same episode (OGBench's GCIQL always does)."""
    relabel_fraction: float = 0.7
    """Fraction of the value/critic batch with a hindsight goal (OGBench: 0.2 current + 0.5
    future state); the rest keeps the episode's own goal (OGBench: 0.3 random states)."""
    goal_strategy: HERStrategy = "geometric"
    """Hindsight goals of the value/critic batch: discounted future (OGBench's geometric
    sampling), uniform future, any stored state, or the episode's final one."""
    layer_norm: bool = True
    """LayerNorm after each hidden Dense layer of the critics and the value (OGBench: on)."""
    expectile: float = 0.9
    """τ of the value's expectile regression towards the target critic (OGBench: 0.9)."""
    alpha: float = 0.3
    """Weight of the actor's behaviour cloning, α·½||π(s, g) - a||² (OGBench's default 0.3)."""
    actor_goal_strategy: HERStrategy = "uniform"
    """Hindsight goals of the actor's batch (OGBench: uniform over the trajectory's future)."""
    actor_relabel_fraction: float = 1.0
    """Fraction of the actor's batch with a hindsight goal (OGBench: 1.0)."""
    exploration_noise: float = 0.2
    """Std of the Gaussian noise added to the actor's action when collecting data."""

    def validate(self) -> None:
        super().validate()
        if not 0.0 < self.expectile < 1.0:
            raise ValueError(f"--expectile must be in (0, 1), got {self.expectile}")
        if not 0.0 <= self.actor_relabel_fraction <= 1.0:
            raise ValueError(
                f"--actor-relabel-fraction must be in [0, 1], got {self.actor_relabel_fraction}"
            )
        for name in ("alpha", "exploration_noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"{flag(name)} must be >= 0, got {getattr(self, name)}")


@struct.dataclass
class GCIQLParams:
    actor: Any
    critic: Any  # TwinQ variables, leaves [2, ...]
    value: Any


@struct.dataclass
class GCIQLState:
    params: GCIQLParams
    target_critic: Any
    critic_opt: Any
    value_opt: Any
    actor_opt: Any


#: ``bc_loss``: the actor's α·½||π - a||² term; ``v_mean``: mean V(s, g) before the value step.
METRICS = (
    "critic_loss",
    "value_loss",
    "actor_loss",
    "bc_loss",
    "q_mean",
    "v_mean",
    "relabelled_fraction",
)


class GCIQLNets(NamedTuple):
    """What ``make`` builds once: the twin critic, value and actor networks and their optimisers
    (``--critic-lr`` trains both the critic and the value, as OGBench's one learning rate)."""

    config: GCIQLConfig
    twin_q: TwinQ
    value: MLP
    actor: MLP
    critic_tx: optax.GradientTransformation
    value_tx: optax.GradientTransformation
    actor_tx: optax.GradientTransformation


def build_nets(config: GCIQLConfig, action_dim: int) -> GCIQLNets:
    mlp = functools.partial(MLP, kernel_init=LECUN_UNIFORM, activation=config.activation)
    value = mlp(
        out_dim=1,
        width=config.width,
        depth=config.depth,
        layer_norm=config.layer_norm,
        residual=config.residual,
    )
    actor = mlp(
        out_dim=action_dim,
        width=config.actor_width,
        depth=config.actor_depth,
        layer_norm=config.actor_layer_norm,
        residual=config.actor_residual,
    )
    critic_tx, value_tx = optax.adam(config.critic_lr), optax.adam(config.critic_lr)
    return GCIQLNets(
        config, make_twin_q(config), value, actor, critic_tx, value_tx, optax.adam(config.actor_lr)
    )


def state_value(nets: GCIQLNets, value_params: Any, state_obs: jax.Array, goal: jax.Array):
    """``V(s, g)``: ``[B, S], [B, G] -> [B]``."""
    return nets.value.apply(value_params, policy_obs(state_obs, goal))[..., 0]


def mu(nets: GCIQLNets, actor_params: Any, state_obs: jax.Array, goal: jax.Array) -> jax.Array:
    """The deterministic policy ``tanh(actor(s, g))``, ``[B, A]``."""
    return jnp.tanh(nets.actor.apply(actor_params, policy_obs(state_obs, goal)))


def init(nets: GCIQLNets, sizes: tuple[int, int, int], key: jax.Array) -> GCIQLState:
    """Fresh parameters for ``sizes = (state_dim, goal_dim, action_dim)``."""
    state_dim, goal_dim, action_dim = sizes
    actor_key, critic_key, value_key = jax.random.split(key, 3)
    state_obs, goal = jnp.zeros((1, state_dim)), jnp.zeros((1, goal_dim))
    obs = policy_obs(state_obs, goal)
    params = GCIQLParams(
        actor=nets.actor.init(actor_key, obs),
        critic=nets.twin_q.init(critic_key, state_obs, goal, jnp.zeros((1, action_dim))),
        value=nets.value.init(value_key, obs),
    )
    return GCIQLState(
        params=params,
        target_critic=params.critic,
        critic_opt=nets.critic_tx.init(params.critic),
        value_opt=nets.value_tx.init(params.value),
        actor_opt=nets.actor_tx.init(params.actor),
    )


def expectile_loss(diff: jax.Array, expectile: float) -> jax.Array:
    """``mean_b |τ - 1(u_b < 0)| u_b²`` for ``diff = u [B]``: under-estimates (``u > 0``) weigh
    τ, over-estimates ``1 - τ``, so for τ > ½ the fit sits above the mean (IQL, eq. 2)."""
    weight = jnp.where(diff >= 0, expectile, 1.0 - expectile)
    return jnp.mean(weight * jnp.square(diff))


def ddpg_bc_loss(
    q: jax.Array, policy_action: jax.Array, data_action: jax.Array, alpha: float
) -> tuple[jax.Array, jax.Array]:
    """``(loss, bc)``: ``-mean q / (mean |q| + eps) + bc``, ``bc = α mean ½||π - a||²``.

    ``q [B]`` is the critic at the policy's actions ``policy_action [B, A]``; dividing by its
    (constant) mean magnitude makes α independent of the reward scale (OGBench's DDPG+BC).
    """
    scale = jax.lax.stop_gradient(jnp.mean(jnp.abs(q)) + Q_SCALE_EPS)
    bc = alpha * jnp.mean(0.5 * jnp.sum(jnp.square(policy_action - data_action), axis=-1))
    return -jnp.mean(q) / scale + bc, bc


def value_objective(
    nets: GCIQLNets, value_params: Any, target_critic: Any, batch: dict
) -> tuple[jax.Array, jax.Array]:
    """``(L_V, V [B])``: expectile regression of ``V(s, g)`` to ``min_k Q̄_k(s, g, a)``."""
    target_q = nets.twin_q.apply(target_critic, batch["state_obs"], batch["goal"], batch["action"])
    v = state_value(nets, value_params, batch["state_obs"], batch["goal"])
    diff = jax.lax.stop_gradient(jnp.min(target_q, axis=0)) - v
    return expectile_loss(diff, nets.config.expectile), v


def critic_target(nets: GCIQLNets, value_params: Any, batch: dict) -> jax.Array:
    """``y = r + γ (1 - terminated) V(s', g)`` ``[B]``, without gradient."""
    next_v = state_value(nets, value_params, batch["next_state_obs"], batch["goal"])
    return td_target(batch["reward"], batch["terminated"], next_v, nets.config.discount)


def actor_objective(
    nets: GCIQLNets, actor_params: Any, critic: Any, batch: dict
) -> tuple[jax.Array, jax.Array]:
    """``(loss, bc)`` of DDPG+BC on the actor's batch (``actor_*`` keys), ``Q = min_k Q_k``."""
    state_obs, goal = batch["actor_state_obs"], batch["actor_goal"]
    action = mu(nets, actor_params, state_obs, goal)
    q = jnp.min(nets.twin_q.apply(critic, state_obs, goal, action), axis=0)
    return ddpg_bc_loss(q, action, batch["actor_action"], nets.config.alpha)


def adam_step(tx: optax.GradientTransformation, params: Any, opt_state: Any, grads: Any):
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def update(
    nets: GCIQLNets, state: GCIQLState, batch: dict, key: jax.Array
) -> tuple[GCIQLState, dict]:
    """Value step, critic step towards the updated value, actor step on ``--actor-critic``'s
    critic, Polyak step of the target critic. Deterministic: ``key`` is unused."""
    del key
    p = state.params
    (v_loss, v), v_grads = jax.value_and_grad(
        functools.partial(value_objective, nets), has_aux=True
    )(p.value, state.target_critic, batch)
    value, value_opt = adam_step(nets.value_tx, p.value, state.value_opt, v_grads)

    target = critic_target(nets, value, batch)
    critic, critic_opt, c_loss, q_mean = critic_step(
        nets.twin_q, nets.critic_tx, p.critic, state.critic_opt, batch, target
    )

    climbed = actor_critic(nets.config, p.critic, critic)
    (a_loss, bc), a_grads = jax.value_and_grad(
        functools.partial(actor_objective, nets), has_aux=True
    )(p.actor, climbed, batch)
    actor, actor_opt = adam_step(nets.actor_tx, p.actor, state.actor_opt, a_grads)

    new_state = GCIQLState(
        params=GCIQLParams(actor=actor, critic=critic, value=value),
        target_critic=polyak(state.target_critic, critic, nets.config.tau),
        critic_opt=critic_opt,
        value_opt=value_opt,
        actor_opt=actor_opt,
    )
    metrics = {
        "critic_loss": c_loss,
        "value_loss": v_loss,
        "actor_loss": a_loss,
        "bc_loss": bc,
        "q_mean": q_mean,
        "v_mean": jnp.mean(v),
        "relabelled_fraction": jnp.mean(batch["relabelled"]),
    }
    return new_state, metrics


def act(nets: GCIQLNets, params: GCIQLParams, obs: jax.Array, key: jax.Array, deterministic: bool):
    """``obs [..., state_dim + goal_dim] -> action [..., action_dim]`` in [-1, 1]; collection
    adds Gaussian noise of std ``exploration_noise`` (OGBench, offline, collects nothing)."""
    action = jnp.tanh(nets.actor.apply(params.actor, obs))
    if deterministic:
        return action
    noise = nets.config.exploration_noise * jax.random.normal(key, action.shape, action.dtype)
    return jnp.clip(action + noise, -1.0, 1.0)


def sample(config: GCIQLConfig, buf: BufferState, key: jax.Array, context: SampleContext) -> dict:
    """The value/critic batch of ``critics.her_sample`` plus an actor batch ``actor_state_obs,
    actor_goal, actor_action`` of other transitions with goals from the actor's mixture."""
    value_key, actor_key = jax.random.split(key)
    batch = her_sample(config, buf, value_key, context)
    actor = her_sample(
        config,
        buf,
        actor_key,
        context,
        strategy=config.actor_goal_strategy,
        relabel_fraction=config.actor_relabel_fraction,
    )
    return {**batch, **{f"actor_{name}": actor[name] for name in ACTOR_KEYS}}


def make(config: GCIQLConfig, *, state_dim: int, goal_dim: int, action_dim: int) -> Agent:
    """Build GCIQL for the given sizes."""
    config.validate()
    nets = build_nets(config, action_dim)
    return Agent(
        init=functools.partial(init, nets, (state_dim, goal_dim, action_dim)),
        update=functools.partial(update, nets),
        act=functools.partial(act, nets),
        metric_names=METRICS,
        fields=HER_FIELDS,
        sample=functools.partial(sample, config),
    )
