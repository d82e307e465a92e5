"""GCIQL: the expectile loss, DDPG+BC and one whole update against the formulas written out in
numpy (networks evaluated by hand from their parameters), and the two goal mixtures."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_agents import tree_max_diff

from goalax import agents
from goalax import buffer as replay
from goalax.agents import critics, gciql
from goalax.agents.base import SampleContext
from goalax.envs.base import goal_metrics

SIZES = dict(state_dim=3, goal_dim=2, action_dim=2)


def test_expectile_loss_hand_values():
    diff = jnp.array([2.0, -1.0, 0.5, -3.0])
    # τ = 0.9: weights 0.9, 0.1, 0.9, 0.1 on u² = 4, 1, 0.25, 9 -> (3.6 + 0.1 + 0.225 + 0.9) / 4
    assert float(gciql.expectile_loss(diff, 0.9)) == pytest.approx(4.825 / 4)
    # τ = 0.5 is half the mean squared error: 0.5 * 14.25 / 4
    assert float(gciql.expectile_loss(diff, 0.5)) == pytest.approx(0.5 * 14.25 / 4)


def test_expectile_of_a_coin_is_tau():
    """For targets {0, 1} the τ-expectile m solves τ (1 - m) = (1 - τ) m, so m = τ: the loss is
    flat there, and at τ = 0.9 the fit sits well above the mean 0.5 (what makes V optimistic)."""
    targets = jnp.array([0.0, 1.0])

    def loss(m):
        return gciql.expectile_loss(targets - m, 0.9)

    assert float(jax.grad(loss)(0.9)) == pytest.approx(0.0, abs=1e-6)
    # (0.1 * 0.9² + 0.9 * 0.1²) / 2 = 0.045
    assert float(loss(0.9)) == pytest.approx(0.045)
    assert float(jax.grad(loss)(0.5)) < 0 < float(jax.grad(loss)(0.95))


def test_ddpg_bc_loss_hand_values():
    q = jnp.array([2.0, -4.0])
    policy = jnp.array([[0.5, 0.0], [0.0, 0.0]])
    data = jnp.array([[0.0, 0.0], [0.0, 1.0]])
    loss, bc = gciql.ddpg_bc_loss(q, policy, data, alpha=0.3)
    # mean q = -1, mean |q| = 3: -(-1) / 3; bc = 0.3 * mean(½ 0.25, ½ 1) = 0.3 * 0.3125
    assert float(bc) == pytest.approx(0.09375)
    assert float(loss) == pytest.approx(1.0 / 3.0 + 0.09375, rel=1e-5)
    # the normaliser is a constant: d loss / d q_b = -1 / (B mean|q|) = -1/6 for every b
    grad_q = jax.grad(lambda q: gciql.ddpg_bc_loss(q, policy, data, 0.3)[0])(q)
    np.testing.assert_allclose(grad_q, [-1.0 / 6.0] * 2, rtol=1e-5)


# --- one update against numpy ---------------------------------------------------------------


def np_mlp(params, x):
    """Depth-1 relu MLP without LayerNorm, from its parameters: relu(x W0 + b0) W1 + b1."""
    p = jax.tree.map(np.asarray, params)
    hidden = np.maximum(x @ p["dense_0"]["kernel"] + p["dense_0"]["bias"], 0.0)
    return hidden @ p["output"]["kernel"] + p["output"]["bias"]


def np_twin_q(critic, s, g, a):
    """``[2, B]``: both heads on ``concat(s, g, a)``."""
    heads = jax.tree.map(np.asarray, critic["params"]["q"])
    x = np.concatenate([s, g, a], axis=-1)
    return np.stack([np_mlp(head, x)[:, 0] for head in (heads_at(heads, 0), heads_at(heads, 1))])


def heads_at(heads, k):
    """Head ``k``'s parameters of the ``nn.vmap``-stacked twin critic."""
    return jax.tree.map(lambda leaf: leaf[k], heads)


def np_value(value, s, g):
    return np_mlp(value["params"], np.concatenate([s, g], axis=-1))[:, 0]


def np_policy(actor, s, g):
    return np.tanh(np_mlp(actor["params"], np.concatenate([s, g], axis=-1)))


def tiny_batch(batch_size=6):
    rng = np.random.default_rng(0)
    data = {
        "state_obs": rng.normal(size=(batch_size, 3)),
        "next_state_obs": rng.normal(size=(batch_size, 3)),
        "goal": rng.normal(size=(batch_size, 2)),
        "action": rng.uniform(-1, 1, size=(batch_size, 2)),
        "reward": np.arange(batch_size) % 2,
        "terminated": np.arange(batch_size) == 1,
        "relabelled": np.arange(batch_size) < 4,
        "actor_state_obs": rng.normal(size=(batch_size, 3)),
        "actor_goal": rng.normal(size=(batch_size, 2)),
        "actor_action": rng.uniform(-1, 1, size=(batch_size, 2)),
    }
    return {k: np.asarray(v, np.float32) for k, v in data.items()}


@pytest.fixture(scope="module")
def one_update():
    """One update of tiny relu networks (no LayerNorm), the actor climbing the critic from
    before the step, and a target critic unlike the online one (so using the wrong one shows)."""
    config = gciql.GCIQLConfig(
        width=8, depth=1, actor_width=8, actor_depth=1, layer_norm=False, activation="relu",
        actor_critic="previous", tau=0.1, discount=0.9, alpha=0.3, expectile=0.8,
    )  # fmt: skip
    agent = gciql.make(config, **SIZES)
    state = agent.init(jax.random.PRNGKey(0))
    other = agent.init(jax.random.PRNGKey(1))
    state = dataclasses.replace(state, target_critic=other.params.critic)
    batch = tiny_batch()
    after, metrics = jax.jit(agent.update)(state, batch, jax.random.PRNGKey(2))
    return config, state, after, metrics, batch


