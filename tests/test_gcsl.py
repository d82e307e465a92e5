"""GCSL: its loss against the Gaussian log-likelihood written out, saturated actions, one update
and acting. Its learning run on ``point`` is in tests/test_learning.py."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from goalax import agents
from goalax.agents import gcsl
from goalax.networks import LOG_STD_MAX, LOG_STD_MIN, TanhGaussianActor

STATE_DIM, GOAL_DIM, ACTION_DIM = 3, 2, 2


def linear_policy(kernel: np.ndarray, bias: np.ndarray):
    """A policy with no hidden layer: ``z = concat(s, g) @ kernel + bias``, so its mean and
    log-std are known in closed form."""
    nets = gcsl.GCSLNets(TanhGaussianActor(action_dim=ACTION_DIM, depth=0), optax.adam(1e-2))
    output = {"kernel": jnp.asarray(kernel, jnp.float32), "bias": jnp.asarray(bias, jnp.float32)}
    params = {"params": {"trunk": {"output": output}}}
    return nets, params


def hand_nll(kernel, bias, state_obs, goal, action) -> float:
    """``-mean_i sum_k log N(atanh(a_ik); μ_ik, σ_ik)``, with ``N(u; μ, σ) =
    exp(-(u - μ)² / 2σ²) / (σ sqrt(2π))`` and the actor's log-std squashing
    ``log σ = LOG_STD_MIN + (LOG_STD_MAX - LOG_STD_MIN) (tanh(raw) + 1) / 2``."""
    z = np.concatenate([state_obs, goal], axis=-1) @ kernel + bias
    mu, raw = z[:, :ACTION_DIM], z[:, ACTION_DIM:]
    log_sigma = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (np.tanh(raw) + 1.0)
    sigma = np.exp(log_sigma)
    u = np.arctanh(action)
    density = np.exp(-((u - mu) ** 2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    return float(-np.mean(np.sum(np.log(density), axis=-1)))


def test_loss_is_the_negative_log_likelihood_of_the_stored_action():
    rng = np.random.default_rng(0)
    kernel = rng.normal(0.0, 0.3, (STATE_DIM + GOAL_DIM, 2 * ACTION_DIM))
    bias = np.array([0.1, -0.2, 0.3, -0.4])
    batch = {
        "state_obs": rng.normal(size=(4, STATE_DIM)),
        "goal": rng.normal(size=(4, GOAL_DIM)),
        "action": np.array([[0.5, -0.3], [0.9, 0.0], [-0.95, 0.2], [0.1, 0.7]]),
    }
    nets, params = linear_policy(kernel, bias)
    loss, metrics = gcsl.loss_fn(
        nets, params, {k: jnp.asarray(v, jnp.float32) for k, v in batch.items()}
    )
    expected = hand_nll(kernel, bias, batch["state_obs"], batch["goal"], batch["action"])
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(metrics["actor_loss"]) == float(loss)


def test_saturated_actions_give_a_finite_loss_and_gradient():
    """A tanh sample can round to exactly ±1 in float32; atanh of the clipped action keeps the
    likelihood finite."""
    nets, params = linear_policy(np.zeros((5, 4)), np.zeros(4))
    batch = {
        "state_obs": jnp.ones((2, STATE_DIM)),
        "goal": jnp.ones((2, GOAL_DIM)),
        "action": jnp.array([[1.0, -1.0], [0.0, 1.0]]),
    }
    (loss, _), grads = jax.jit(
        jax.value_and_grad(lambda p: gcsl.loss_fn(nets, p, batch), has_aux=True)
    )(params)
    assert np.isfinite(float(loss))
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(grads))


def test_updates_raise_the_likelihood_and_acting_follows_the_mean():
    agent = agents.make(
        "gcsl",
        gcsl.GCSLConfig(actor_width=16, actor_depth=1, learning_rate=1e-2),
        state_dim=STATE_DIM,
        goal_dim=GOAL_DIM,
        action_dim=ACTION_DIM,
    )
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    goal = jax.random.normal(keys[0], (16, GOAL_DIM))
    batch = {
        "state_obs": jax.random.normal(keys[1], (16, STATE_DIM)),
        "goal": goal,
        "action": jnp.tanh(goal),  # "move towards the goal": a function of the input
    }
    state = agent.init(keys[2])

    def steps(state, _):
        state, metrics = agent.update(state, batch, jax.random.PRNGKey(1))
        return state, metrics["actor_loss"]

    state, losses = jax.jit(lambda s: jax.lax.scan(steps, s, None, length=200))(state)
    assert float(losses[-1]) < float(losses[0]) - 1.0
    obs = jnp.concatenate([batch["state_obs"], goal], axis=-1)
    mode = agent.act(state.params, obs, jax.random.PRNGKey(2), True)
    assert float(jnp.mean(jnp.abs(mode - batch["action"]))) < 0.05, mode - batch["action"]
    sampled = agent.act(state.params, obs, jax.random.PRNGKey(2), False)
    assert sampled.shape == mode.shape and not np.allclose(sampled, mode)


@pytest.mark.parametrize(
    "overrides, flag",
    [
        ({"discount": 1.0}, "--discount"),
        ({"learning_rate": 0.0}, "--learning-rate"),
        ({"actor_width": 0}, "--actor-width"),
        ({"actor_residual": True, "actor_depth": 2}, "--actor-depth must be a multiple of 4"),
    ],
)
def test_bad_configs_name_the_flag(overrides, flag):
    with pytest.raises(ValueError, match=flag):
        agents.make("gcsl", gcsl.GCSLConfig(**overrides), state_dim=3, goal_dim=2, action_dim=2)


def test_layer_norm_flag_reaches_the_policy():
    for layer_norm in (True, False):
        config = gcsl.GCSLConfig(actor_layer_norm=layer_norm)
        agent = agents.make("gcsl", config, state_dim=3, goal_dim=2, action_dim=2)
        params = jax.eval_shape(agent.init, jax.random.PRNGKey(0)).params.actor
        paths = [
            jax.tree_util.keystr(path)
            for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]
        ]
        assert any("layer_norm" in path for path in paths) == layer_norm
