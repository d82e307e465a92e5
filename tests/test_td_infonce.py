"""TD-InfoNCE: the loss against the paper's formula written out by hand, the critic's wiring
(which goal conditions what, the target critic's weights), the actor's score and one update."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from goalax.agents import critics, crl, td_infonce

SIZES = dict(state_dim=4, goal_dim=2, action_dim=2)


def hand_loss(next_logits, goal_logits, target_logits, discounts) -> float:
    """The TD-InfoNCE loss term by term, one row and one candidate at a time."""
    batch = len(discounts)
    total = 0.0
    for i in range(batch):
        # (1 - γ_i) × cross-entropy of the next state s'_i among all s'_j
        next_ce = -np.log(np.exp(next_logits[i, i]) / np.sum(np.exp(next_logits[i])))
        # γ_i × cross-entropy of the goals g_j against the target critic's importance weights
        weights = np.exp(target_logits[i]) / np.sum(np.exp(target_logits[i]))
        goal_ce = -sum(
            weights[j] * np.log(np.exp(goal_logits[i, j]) / np.sum(np.exp(goal_logits[i])))
            for j in range(batch)
        )
        total += (1.0 - discounts[i]) * next_ce + discounts[i] * goal_ce
    return total / batch


def test_loss_hand_values():
    next_logits = np.array([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0], [0.0, 0.0, 0.0]])
    goal_logits = np.array([[0.0, 1.0, 2.0], [-1.0, 0.0, 1.0], [3.0, 0.0, 0.0]])
    target_logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, -1.0, 0.5]])
    discounts = np.array([0.9, 0.9, 0.0])  # row 2 terminated: its future is s'_2 alone
    loss, metrics = td_infonce.td_infonce_loss(
        *(jnp.asarray(x, jnp.float32) for x in (next_logits, goal_logits, target_logits)),
        jnp.asarray(discounts, jnp.float32),
    )
    expected = hand_loss(next_logits, goal_logits, target_logits, discounts)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    # row 0: log(e + 1 + e^-1) - 1 = 0.4076; row 1: log(e^0.5 + e^2 + 1) - 2 = 0.3064;
    # row 2: log 3 = 1.0986; their mean
    assert float(metrics["next_state_loss"]) == pytest.approx(0.6042, abs=1e-4)
    assert float(metrics["categorical_accuracy"]) == pytest.approx(2 / 3)  # row 2: a tie, j=0


def test_importance_weights_carry_no_gradient():
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4, 4)), jnp.float32)
    discounts = 0.9 * jnp.ones(4)
    grad = jax.grad(
        lambda target: td_infonce.td_infonce_loss(logits[0], logits[1], target, discounts)[0]
    )(logits[2])
    np.testing.assert_array_equal(grad, 0.0)


def test_a_critic_that_matches_its_targets_beats_a_collapsed_one():
    rng = np.random.default_rng(1)
    target = jnp.asarray(rng.normal(size=(8, 8)), jnp.float32)
    discounts = 0.9 * jnp.ones(8)
    sharp = td_infonce.td_infonce_loss(10.0 * jnp.eye(8), target, target, discounts)[0]
    zeros = jnp.zeros((8, 8))
    collapsed = td_infonce.td_infonce_loss(zeros, zeros, target, discounts)[0]
    assert float(sharp) < float(collapsed)


@pytest.fixture(scope="module")
def tiny_agent():
    config = td_infonce.TDInfoNCEConfig(
        width=8, actor_width=8, repr_dim=4, energy="dot", discount=0.8, tau=0.25
    )
    nets = crl.build_nets(config, SIZES["action_dim"])
    state = td_infonce.init(nets, (4, 2, 2), jax.random.PRNGKey(0))
    # a target critic that differs from the critic, so the test sees which one weighs
    target = jax.tree.map(lambda x: x + 0.3, state.target_critic)
    rng = np.random.default_rng(2)
    batch = {
        "state_obs": rng.normal(size=(5, 4)),
        "action": rng.uniform(-1, 1, size=(5, 2)),
        "next_state_obs": rng.normal(size=(5, 4)),
        "next_goal": rng.normal(size=(5, 2)),
        "goal": rng.normal(size=(5, 2)),
        "terminated": np.array([0, 0, 1, 0, 0]),
    }
    batch = {k: jnp.asarray(v, jnp.float32) for k, v in batch.items()}
    return nets, state.replace(target_critic=target), batch


def test_critic_loss_wiring_against_hand_logits(tiny_agent):
    """φ reads (s, a, g_i); ψ reads s'_j in the first term and g_j in the second; the weights
    come from the *target* critic at (s'_i, a'_i, g_i). Dot energy: f = φ_i · ψ_j, by hand."""
    nets, state, b = tiny_agent
    p = state.params
    next_action = jnp.asarray(np.random.default_rng(3).uniform(-1, 1, (5, 2)), jnp.float32)

    def embed(sa_params, g_params, s, a, g, f):
        phi = nets.sa_encoder.apply(sa_params, jnp.concatenate([s, a, g], axis=-1))
        return np.asarray(phi), np.asarray(nets.goal_encoder.apply(g_params, f))

    now = (b["state_obs"], b["action"], b["goal"])
    phi, psi_next = embed(p.sa_encoder, p.goal_encoder, *now, b["next_goal"])
    _, psi_goal = embed(p.sa_encoder, p.goal_encoder, *now, b["goal"])
    after = (b["next_state_obs"], next_action, b["goal"])
    phi_bar, psi_bar = embed(*state.target_critic, *after, b["goal"])
    n = len(phi)
    next_logits = np.array([[phi[i] @ psi_next[j] for j in range(n)] for i in range(n)])
    goal_logits = np.array([[phi[i] @ psi_goal[j] for j in range(n)] for i in range(n)])
    target_logits = np.array([[phi_bar[i] @ psi_bar[j] for j in range(n)] for i in range(n)])
    discounts = 0.8 * (1.0 - np.asarray(b["terminated"]))
    expected = hand_loss(next_logits, goal_logits, target_logits, discounts)
    critic = (p.sa_encoder, p.goal_encoder)
    loss, _ = td_infonce.critic_loss(nets, critic, state.target_critic, b, next_action)
    assert float(loss) == pytest.approx(expected, rel=1e-5)

    # the actor's score: log softmax_j f(s_i, a_i, g_i, g_j) at j = i
    score = td_infonce.actor_score(nets, critic, b)(b["action"])
    shifted = goal_logits - goal_logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(score, np.diagonal(log_softmax), rtol=1e-5, atol=1e-6)


def test_update_steps_the_critic_and_moves_the_target_by_polyak(tiny_agent):
    nets, state, batch = tiny_agent
    new, metrics = jax.jit(lambda s, b, k: td_infonce.update(nets, s, b, k))(
        state, batch, jax.random.PRNGKey(4)
    )
    assert set(metrics) == set(td_infonce.METRICS)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    online = (new.params.sa_encoder, new.params.goal_encoder)
    expected = critics.polyak(state.target_critic, online, 0.25)
    for got, want in zip(
        jax.tree.leaves(new.target_critic), jax.tree.leaves(expected), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), new.params, state.params)
    assert all(m > 0 for m in jax.tree.leaves(moved))
