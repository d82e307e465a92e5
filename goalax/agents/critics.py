"""Shared pieces of the off-policy actor-critic baselines (SAC, TD3, GCIQL): their common
config, the twin goal-conditioned Q network, the TD target, one critic gradient step and Polyak
averaging.

All three train on ``goalax.relabel.her_batch`` batches: ``state_obs, next_state_obs [B, S]``,
``goal [B, G]``, ``action [B, A]``, ``reward [B]``, ``terminated [B]``, ``relabelled [B]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from goalax import relabel
from goalax.agents.base import SampleContext, check_network_sizes, check_positive
from goalax.buffer import BufferState
from goalax.networks import LECUN_UNIFORM, MLP, Activation
from goalax.relabel import AchievedAt, HERStrategy

#: Transition fields SAC/TD3 keep in replay: HER needs the achieved goal of every next state;
#: rewards are recomputed for the goal actually used, so they are not stored.
HER_FIELDS = ("state_obs", "action", "next_goal", "next_state_obs", "goal", "terminated")

#: Two Q heads: the minimum of two independent estimates curbs over-estimation (Fujimoto 2018).
NUM_CRITICS = 2


@dataclass(frozen=True)
class OffPolicyConfig:
    """Hyperparameters SAC and TD3 share (each agent's config adds its own)."""

    #: Default ``--prefill-steps`` per env: the reference's SAC/TD3 ``min_replay_size`` (0).
    PREFILL_STEPS: ClassVar[int] = 0

    her: bool = False
    """Relabel goals with achieved goals of the same episode (hindsight experience replay)."""
    relabel_fraction: float = 0.8
    """Fraction of each batch whose goal is relabelled when --her is on."""
    goal_strategy: HERStrategy = "uniform"
    """Which goal HER draws: uniform over the episode's future (HER 'future'), discounted
    (geometric γ), any stored state, or the episode's final one once it has ended ('final')."""
    her_achieved: AchievedAt = "next_state"
    """With --her, read a transition's achieved goal (its reward, the 'final' goal) from the state
    its action led to, or from its own state as the reference's HER does (rewards a step late)."""
    discount: float = 0.99
    """γ of the TD target (and of the geometric goal strategy)."""
    critic_lr: float = 3e-4
    """Adam learning rate of the twin critics."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    tau: float = 0.005
    """Polyak rate of the target networks: target <- (1 - tau) target + tau online."""
    depth: int = 2
    """Hidden layers of each critic (multiple of 4 with --residual)."""
    width: int = 256
    """Hidden units per layer of the critics."""
    layer_norm: bool = False
    """LayerNorm after each hidden Dense layer of the critics."""
    actor_depth: int = 2
    """Hidden layers of the actor (multiple of 4 with --actor-residual)."""
    actor_width: int = 256
    """Hidden units per layer of the actor."""
    actor_layer_norm: bool = False
    """LayerNorm after each hidden Dense layer of the actor."""
    residual: bool = False
    """Residual blocks of 4×(Dense→LayerNorm→swish) in the critics (deep networks)."""
    actor_residual: bool = False
    """Residual blocks of 4×(Dense→LayerNorm→swish) in the actor (independent of --residual)."""
    activation: Activation = "swish"
    """Hidden activation of the critics and the actor outside residual blocks (the reference's
    SAC and TD3: relu)."""
    actor_critic: Literal["updated", "previous"] = "updated"
    """Critic the actor's step climbs: the one this update has just stepped, or the one before it
    (the reference's SAC and TD3 compute both steps from the same old state)."""

    def validate(self) -> None:
        """Raise ValueError with a one-line fix for impossible settings."""
        check_network_sizes(self, ("depth", "width", "actor_depth", "actor_width"))
        if not 0.0 <= self.relabel_fraction <= 1.0:
            raise ValueError(f"--relabel-fraction must be in [0, 1], got {self.relabel_fraction}")
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f"--discount must be in (0, 1), got {self.discount}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"--tau must be in (0, 1], got {self.tau}")
        check_positive(self, ("critic_lr", "actor_lr"))


class TwinQ(nn.Module):
    """Two goal-conditioned critics ``Q_k(s, g, a)``: ``[B, S], [B, G], [B, A] -> [2, B]``.

    The two MLPs are one ``nn.vmap`` (parameters stacked on a leading ``[2]`` axis under ``q``),
    so both heads run as one batched matmul per layer. LeCun-uniform init, as the reference's
    brax networks.
    """

    width: int = 256
    depth: int = 2
    layer_norm: bool = False
    residual: bool = False
    activation: Activation = "swish"

    @nn.compact
    def __call__(self, state_obs: jax.Array, goal: jax.Array, action: jax.Array) -> jax.Array:
        heads = nn.vmap(
            MLP,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=NUM_CRITICS,
        )
        q = heads(
            out_dim=1,
            width=self.width,
            depth=self.depth,
            layer_norm=self.layer_norm,
            residual=self.residual,
            kernel_init=LECUN_UNIFORM,
            activation=self.activation,
            name="q",
        )(jnp.concatenate([state_obs, goal, action], axis=-1))
        return q[..., 0]


def make_twin_q(config: OffPolicyConfig) -> TwinQ:
    return TwinQ(
        width=config.width,
        depth=config.depth,
        layer_norm=config.layer_norm,
        residual=config.residual,
        activation=config.activation,
    )


def actor_critic(config: OffPolicyConfig, previous: Any, updated: Any) -> Any:
    """The critic parameters the actor's step climbs (``--actor-critic``)."""
    return previous if config.actor_critic == "previous" else updated


def policy_obs(state_obs: jax.Array, goal: jax.Array) -> jax.Array:
    """The actor input ``[B, S + G]``, laid out like the env observation ``concat(s, g)``."""
    return jnp.concatenate([state_obs, goal], axis=-1)


def td_target(
    reward: jax.Array, terminated: jax.Array, next_value: jax.Array, discount: float
) -> jax.Array:
    """``y = r + γ (1 - terminated) V(s')``, all ``[B]``, with no gradient.

    Only true termination stops the bootstrap: a time-limit truncation is not stored as
    ``terminated``, so the value of the state it cut off is still counted.
    """
    return jax.lax.stop_gradient(reward + discount * (1.0 - terminated) * next_value)


def twin_q_loss(q: jax.Array, target: jax.Array) -> jax.Array:
    """``sum_k mean_b (Q_k(b) - y_b)^2 / 2`` for ``q [2, B]`` and ``target [B]``."""
    return 0.5 * jnp.sum(jnp.mean(jnp.square(q - target[None]), axis=-1))


def critic_step(
    twin_q: TwinQ,
    tx: optax.GradientTransformation,
    critic: Any,
    opt_state: Any,
    batch: dict,
    target: jax.Array,
) -> tuple[Any, Any, jax.Array, jax.Array]:
    """One Adam step of both critics towards ``target [B]`` on the batch's ``(s, g, a)``.

    Returns ``(critic, opt_state, loss, mean Q over heads and batch)``.
    """

    def loss_fn(params):
        q = twin_q.apply(params, batch["state_obs"], batch["goal"], batch["action"])
        return twin_q_loss(q, target), q

    (loss, q), grads = jax.value_and_grad(loss_fn, has_aux=True)(critic)
    updates, opt_state = tx.update(grads, opt_state, critic)
    return optax.apply_updates(critic, updates), opt_state, loss, jnp.mean(q)


def her_sample(
    config: OffPolicyConfig,
    buf: BufferState,
    key: jax.Array,
    context: SampleContext,
    *,
    strategy: HERStrategy | None = None,
    relabel_fraction: float | None = None,
) -> dict:
    """SAC/TD3 batch from replay: HER relabelling (with ``--her``) and rewards from the task's
    own success function (``goalax.relabel.her_batch``). ``strategy`` and ``relabel_fraction``
    replace the config's (GCIQL draws its actor's goals from a second mixture)."""
    fraction = config.relabel_fraction if relabel_fraction is None else relabel_fraction
    return relabel.her_batch(
        buf,
        key,
        context.batch_size,
        max_episode_length=context.max_episode_length,
        gamma=config.discount,
        strategy=config.goal_strategy if strategy is None else strategy,
        relabel_fraction=fraction if config.her else 0.0,
        goal_reward=context.goal_reward,
        achieved_at=config.her_achieved if config.her else "next_state",
        achieved_goal=context.achieved_goal,
    )


def polyak(target: Any, online: Any, tau: float) -> Any:
    """``(1 - tau) target + tau online``, leafwise over matching pytrees."""
    return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)
