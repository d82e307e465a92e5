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


#: One compiled program for every 3 x 3 loss below (eager ops would compile one by one).
loss_fn = jax.jit(td_infonce.td_infonce_loss)


def as_f32(*arrays):
    return [jnp.asarray(x, jnp.float32) for x in arrays]


def test_loss_hand_values():
    next_logits = np.array([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0], [0.0, 0.0, 0.0]])
    goal_logits = np.array([[0.0, 1.0, 2.0], [-1.0, 0.0, 1.0], [3.0, 0.0, 0.0]])
    target_logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, -1.0, 0.5]])
    discounts = np.array([0.9, 0.9, 0.0])  # row 2 terminated: its future is s'_2 alone
    loss, metrics = loss_fn(*as_f32(next_logits, goal_logits, target_logits, discounts))
    expected = hand_loss(next_logits, goal_logits, target_logits, discounts)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    # row 0: log(e + 1 + e^-1) - 1 = 0.4076; row 1: log(e^0.5 + e^2 + 1) - 2 = 0.3064;
    # row 2: log 3 = 1.0986; their mean
    assert float(metrics["next_state_loss"]) == pytest.approx(0.6042, abs=1e-4)
    assert float(metrics["categorical_accuracy"]) == pytest.approx(2 / 3)  # row 2: a tie, j=0


def test_importance_weights_carry_no_gradient():
    logits = as_f32(*np.random.default_rng(0).normal(size=(3, 3, 3)))
    (discounts,) = as_f32(0.9 * np.ones(3))

    def loss_of_target(target_logits):
        return td_infonce.td_infonce_loss(logits[0], logits[1], target_logits, discounts)[0]

    grad = jax.jit(jax.grad(loss_of_target))(logits[2])
    np.testing.assert_array_equal(grad, 0.0)


def test_a_critic_that_matches_its_targets_beats_a_collapsed_one():
    target, zeros, sharp_next = as_f32(
        np.random.default_rng(1).normal(size=(3, 3)), np.zeros((3, 3)), 10.0 * np.eye(3)
    )
    (discounts,) = as_f32(0.9 * np.ones(3))
    sharp, _ = loss_fn(sharp_next, target, target, discounts)
    collapsed, _ = loss_fn(zeros, zeros, target, discounts)
    assert float(sharp) < float(collapsed)


@pytest.fixture(scope="module")
def tiny_agent():
    """A tiny dot-energy agent whose target critic differs from its critic (so the tests see
    which one weighs), a batch of 5 with one terminated transition, and a next action."""
    config = td_infonce.TDInfoNCEConfig(
        width=8, actor_width=8, repr_dim=4, energy="dot", discount=0.8, tau=0.25
    )
    nets = crl.build_nets(config, SIZES["action_dim"])

    @jax.jit
    def fresh(key):
        state = td_infonce.init(nets, (4, 2, 2), key)
        return state.replace(target_critic=jax.tree.map(lambda x: x + 0.3, state.target_critic))

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
    (next_action,) = as_f32(rng.uniform(-1, 1, (5, 2)))
    return nets, fresh(jax.random.PRNGKey(0)), batch, next_action


def test_critic_loss_wiring_against_hand_logits(tiny_agent):
    """φ reads (s, a, g_i); ψ reads s'_j in the first term and g_j in the second; the weights
    come from the *target* critic at (s'_i, a'_i, g_i). Dot energy: f = φ_i · ψ_j, by hand."""
    nets, state, b, next_action = tiny_agent

    @jax.jit
    def program(state):
        p = state.params
        critic = (p.sa_encoder, p.goal_encoder)

        def embed(sa_params, g_params, s, a, f):
            phi = nets.sa_encoder.apply(sa_params, jnp.concatenate([s, a, b["goal"]], axis=-1))
            return phi, nets.goal_encoder.apply(g_params, f)

        phi, psi_next = embed(*critic, b["state_obs"], b["action"], b["next_goal"])
        _, psi_goal = embed(*critic, b["state_obs"], b["action"], b["goal"])
        phi_bar, psi_bar = embed(*state.target_critic, b["next_state_obs"], next_action, b["goal"])
        loss, _ = td_infonce.critic_loss(nets, critic, state.target_critic, b, next_action)
        score = td_infonce.actor_score(nets, critic, b)(b["action"])
        return (phi, psi_next, psi_goal, phi_bar, psi_bar), loss, score

    embeddings, loss, score = program(state)
    phi, psi_next, psi_goal, phi_bar, psi_bar = (np.asarray(x, np.float64) for x in embeddings)
    n = len(phi)
    next_logits = np.array([[phi[i] @ psi_next[j] for j in range(n)] for i in range(n)])
    goal_logits = np.array([[phi[i] @ psi_goal[j] for j in range(n)] for i in range(n)])
    target_logits = np.array([[phi_bar[i] @ psi_bar[j] for j in range(n)] for i in range(n)])
    discounts = 0.8 * (1.0 - np.asarray(b["terminated"]))
    expected = hand_loss(next_logits, goal_logits, target_logits, discounts)
    assert float(loss) == pytest.approx(expected, rel=1e-5)

    # the actor's score: log softmax_j f(s_i, a_i, g_i, g_j) at j = i
    shifted = goal_logits - goal_logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(score, np.diagonal(log_softmax), rtol=1e-5, atol=1e-6)


def max_abs_diff(a, b):
    return jnp.max(jnp.abs(a - b))


def test_update_steps_the_critic_and_moves_the_target_by_polyak(tiny_agent):
    nets, state, batch, _ = tiny_agent

    @jax.jit
    def program(state, key):
        new, metrics = td_infonce.update(nets, state, batch, key)
        online = (new.params.sa_encoder, new.params.goal_encoder)
        expected = critics.polyak(state.target_critic, online, 0.25)
        target_error = jax.tree.map(max_abs_diff, new.target_critic, expected)
        moved = jax.tree.map(max_abs_diff, new.params, state.params)
        return metrics, target_error, moved

    metrics, target_error, moved = program(state, jax.random.PRNGKey(4))
    assert set(metrics) == set(td_infonce.METRICS)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert max(float(e) for e in jax.tree.leaves(target_error)) < 1e-6
    assert all(float(m) > 0 for m in jax.tree.leaves(moved))