def test_update_objectives_match_the_formulas(one_update):
    config, before, after, metrics, b = one_update
    p = before.params
    assert set(metrics) == set(gciql.METRICS)
    # value: u = min_k Q̄_k(s, g, a) - V(s, g); L_V = mean |τ - 1(u < 0)| u²
    v = np_value(p.value, b["state_obs"], b["goal"])
    u = np_twin_q(before.target_critic, b["state_obs"], b["goal"], b["action"]).min(0) - v
    assert (u > 0).any() and (u < 0).any()
    expected_value_loss = np.mean(np.where(u >= 0, 0.8, 0.2) * u**2)
    assert float(metrics["value_loss"]) == pytest.approx(expected_value_loss, rel=1e-4)
    assert float(metrics["v_mean"]) == pytest.approx(v.mean(), rel=1e-4, abs=1e-6)
    # critic: y = r + γ (1 - terminated) V_new(s', g) with the value after its step (IQL's order)
    next_v = np_value(after.params.value, b["next_state_obs"], b["goal"])
    y = b["reward"] + 0.9 * (1 - b["terminated"]) * next_v
    q = np_twin_q(p.critic, b["state_obs"], b["goal"], b["action"])
    expected_critic_loss = 0.5 * np.sum(np.mean((q - y) ** 2, axis=-1))
    assert float(metrics["critic_loss"]) == pytest.approx(expected_critic_loss, rel=1e-4)
    # actor (on the critic before the step): -mean Q / mean|Q| + α mean ½||π - a||², Q = min_k
    s, g = b["actor_state_obs"], b["actor_goal"]
    pi = np_policy(p.actor, s, g)
    q_pi = np_twin_q(p.critic, s, g, pi).min(0)
    bc = 0.3 * np.mean(0.5 * np.sum((pi - b["actor_action"]) ** 2, axis=-1))
    assert float(metrics["bc_loss"]) == pytest.approx(bc, rel=1e-4)
    expected_actor_loss = -q_pi.mean() / (np.abs(q_pi).mean() + 1e-6) + bc
    assert float(metrics["actor_loss"]) == pytest.approx(expected_actor_loss, rel=1e-4)


def test_update_moves_every_network_and_the_target_by_polyak(one_update):
    before, after = one_update[1:3]
    expected = critics.polyak(before.target_critic, after.params.critic, 0.1)
    assert tree_max_diff(after.target_critic, expected) < 1e-6
    for name in ("actor", "critic", "value"):
        assert tree_max_diff(getattr(after.params, name), getattr(before.params, name)) > 0, name


# --- goals: value/critic batch and actor batch from their own mixtures -----------------------


def test_value_and_actor_goals_come_from_their_own_mixtures():
    """One 8-step episode whose own goal (100, 100) is never reached; the achieved goal of step
    t's next state is (t + 1, 0). With no value relabelling and full actor relabelling, value
    goals are all the episode's goal and actor goals all achieved ones later in the episode."""
    t = jnp.arange(8, dtype=jnp.float32)
    data = {
        "state_obs": jnp.stack([t, t, t], -1)[:, None],
        "action": jnp.zeros((8, 1, 2)),
        "next_goal": jnp.stack([t + 1, 0 * t], -1)[:, None],
        "next_state_obs": jnp.stack([t + 1, t, t], -1)[:, None],
        "goal": jnp.full((8, 1, 2), 100.0),
        "terminated": jnp.zeros((8, 1)),
    }
    buf = replay.init(jax.tree.map(lambda x: x[0], data), 8)
    buf = jax.jit(replay.insert)(buf, data, jnp.zeros((8, 1), jnp.int32))

    def reward(achieved, goal):
        metrics = goal_metrics(achieved, goal, 0.5, 0.5)
        return metrics["success"], metrics

    context = SampleContext(batch_size=64, max_episode_length=8, goal_reward=reward)
    config = gciql.GCIQLConfig(relabel_fraction=0.0, actor_relabel_fraction=1.0)
    sample = jax.jit(functools.partial(gciql.sample, config, context=context))
    batch = jax.device_get(sample(buf, jax.random.PRNGKey(0)))
    np.testing.assert_array_equal(batch["goal"], 100.0)
    np.testing.assert_array_equal(batch["reward"], 0.0)
    actor_t = batch["actor_state_obs"][:, 0]
    assert np.all(batch["actor_goal"][:, 0] >= actor_t + 1)
    assert np.all(batch["actor_goal"][:, 1] == 0.0)
    assert batch["actor_action"].shape == (64, 2)


@pytest.mark.parametrize(
    "overrides, flag",
    [
        ({"expectile": 1.0}, "--expectile must be in \\(0, 1\\)"),
        ({"alpha": -0.1}, "--alpha must be >= 0"),
        ({"actor_relabel_fraction": 1.5}, "--actor-relabel-fraction must be in \\[0, 1\\]"),
        ({"exploration_noise": -1.0}, "--exploration-noise must be >= 0"),
        ({"tau": 0.0}, "--tau"),
    ],
)
def test_bad_configs_name_the_flag(overrides, flag):
    with pytest.raises(ValueError, match=flag):
        agents.make("gciql", gciql.GCIQLConfig(**overrides), **SIZES)
