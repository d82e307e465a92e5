"""Networks: swish MLPs (plain or deep residual) for encoders, and the tanh-Gaussian actor.

CRL's encoders are ``MLP(out_dim=repr_dim)`` applied to ``(s, a)`` and to ``g``; the actor is an
MLP trunk with a Gaussian head squashed by ``tanh`` into the action box ``(-1, 1)^A``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
Initializer = Callable[..., Array]
Activation = Literal["swish", "relu"]

#: Hidden activations of the plain MLP: swish (the CRL paper's) or relu (brax's SAC and TD3, which
#: the reference's baselines use). Residual blocks are always swish.
ACTIVATIONS: dict[str, Callable[[Array], Array]] = {"swish": nn.swish, "relu": nn.relu}

__all__ = [
    "KERNEL_INIT",
    "LECUN_UNIFORM",
    "LOG_STD_MAX",
    "LOG_STD_MIN",
    "MLP",
    "TanhGaussianActor",
    "deterministic_action",
    "gaussian_entropy",
    "gaussian_log_prob",
    "policy_action",
    "sample_tanh_gaussian",
]

#: Range of the actor's log standard deviation: wide enough to explore, narrow enough that
#: ``exp(log_std)`` never over/underflows the log-probability.
LOG_STD_MIN = -5.0
LOG_STD_MAX = 2.0

#: Residual blocks hold this many (Dense → LayerNorm → swish) layers between skips.
BLOCK_SIZE = 4

# variance_scaling(1/3, fan_in, uniform), as the JaxGCRL paper code and the 1000-layer follow-up
# initialise every Dense layer: weights U(-1/sqrt(fan_in), 1/sqrt(fan_in)), i.e. variance
# 1 / (3 fan_in), a third of LeCun's. Biases start at 0 (flax's default). In residual mode the
# LayerNorm after every Dense keeps each branch's output O(1) whatever the stream's scale, so the
# stream grows only like sqrt(number of blocks) and the skips carry gradients to the first layer
# unattenuated: no extra branch scaling is needed (tests check depth 64).
KERNEL_INIT = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
#: Variance 1 / fan_in (uniform): the init of brax's networks, which the reference's SAC, TD3 and
#: PPO use; those agents pass it as ``kernel_init``.
LECUN_UNIFORM = nn.initializers.lecun_uniform()


def _dense_norm_swish(
    x: Array,
    width: int,
    index: int,
    layer_norm: bool,
    kernel_init: Initializer,
    activation: Activation = "swish",
) -> Array:
    """Dense(width) → [LayerNorm] → activation, with readable parameter names. Call inside
    compact."""
    x = nn.Dense(width, kernel_init=kernel_init, name=f"dense_{index}")(x)
    if layer_norm:
        x = nn.LayerNorm(name=f"layer_norm_{index}")(x)
    return ACTIVATIONS[activation](x)


class _ResidualBlock(nn.Module):
    """``h -> h + (Dense → LayerNorm → swish)^4 (h)`` on ``[..., width]``, as a scan body."""

    width: int
    kernel_init: Initializer

    @nn.compact
    def __call__(self, stream: Array, _: None) -> tuple[Array, None]:
        branch = stream
        for index in range(BLOCK_SIZE):
            branch = _dense_norm_swish(branch, self.width, index, True, self.kernel_init)
        return stream + branch, None


class MLP(nn.Module):
    """Swish MLP ``[..., in_dim] -> [..., out_dim]``, plain or residual.

    Plain (``residual=False``): ``depth`` × (Dense(width) → [LayerNorm] → swish), then
    Dense(out_dim). The paper's default is ``depth=2, width=256`` without LayerNorm.

    Residual (``residual=True``, Wang et al. 2025, "1000 Layer Networks for Self-Supervised RL"):
    an input Dense(width) → LayerNorm → swish, then ``depth / 4`` blocks
    ``h <- h + (Dense → LayerNorm → swish)^4 (h)``, then Dense(out_dim). ``depth`` counts the
    Dense layers inside the blocks, so it must be a positive multiple of 4. LayerNorm is part of
    the residual block (it is what keeps deep stacks stable), so ``layer_norm`` only switches it
    in the plain network. The blocks are one ``nn.scan`` (parameters stacked on a leading
    ``[depth / 4]`` axis under ``blocks``), so compile time does not grow with depth.

    Every Dense layer starts from ``kernel_init`` (default ``KERNEL_INIT``, the paper's) and
    zero biases. ``activation`` (``ACTIVATIONS``) is the plain network's; residual blocks are
    always swish.
    """

    out_dim: int
    width: int = 256
    depth: int = 2
    layer_norm: bool = False
    residual: bool = False
    kernel_init: Initializer = KERNEL_INIT
    activation: Activation = "swish"

    def __post_init__(self) -> None:
        if self.residual and (self.depth <= 0 or self.depth % BLOCK_SIZE != 0):
            raise ValueError(
                f"residual MLP needs depth to be a positive multiple of {BLOCK_SIZE} "
                f"(blocks of {BLOCK_SIZE} Dense→LayerNorm→swish layers), got depth={self.depth}"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}; valid: {', '.join(ACTIVATIONS)}"
            )
        if self.depth < 0 or self.width <= 0 or self.out_dim <= 0:
            raise ValueError(
                "MLP needs depth >= 0, width > 0 and out_dim > 0, got "
                f"depth={self.depth}, width={self.width}, out_dim={self.out_dim}"
            )
        super().__post_init__()

    @nn.compact
    def __call__(self, x: Array) -> Array:
        if self.residual:
            x = _dense_norm_swish(x, self.width, 0, True, self.kernel_init)
            blocks = nn.scan(
                _ResidualBlock,
                variable_axes={"params": 0},
                split_rngs={"params": True},
                length=self.depth // BLOCK_SIZE,
            )(self.width, self.kernel_init, name="blocks")
            x, _ = blocks(x, None)
        else:
            for index in range(self.depth):
                x = _dense_norm_swish(
                    x, self.width, index, self.layer_norm, self.kernel_init, self.activation
                )
        return nn.Dense(self.out_dim, kernel_init=self.kernel_init, name="output")(x)


class TanhGaussianActor(nn.Module):
    """Policy head ``obs [B, obs_dim] -> (mean [B, A], log_std [B, A])`` of a tanh-Gaussian.

    ``log_std = LOG_STD_MIN + (LOG_STD_MAX - LOG_STD_MIN) (tanh(raw) + 1) / 2`` maps the raw
    output smoothly into ``[-5, 2]`` (a clip would zero the gradient outside the range).
    """

    action_dim: int
    width: int = 256
    depth: int = 2
    layer_norm: bool = False
    residual: bool = False
    kernel_init: Initializer = KERNEL_INIT
    activation: Activation = "swish"

    @nn.compact
    def __call__(self, obs: Array) -> tuple[Array, Array]:
        trunk = MLP(
            out_dim=2 * self.action_dim,
            width=self.width,
            depth=self.depth,
            layer_norm=self.layer_norm,
            residual=self.residual,
            kernel_init=self.kernel_init,
            activation=self.activation,
            name="trunk",
        )
        mean, raw_log_std = jnp.split(trunk(obs), 2, axis=-1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(raw_log_std) + 1.0)
        return mean, log_std


def _log_tanh_jacobian(pre_tanh: Array) -> Array:
    """``log(1 - tanh(x)^2) = 2 (log 2 - x - softplus(-2x))``, elementwise.

    The direct form underflows to ``log 0 = -inf`` once ``|x| > ~9`` in float32; this identity
    is exact and finite for every finite ``x``.
    """
    return 2.0 * (math.log(2.0) - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh))


def sample_tanh_gaussian(mean: Array, log_std: Array, key: Array) -> tuple[Array, Array]:
    """Reparameterised sample ``a = tanh(mean + exp(log_std) ε)``, ``ε ~ N(0, I)``.

    Shapes ``mean, log_std [B, A] -> action [B, A] in (-1, 1), log_prob [B]``. By the change of
    variables ``x -> tanh(x)``,
    ``log π(a) = sum_k [ log N(x_k; mean_k, std_k) - log(1 - tanh(x_k)^2) ]`` with
    ``log N = -ε_k^2 / 2 - log_std_k - log(2π) / 2``. Gradients flow to ``mean`` and ``log_std``.
    """
    noise = jax.random.normal(key, mean.shape, dtype=mean.dtype)
    pre_tanh = mean + jnp.exp(log_std) * noise
    gaussian_log_prob = -0.5 * jnp.square(noise) - log_std - 0.5 * math.log(2.0 * math.pi)
    log_prob = jnp.sum(gaussian_log_prob - _log_tanh_jacobian(pre_tanh), axis=-1)
    return jnp.tanh(pre_tanh), log_prob


#: atanh of a stored action is taken after clipping into the open interval by this margin.
ACTION_EPS = 1e-6


def gaussian_log_prob(mean: jax.Array, log_std: jax.Array, action: jax.Array) -> jax.Array:
    """``log N(atanh(a); mean, std)`` summed over the action axis: ``[..., A] -> [...]``: the
    log-density of a *stored* action without the tanh Jacobian, which does not depend on the
    policy's parameters (PPO's ratio, GCSL's likelihood)."""
    pre_tanh = jnp.arctanh(jnp.clip(action, -1.0 + ACTION_EPS, 1.0 - ACTION_EPS))
    z = (pre_tanh - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * jnp.square(z) - log_std - 0.5 * math.log(2.0 * math.pi), axis=-1)


def gaussian_entropy(log_std: jax.Array) -> jax.Array:
    """Entropy of the pre-tanh Gaussian: ``sum_k log_std_k + A (1 + log 2π) / 2``, ``[...]``."""
    return jnp.sum(log_std + 0.5 * (1.0 + math.log(2.0 * math.pi)), axis=-1)


def deterministic_action(mean: Array) -> Array:
    """``tanh(mean)`` ``[B, A] -> [B, A]``: the mode of the pre-tanh Gaussian, for evaluation."""
    return jnp.tanh(mean)


def policy_action(mean: Array, log_std: Array, key: Array, deterministic: bool) -> Array:
    """The action a tanh-Gaussian policy takes: its mode when ``deterministic``, else a sample.

    Shared by every agent's ``act`` (CRL, SAC, PPO) so training and evaluation act identically.
    """
    if deterministic:
        return deterministic_action(mean)
    return sample_tanh_gaussian(mean, log_std, key)[0]
