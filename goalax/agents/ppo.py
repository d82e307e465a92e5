"""Goal-conditioned PPO (Schulman et al. 2017): clipped surrogate objective, GAE(λ) advantages,
a value function, an entropy bonus and running observation normalisation, all on the latest
on-policy rollout.

The loop calls ``update`` once per iteration with the whole rollout: leaves ``[T, E, ...]`` of
``state_obs, action, goal, reward, terminated, truncated, next_state_obs`` plus a ``valid [T, E]``
mask (steps past the env-step budget are 0 and contribute nothing). The observation is
``concat(state_obs, goal)``, normalised by running statistics kept in ``params`` so that acting
and learning see the same inputs. The statistics of a rollout are merged in at the end of its
update, so within an update every network input is normalised exactly as when it was collected.

Policy: a Gaussian over pre-tanh actions ``u ~ N(mean, std)``, squashed to ``a = tanh(u)``. Only
the action is stored, so log-probabilities are taken of ``u = atanh(clip(a, ±(1 - 1e-6)))`` under
the Gaussian: the tanh Jacobian does not depend on the parameters and cancels in the ratio
``π_new(a) / π_old(a)``, and old and new log-probs use the same recovered ``u``. The entropy is
the Gaussian's (the squashed one has no closed form).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from goalax.agents.base import Agent, check_network_sizes, check_positive, flag
from goalax.errors import ConfigError
from goalax.networks import (
    LECUN_UNIFORM,
    MLP,
    TanhGaussianActor,
    gaussian_entropy,
    gaussian_log_prob,
    policy_action,
)

#: Log-ratios are clamped to ±20 before ``exp`` (float32 overflows at 88). Only a sample so far
#: off-policy that its gradient would explode loses its gradient; sane data never gets there.
LOG_RATIO_CLIP = 20.0
#: Normalised observations are clipped to this range so a rare outlier cannot blow up a layer.
NORMALISED_OBS_CLIP = 10.0


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters (run it with short unrolls and many envs, see docs/agents.md)."""

    #: On-policy: no replay buffer, so the run's replay flags do not apply (config.check_used).
    USES_REPLAY: ClassVar[bool] = False

    learning_rate: float = 3e-4
    """Adam learning rate of actor and value function (one optimiser, summed loss)."""
    discount: float = 0.99
    """γ of the returns."""
    gae_lambda: float = 0.95
    """λ of generalised advantage estimation."""
    clip_epsilon: float = 0.2
    """Probability ratios are clipped to [1 - ε, 1 + ε] in the surrogate objective."""
    value_coef: float = 0.5
    """Weight of the value loss in the summed loss."""
    entropy_coef: float = 1e-3
    """Weight of the entropy bonus (subtracted from the loss)."""
    max_grad_norm: float | None = 0.5
    """Gradients are clipped to this global norm; None: not clipped (the reference)."""
    num_epochs: int = 4
    """Passes over each rollout."""
    num_minibatches: int = 32
    """Minibatches per pass; --unroll-length × --num-envs must be divisible by it."""
    normalize_observations: bool = True
    """Normalise observations by running mean/variance (kept in params, used when acting)."""
    depth: int = 2
    """Hidden layers of the value network (multiple of 4 with --residual)."""
    width: int = 256
    """Hidden units per layer of the value network."""
    layer_norm: bool = False
    """LayerNorm after each hidden Dense layer of the value network."""
    actor_depth: int = 2
    """Hidden layers of the actor (multiple of 4 with --actor-residual)."""
    actor_width: int = 256
    """Hidden units per layer of the actor."""
    actor_layer_norm: bool = False
    """LayerNorm after each hidden Dense layer of the actor."""
    residual: bool = False
    """Residual blocks of 4×(Dense→LayerNorm→swish) in the value network."""
    actor_residual: bool = False
    """Residual blocks of 4×(Dense→LayerNorm→swish) in the actor (independent of --residual)."""

    def validate(self) -> None:
        """Raise ValueError with a one-line fix for impossible settings."""

        check_network_sizes(self, ("depth", "width", "actor_depth", "actor_width", "num_epochs"))
        if self.num_minibatches < 1:
            raise ValueError(
                f"--num-minibatches must be a positive integer, got {self.num_minibatches}"
            )
        for name in ("discount", "gae_lambda"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{flag(name)} must be in (0, 1], got {getattr(self, name)}")
        check_positive(self, ("learning_rate", "clip_epsilon"))
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"--max-grad-norm must be positive, got {self.max_grad_norm}")
        for name in ("value_coef", "entropy_coef"):
            if getattr(self, name) < 0:
                raise ValueError(f"{flag(name)} must be >= 0, got {getattr(self, name)}")


