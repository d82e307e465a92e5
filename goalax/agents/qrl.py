"""Quasimetric RL, QRL (Wang, Torralba, Isola, Zhang, "Optimal Goal-Reaching Reinforcement
Learning via Quasimetric Learning", ICML 2023).

QRL learns the optimal cost-to-go ``d*(s, g)`` (steps, each step costing 1) as a quasimetric
``d(s, g) = IQE(P(f(s)), P(h(g)))``: it spreads random pairs apart while no observed transition
may cost more than one step,

    max  E_{s, g random}[φ(d(s, g))]   s.t.   E_{(s, a, s')}[relu(d(s, s') - 1)²] ≤ ε²,

with ``φ(d) = -softplus(offset - d; β)`` (increasing, bounded above: pairs already farther than
``offset`` stop pulling) and the constraint enforced by a Lagrange multiplier ``λ ≥ 0``
(``λ = softplus(raw λ)``) that ascends while the constraint is violated. By the triangle
inequality, every distance is at most the number of steps of any path, so pushing them up makes
them the shortest-path length.

goalax goals are achieved goals (``goal_dim ≤ state_dim``), not states, so states and goals
have their own encoders ``f`` (states) and ``h`` (goals) into one latent space; the projector
``P`` and IQE are shared. The constraint holds on two kinds of one-step pairs: ``(f(s), f(s'))``
(state to state, which chains steps through the triangle inequality) and ``(f(s), h(φ(s')))``
(state to the achieved goal of its next state, which anchors goal latents): so ``d(f(s),
h(g)) ≤ k`` whenever ``g`` is achieved ``k`` steps after ``s``. The push pairs states with
random goals ``h(g)``: the distance acting needs.

Acting follows the paper: a latent dynamics ``T(z, a) = z + MLP(z, a)`` is trained so that
``T(f(s), a)`` and ``f(s')`` are quasimetrically close in both directions, and the
entropy-regularised actor (``entropy_actor``) maximises ``-d(T(f(s), π(s, g)), h(g))``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from goalax import contrastive, relabel
from goalax.agents import entropy_actor
from goalax.agents.base import Agent, SampleContext, check_network_sizes, check_positive
from goalax.buffer import BufferState, GoalStrategy
from goalax.fields import flag
from goalax.networks import MLP, Activation

#: Cost of one environment step: distances are counted in steps.
STEP_COST = 1.0
#: The official code's initialisation (Glorot uniform weights, zero biases).
GLOROT_UNIFORM = nn.initializers.xavier_uniform()


@dataclass(frozen=True)
class QRLConfig:
    """QRL hyperparameters (defaults: the official code's online GCRL settings)."""

    #: Default ``--prefill-steps`` per env (the official code prefills 200 episodes).
    PREFILL_STEPS: ClassVar[int] = 1000

    latent_dim: int = 128
    """Size of the latents f(s), h(g) where the dynamics model acts."""
    iqe_dim: int = 2048
    """Size of the projected latents that IQE reads (split into --iqe-components groups)."""
    iqe_components: int = 64
    """Components of IQE; their distances are combined by a learned max-mean."""
    depth: int = 2
    """Hidden layers of the encoders f, h and of the latent dynamics T."""
    width: int = 512
    """Hidden units per layer of the encoders, the projector and the dynamics."""
    projector_depth: int = 1
    """Hidden layers of the projector P from latents to IQE's input."""
    layer_norm: bool = False
    """LayerNorm after each hidden Dense layer of the encoders, projector and dynamics."""
    residual: bool = False
    """Residual blocks of 4×(Dense→LayerNorm→swish) in the encoders and dynamics (deep nets)."""
    actor_depth: int = 2
    """Hidden layers of the actor (multiple of 4 with --actor-residual)."""
    actor_width: int = 512
    """Hidden units per layer of the actor."""
    actor_layer_norm: bool = False
    """LayerNorm after each hidden Dense layer of the actor."""
    actor_residual: bool = False
    """Residual blocks of 4×(Dense→LayerNorm→swish) in the actor."""
    activation: Activation = "relu"
    """Hidden activation of every plain network (the official code's is relu)."""
    softplus_beta: float = 0.1
    """β of φ(d) = -softplus(offset - d; β): smaller is smoother."""
    softplus_offset: float = 15.0
    """Distance beyond which φ saturates: above most true distances of random pairs."""
    epsilon: float = 0.25
    """ε of the constraint E[relu(d(s, s') - 1)²] ≤ ε²."""
    init_lagrange_multiplier: float = 0.01
    """Initial λ of the constraint."""
    dynamics_weight: float = 0.1
    """Weight of the latent dynamics loss E[d(T(z, a), z')² + d(z', T(z, a))²] / 2."""
    critic_lr: float = 1e-4
    """Adam learning rate of the encoders, projector, IQE max-mean and dynamics."""
    lagrange_lr: float = 1e-2
    """Adam learning rate of λ's dual ascent."""
    actor_lr: float = 3e-5
    """Adam learning rate of the actor."""
    alpha_lr: float = 3e-4
    """Adam learning rate of the entropy temperature."""
    target_entropy_scale: float = 1.0
    """Target entropy is -scale × action_dim."""
    exploration_noise: float = 0.3
    """Std of Gaussian noise added to the sampled action when collecting data."""
    goal_strategy: GoalStrategy = "random_state"
    """Goals of the push and of half the actor's batch: any stored state, or a future one."""
    discount: float = 0.99
    """γ of the geometric future goals of the other half of the actor's batch."""

    def validate(self) -> None:
        """Raise ValueError with a one-line fix for impossible settings."""
        sizes = ("latent_dim", "iqe_dim", "iqe_components", "depth", "width", "projector_depth")
        check_network_sizes(self, (*sizes, "actor_depth", "actor_width"))
        if self.iqe_dim % self.iqe_components:
            raise ValueError(
                f"--iqe-dim must be a multiple of --iqe-components, got {self.iqe_dim} and "
                f"{self.iqe_components}"
            )
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f"--discount must be in (0, 1), got {self.discount}")
        check_positive(
            self,
            ("softplus_beta", "epsilon", "init_lagrange_multiplier", "dynamics_weight"),
        )
        check_positive(self, ("critic_lr", "lagrange_lr", "actor_lr", "alpha_lr"))
        for name in ("softplus_offset", "exploration_noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"{flag(name)} must be >= 0, got {getattr(self, name)}")


@struct.dataclass
class Critic:
    """Everything the critic step trains by descent."""

    state_encoder: Any
    goal_encoder: Any
    projector: Any
    dynamics: Any
    #: IQE's max-mean weight is ``sigmoid(raw_alpha)`` (learned, as the official code).
    raw_alpha: jax.Array


@struct.dataclass
class QRLParams:
    critic: Critic
    actor: Any
    log_alpha: jax.Array
    #: ``λ = softplus(raw_lagrange)``.
    raw_lagrange: jax.Array


@struct.dataclass
class QRLState:
    params: QRLParams
    critic_opt: Any
    lagrange_opt: Any
    actor_opt: entropy_actor.ActorOpt


METRICS = (
    "critic_loss",
    "push_loss",
    "dist_random",
    "dist_step",
    "sq_deviation",
    "lagrange_multiplier",
    "dynamics_loss",
    "actor_loss",
    "alpha",
    "entropy",
)


class QRLNets(NamedTuple):
    """What ``make`` builds once: the networks and their optimisers."""

    config: QRLConfig
    state_encoder: MLP
    goal_encoder: MLP
    projector: MLP
    dynamics: MLP
    actor: entropy_actor.EntropyActor
    critic_tx: optax.GradientTransformation
    lagrange_tx: optax.GradientTransformation


def build_nets(config: QRLConfig, action_dim: int) -> QRLNets:
    mlp = functools.partial(
        MLP,
        width=config.width,
        layer_norm=config.layer_norm,
        kernel_init=GLOROT_UNIFORM,
        activation=config.activation,
    )
    encoder = functools.partial(
        mlp, out_dim=config.latent_dim, depth=config.depth, residual=config.residual
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
        kernel_init=GLOROT_UNIFORM,
        activation=config.activation,
    )
    return QRLNets(
        config=config,
        state_encoder=encoder(),
        goal_encoder=encoder(),
        projector=mlp(out_dim=config.iqe_dim, depth=config.projector_depth),
        dynamics=encoder(),
        actor=actor,
        critic_tx=optax.adam(config.critic_lr),
        lagrange_tx=optax.adam(config.lagrange_lr),
    )


def softplus_inverse(y: float) -> float:
    """``x`` with ``softplus(x) = y`` (``y > 0``)."""
    return math.log(math.expm1(y))


def init(nets: QRLNets, sizes: tuple[int, int, int], key: jax.Array) -> QRLState:
    """Fresh parameters for ``sizes = (state_dim, goal_dim, action_dim)``."""
    state_dim, goal_dim, action_dim = sizes
    s_key, g_key, p_key, t_key, actor_key = jax.random.split(key, 5)
    latent = jnp.zeros((1, nets.config.latent_dim))
    critic = Critic(
        state_encoder=nets.state_encoder.init(s_key, jnp.zeros((1, state_dim))),
        goal_encoder=nets.goal_encoder.init(g_key, jnp.zeros((1, goal_dim))),
        projector=nets.projector.init(p_key, latent),
        dynamics=nets.dynamics.init(t_key, jnp.zeros((1, nets.config.latent_dim + action_dim))),
        raw_alpha=jnp.asarray(-1.0),  # sigmoid(-1) = contrastive.IQE_ALPHA, torchqmet's start
    )
    actor_params, log_alpha, actor_opt = entropy_actor.init(
        nets.actor, actor_key, state_dim + goal_dim
    )
    raw_lagrange = jnp.asarray(softplus_inverse(nets.config.init_lagrange_multiplier))
    return QRLState(
        params=QRLParams(critic, actor_params, log_alpha, raw_lagrange),
        critic_opt=nets.critic_tx.init(critic),
        lagrange_opt=nets.lagrange_tx.init(raw_lagrange),
        actor_opt=actor_opt,
    )


def project(nets: QRLNets, critic: Critic, latent: jax.Array) -> jax.Array:
    """``P(z)``: latents ``[..., latent_dim] -> [..., iqe_dim]``, what IQE reads."""
    return nets.projector.apply(critic.projector, latent)


def iqe(nets: QRLNets, critic: Critic, px: jax.Array, py: jax.Array) -> jax.Array:
    """IQE with the learned max-mean weight, of projected latents ``[..., iqe_dim] -> [...]``."""
    alpha = jax.nn.sigmoid(critic.raw_alpha)
    return contrastive.iqe_distance(px, py, nets.config.iqe_components, alpha)


def quasimetric(nets: QRLNets, critic: Critic, x: jax.Array, y: jax.Array) -> jax.Array:
    """``d(x, y) = IQE(P(x), P(y))`` for latents ``x, y [..., latent_dim] -> [...]``."""
    return iqe(nets, critic, project(nets, critic, x), project(nets, critic, y))


def latent_step(nets: QRLNets, critic: Critic, z: jax.Array, action: jax.Array) -> jax.Array:
    """``T(z, a) = z + MLP(z, a)``: the predicted latent of the next state, ``[B, latent_dim]``."""
    return z + nets.dynamics.apply(critic.dynamics, jnp.concatenate([z, action], axis=-1))


def global_push(dist: jax.Array, beta: float, offset: float) -> jax.Array:
    """``-E[φ(d)] = E[softplus(offset - d; β)]``, ``softplus(x; β) = log(1 + e^{βx}) / β``:
    decreasing in every distance ``dist [N]``, flat once a pair is far beyond ``offset``."""
    return jnp.mean(jax.nn.softplus(beta * (offset - dist)) / beta)


def squared_deviation(step_dist: jax.Array) -> jax.Array:
    """``E[relu(d - 1)²]`` over one-step distances ``step_dist [N]``: what a step costs beyond
    ``STEP_COST``; only over-long steps count."""
    return jnp.mean(jnp.square(jax.nn.relu(step_dist - STEP_COST)))


def lagrangian(
    config: QRLConfig,
    random_dist: jax.Array,
    step_dist: jax.Array,
    dynamics: jax.Array,
    lagrange: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(L, push, sq_deviation)`` with
    ``L = -E[φ(d_random)] + λ (E[relu(d_step - 1)²] - ε²) + w · dynamics``: the critic descends
    it; λ ascends it (its gradient is the constraint's violation)."""
    push = global_push(random_dist, config.softplus_beta, config.softplus_offset)
    sq_dev = squared_deviation(step_dist)
    loss = push + lagrange * (sq_dev - config.epsilon**2) + config.dynamics_weight * dynamics
    return loss, push, sq_dev


def critic_objective(nets: QRLNets, critic: Critic, lagrange: jax.Array, batch: dict):
    """``(L, metrics)``: the Lagrangian on the batch. Random pairs are (state, goal); one-step
    pairs are ``(s, s')`` and ``(s, achieved goal of s')``; the dynamics loss is
    ``E[d(T(z, a), z')² + d(z', T(z, a))²] / 2`` (a zero-step move in both directions, the
    official code's bidirectional loss)."""
    encode_state = functools.partial(nets.state_encoder.apply, critic.state_encoder)
    encode_goal = functools.partial(nets.goal_encoder.apply, critic.goal_encoder)
    z, next_z = encode_state(batch["state_obs"]), encode_state(batch["next_state_obs"])
    pz, p_next = project(nets, critic, z), project(nets, critic, next_z)
    p_goal = project(nets, critic, encode_goal(batch["goal"]))
    p_next_goal = project(nets, critic, encode_goal(batch["next_goal"]))
    p_predicted = project(nets, critic, latent_step(nets, critic, z, batch["action"]))
    # One IQE call over all pairs (IQE sorts; one sort compiles and runs faster than five).
    starts = jnp.stack([pz, pz, pz, p_predicted, p_next])
    ends = jnp.stack([p_goal, p_next, p_next_goal, p_next, p_predicted])
    random_dist, *step_dists, forward, backward = iqe(nets, critic, starts, ends)
    step_dist = jnp.concatenate(step_dists)
    dynamics = 0.5 * jnp.mean(jnp.square(forward) + jnp.square(backward))
    loss, push, sq_dev = lagrangian(nets.config, random_dist, step_dist, dynamics, lagrange)
    metrics = {
        "push_loss": push,
        "dist_random": jnp.mean(random_dist),
        "dist_step": jnp.mean(step_dist),
        "sq_deviation": sq_dev,
        "dynamics_loss": dynamics,
    }
    return loss, metrics


def critic_step(nets: QRLNets, state: QRLState, batch: dict):
    """One Adam descent step of the critic and one Adam ascent step of ``raw λ``, both from the
    same Lagrangian (the official code steps both from one backward pass)."""
    p = state.params

    def lagrangian(critic, raw_lagrange):
        return critic_objective(nets, critic, jax.nn.softplus(raw_lagrange), batch)

    (loss, metrics), (critic_grads, lagrange_grad) = jax.value_and_grad(
        lagrangian, argnums=(0, 1), has_aux=True
    )(p.critic, p.raw_lagrange)
    updates, critic_opt = nets.critic_tx.update(critic_grads, state.critic_opt, p.critic)
    critic = optax.apply_updates(p.critic, updates)
    # Dual ascent: descend -L in raw λ.
    updates, lagrange_opt = nets.lagrange_tx.update(-lagrange_grad, state.lagrange_opt)
    raw_lagrange = optax.apply_updates(p.raw_lagrange, updates)
    metrics = {
        **metrics,
        "critic_loss": loss,
        "lagrange_multiplier": jax.nn.softplus(raw_lagrange),
    }
    return critic, raw_lagrange, critic_opt, lagrange_opt, metrics


def update(nets: QRLNets, state: QRLState, batch: dict, key: jax.Array) -> tuple[QRLState, dict]:
    """The critic/λ step, then the actor and α step against the updated critic on the batch's
    random goals and on future goals (``actor_*`` keys)."""
    critic, raw_lagrange, critic_opt, lagrange_opt, critic_metrics = critic_step(nets, state, batch)
    state_obs = jnp.concatenate([batch["state_obs"], batch["actor_state_obs"]])
    goal = jnp.concatenate([batch["goal"], batch["actor_goal"]])
    z = nets.state_encoder.apply(critic.state_encoder, state_obs)
    goal_z = nets.goal_encoder.apply(critic.goal_encoder, goal)

    def score(action):
        return -quasimetric(nets, critic, latent_step(nets, critic, z, action), goal_z)

    p = state.params
    obs = jnp.concatenate([state_obs, goal], axis=-1)
    actor_params, log_alpha, actor_opt, actor_metrics = entropy_actor.actor_step(
        nets.actor, p.actor, p.log_alpha, state.actor_opt, obs, score, key
    )
    new_state = QRLState(
        params=QRLParams(critic, actor_params, log_alpha, raw_lagrange),
        critic_opt=critic_opt,
        lagrange_opt=lagrange_opt,
        actor_opt=actor_opt,
    )
    metrics = {**critic_metrics, **actor_metrics}
    return new_state, {name: metrics[name] for name in METRICS}


def act(nets: QRLNets, params: QRLParams, obs: jax.Array, key: jax.Array, deterministic: bool):
    """``obs [..., state_dim + goal_dim] -> action [..., action_dim]`` in [-1, 1]: the mode, or
    a sample plus Gaussian noise of std ``exploration_noise`` (the official collection)."""
    sample_key, noise_key = jax.random.split(key)
    action = entropy_actor.act(nets.actor, params.actor, obs, sample_key, deterministic)
    if deterministic:
        return action
    noise = nets.config.exploration_noise * jax.random.normal(noise_key, action.shape)
    return jnp.clip(action + noise, -1.0, 1.0)


def sample(config: QRLConfig, buf: BufferState, key: jax.Array, context: SampleContext) -> dict:
    """Transitions ``state_obs, action, next_state_obs [B, ...], next_goal [B, G]`` with a goal
    from ``--goal-strategy`` each (``goal``), plus ``actor_state_obs, actor_goal`` of other
    rows with a discounted future goal (the official online actor's two goal sets)."""
    push_key, actor_key = jax.random.split(key)
    common = dict(max_episode_length=context.max_episode_length, gamma=config.discount)
    now, goal = relabel.future_goal_batch(
        buf, push_key, context.batch_size, strategy=config.goal_strategy, **common
    )
    actor_now, actor_goal = relabel.future_goal_batch(
        buf, actor_key, context.batch_size, strategy="geometric", **common
    )
    fields = ("state_obs", "action", "next_state_obs", "next_goal")
    return {
        **{name: now[name] for name in fields},
        "goal": goal,
        "actor_state_obs": actor_now["state_obs"],
        "actor_goal": actor_goal,
    }


def make(config: QRLConfig, *, state_dim: int, goal_dim: int, action_dim: int) -> Agent:
    """Build QRL for the given sizes."""
    config.validate()
    nets = build_nets(config, action_dim)
    return Agent(
        init=functools.partial(init, nets, (state_dim, goal_dim, action_dim)),
        update=functools.partial(update, nets),
        act=functools.partial(act, nets),
        metric_names=METRICS,
        fields=("state_obs", "action", "next_state_obs", "next_goal"),
        sample=functools.partial(sample, config),
    )