@struct.dataclass
class ObsNormaliser:
    """Running statistics of observations: ``mean, var [obs_dim]``, ``count`` int32 (steps)."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array


@struct.dataclass
class PPOParams:
    actor: Any
    value: Any
    obs_norm: ObsNormaliser


@struct.dataclass
class PPOState:
    params: PPOParams
    opt: Any


METRICS = ("actor_loss", "critic_loss", "entropy", "approx_kl", "clip_fraction")

FIELDS = ("state_obs", "action", "goal", "reward", "terminated", "truncated", "next_state_obs")


def weighted_mean(x: jax.Array, weight: jax.Array) -> jax.Array:
    """``sum(w x) / max(sum(w), 1)`` over all entries (an all-zero weight gives 0)."""
    return jnp.sum(weight * x) / jnp.maximum(jnp.sum(weight), 1.0)


def update_normaliser(norm: ObsNormaliser, obs: jax.Array, weight: jax.Array) -> ObsNormaliser:
    """Merge the ``weight``-ed rows of ``obs [N, O]`` (``weight [N]`` in {0, 1}) into ``norm``.

    Chan et al.'s parallel update of mean and (population) variance: exact whatever the split of
    the data into rollouts.
    """
    batch_count = jnp.sum(weight)
    safe_count = jnp.maximum(batch_count, 1.0)
    batch_mean = jnp.sum(weight[:, None] * obs, axis=0) / safe_count
    batch_var = jnp.sum(weight[:, None] * jnp.square(obs - batch_mean), axis=0) / safe_count
    old_count = norm.count.astype(jnp.float32)
    total = jnp.maximum(old_count + batch_count, 1.0)
    delta = batch_mean - norm.mean
    mean = norm.mean + delta * batch_count / total
    m2 = norm.var * old_count + batch_var * batch_count
    var = (m2 + jnp.square(delta) * old_count * batch_count / total) / total
    count = norm.count + batch_count.astype(jnp.int32)
    # Before any data the statistics stay at the identity (mean 0, var 1).
    return ObsNormaliser(
        mean=jnp.where(count > 0, mean, norm.mean),
        var=jnp.where(count > 0, var, norm.var),
        count=count,
    )


def normalise(norm: ObsNormaliser, obs: jax.Array) -> jax.Array:
    """``clip((obs - mean) / sqrt(var + 1e-8), ±10)``, ``[..., O] -> [..., O]``."""
    scaled = (obs - norm.mean) / jnp.sqrt(norm.var + 1e-8)
    return jnp.clip(scaled, -NORMALISED_OBS_CLIP, NORMALISED_OBS_CLIP)


def gae(
    reward: jax.Array,
    value: jax.Array,
    next_value: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    valid: jax.Array,
    discount: float,
    lam: float,
) -> jax.Array:
    """Generalised advantage estimates ``[T, E]`` from per-step leaves ``[T, E]``.

    ``δ_t = r_t + γ (1 - terminated_t) V(s'_t) - V(s_t)`` uses the stored true next state, so a
    truncated step bootstraps from ``V(s'_t)`` and a terminated one does not. The recursion
    ``A_t = valid_t (δ_t + γ λ (1 - done_t) A_{t+1})`` with ``done = terminated or truncated``
    stops at every episode end (the next row is another episode) and at the end of the rollout;
    invalid steps (past the budget, always a suffix in time) get ``A = 0`` and add nothing.
    """
    delta = reward + discount * (1.0 - terminated) * next_value - value
    carry_on = discount * lam * (1.0 - jnp.maximum(terminated, truncated))

    def backward(next_advantage, step):
        delta_t, carry_on_t, valid_t = step
        advantage = valid_t * (delta_t + carry_on_t * next_advantage)
        return advantage, advantage

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(delta[0]), (delta, carry_on, valid), reverse=True
    )
    return advantages


def clipped_surrogate_loss(
    log_ratio: jax.Array, advantage: jax.Array, clip_epsilon: float, weight: jax.Array
) -> jax.Array:
    """``-mean_w min(ρ A, clip(ρ, 1 - ε, 1 + ε) A)`` with ``ρ = exp(log_ratio)``, all ``[N]``."""
    ratio = jnp.exp(log_ratio)
    clipped = jnp.clip(ratio, 1.0 - clip_epsilon, 1.0 + clip_epsilon)
    return -weighted_mean(jnp.minimum(ratio * advantage, clipped * advantage), weight)


class PPONets(NamedTuple):
    """What ``make`` builds once: actor, value network, the optimiser and the config."""

    config: PPOConfig
    actor: TanhGaussianActor
    value_net: MLP
    tx: optax.GradientTransformation


def build_nets(config: PPOConfig, action_dim: int) -> PPONets:
    actor = TanhGaussianActor(
        action_dim=action_dim,
        width=config.actor_width,
        depth=config.actor_depth,
        layer_norm=config.actor_layer_norm,
        residual=config.actor_residual,
        kernel_init=LECUN_UNIFORM,
    )
    value_net = MLP(
        out_dim=1,
        width=config.width,
        depth=config.depth,
        layer_norm=config.layer_norm,
        residual=config.residual,
        kernel_init=LECUN_UNIFORM,
    )
    tx = optax.adam(config.learning_rate)
    if config.max_grad_norm is not None:
        tx = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), tx)
    return PPONets(config, actor, value_net, tx)


def init(nets: PPONets, obs_dim: int, key: jax.Array) -> PPOState:
    """Fresh parameters and an empty normaliser for observations of ``obs_dim``."""
    actor_key, value_key = jax.random.split(key)
    obs = jnp.zeros((1, obs_dim))
    params = PPOParams(
        actor=nets.actor.init(actor_key, obs),
        value=nets.value_net.init(value_key, obs),
        obs_norm=ObsNormaliser(
            mean=jnp.zeros(obs_dim), var=jnp.ones(obs_dim), count=jnp.zeros((), jnp.int32)
        ),
    )
    return PPOState(params=params, opt=nets.tx.init((params.actor, params.value)))


def value_of(nets: PPONets, value_params: Any, normalised_obs: jax.Array) -> jax.Array:
    return nets.value_net.apply(value_params, normalised_obs)[..., 0]


def loss_fn(nets: PPONets, params: tuple[Any, Any], mb: dict) -> tuple[jax.Array, dict]:
    """Clipped surrogate + value loss - entropy bonus on one minibatch, and its metrics."""
    config = nets.config
    actor_params, value_params = params
    mean, log_std = nets.actor.apply(actor_params, mb["obs"])
    log_ratio = jnp.clip(
        gaussian_log_prob(mean, log_std, mb["action"]) - mb["old_log_prob"],
        -LOG_RATIO_CLIP,
        LOG_RATIO_CLIP,
    )
    w = mb["valid"]
    policy_loss = clipped_surrogate_loss(log_ratio, mb["advantage"], config.clip_epsilon, w)
    value_error = value_of(nets, value_params, mb["obs"]) - mb["return"]
    value_loss = 0.5 * weighted_mean(jnp.square(value_error), w)
    entropy = weighted_mean(gaussian_entropy(log_std), w)
    loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy
    metrics = {
        "actor_loss": policy_loss,
        "critic_loss": value_loss,
        "entropy": entropy,
        # (ρ - 1) - log ρ: a low-variance, non-negative estimator of KL(old || new).
        "approx_kl": weighted_mean(jnp.expm1(log_ratio) - log_ratio, w),
        "clip_fraction": weighted_mean(
            (jnp.abs(jnp.expm1(log_ratio)) > config.clip_epsilon).astype(jnp.float32), w
        ),
    }
    return loss, metrics


def minibatch_step(nets: PPONets, carry: tuple, mb: dict) -> tuple[tuple, dict]:
    params, opt = carry
    grads, metrics = jax.grad(functools.partial(loss_fn, nets), has_aux=True)(params, mb)
    updates, opt = nets.tx.update(grads, opt, params)
    return (optax.apply_updates(params, updates), opt), metrics


def prepare(nets: PPONets, params: PPOParams, batch: dict) -> dict:
    """Normalised obs, behaviour log-probs and GAE targets, leaves ``[T * E, ...]``.

    The params that collected the rollout are exactly ``params`` (normaliser included), so the
    probability ratios of the first minibatch are exactly 1.
    """
    config = nets.config
    obs = normalise(params.obs_norm, jnp.concatenate([batch["state_obs"], batch["goal"]], -1))
    next_obs = normalise(
        params.obs_norm, jnp.concatenate([batch["next_state_obs"], batch["goal"]], -1)
    )
    valid = batch["valid"]
    mean, log_std = nets.actor.apply(params.actor, obs)
    value = value_of(nets, params.value, obs)
    advantage = gae(
        batch["reward"],
        value,
        value_of(nets, params.value, next_obs),
        batch["terminated"],
        batch["truncated"],
        valid,
        config.discount,
        config.gae_lambda,
    )
    centred = advantage - weighted_mean(advantage, valid)
    scale = jnp.sqrt(weighted_mean(jnp.square(centred), valid)) + 1e-8
    data = {
        "obs": obs,
        "action": batch["action"],
        "old_log_prob": gaussian_log_prob(mean, log_std, batch["action"]),
        "advantage": valid * centred / scale,
        "return": advantage + value,
        "valid": valid,
    }
    flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), data)
    return jax.lax.stop_gradient(flat)


def update(nets: PPONets, state: PPOState, batch: dict, key: jax.Array) -> tuple[PPOState, dict]:
    """``num_epochs`` passes of shuffled minibatches over one rollout, then the normaliser."""
    config = nets.config
    num_steps = batch["valid"].size
    if num_steps % config.num_minibatches:
        raise ConfigError(
            f"ppo splits each rollout of --unroll-length × --num-envs = {num_steps} steps into "
            f"--num-minibatches {config.num_minibatches}; choose sizes whose product is "
            "divisible by it"
        )
    data = prepare(nets, state.params, batch)
    minibatch_size = num_steps // config.num_minibatches

    def epoch(carry, epoch_key):
        order = jax.random.permutation(epoch_key, num_steps)
        minibatches = jax.tree.map(
            lambda x: x[order].reshape((config.num_minibatches, minibatch_size) + x.shape[1:]),
            data,
        )
        return jax.lax.scan(functools.partial(minibatch_step, nets), carry, minibatches)

    params = (state.params.actor, state.params.value)
    (params, opt), metrics = jax.lax.scan(
        epoch, (params, state.opt), jax.random.split(key, config.num_epochs)
    )
    norm = state.params.obs_norm
    if config.normalize_observations:
        # Used from the next rollout on: changing it now would move the behaviour policy.
        obs = jnp.concatenate([batch["state_obs"], batch["goal"]], axis=-1)
        norm = update_normaliser(norm, obs.reshape(-1, obs.shape[-1]), batch["valid"].reshape(-1))
    new_params = PPOParams(actor=params[0], value=params[1], obs_norm=norm)
    return PPOState(params=new_params, opt=opt), jax.tree.map(jnp.mean, metrics)


def act(nets: PPONets, params: PPOParams, obs: jax.Array, key: jax.Array, deterministic: bool):
    """``obs [..., state_dim + goal_dim] -> action [..., action_dim]`` in [-1, 1]."""
    mean, log_std = nets.actor.apply(params.actor, normalise(params.obs_norm, obs))
    return policy_action(mean, log_std, key, deterministic)


def make(config: PPOConfig, *, state_dim: int, goal_dim: int, action_dim: int) -> Agent:
    """Build PPO for the given sizes (on-policy: no replay sampler)."""
    config.validate()
    nets = build_nets(config, action_dim)
    return Agent(
        init=functools.partial(init, nets, state_dim + goal_dim),
        update=functools.partial(update, nets),
        act=functools.partial(act, nets),
        metric_names=METRICS,
        fields=FIELDS,
        grad_steps_per_update=config.num_epochs * config.num_minibatches,
    )
