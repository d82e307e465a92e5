"""QRL: the Lagrangian's pieces against numpy written from the paper's formulas, the dual ascent
of λ, and the latent dynamics' residual form. The learning run is in tests/test_learning.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from goalax import contrastive
from goalax.agents import qrl

SIZES = dict(state_dim=4, goal_dim=2, action_dim=2)
TINY = qrl.QRLConfig(
    latent_dim=4, iqe_dim=8, iqe_components=2, depth=1, width=8, actor_depth=1, actor_width=8
)


def union_length(starts, ends) -> float:
    """Total length of the union of the intervals ``[starts_j, ends_j]`` (merge after sorting)."""
    total, reach = 0.0, -np.inf
    for start, end in sorted(zip(starts, ends, strict=True)):
        total += max(end - max(start, reach), 0.0)
        reach = max(reach, end)
    return total


def numpy_iqe(x, y, components, alpha):
    """IQE (Wang & Isola 2022): per component, the length of the union of ``[x_j, max(x_j,
    y_j)]``; then ``alpha · max + (1 - alpha) · mean`` over components."""
    out = []
    for xi, yi in zip(x, y, strict=True):
        lengths = [
            union_length(xc, np.maximum(xc, yc))
            for xc, yc in zip(xi.reshape(components, -1), yi.reshape(components, -1), strict=True)
        ]
        out.append(alpha * max(lengths) + (1 - alpha) * np.mean(lengths))
    return np.array(out)


def test_lagrangian_matches_the_formula_on_a_tiny_batch():
    rng = np.random.default_rng(0)
    px, p_goal, p_next = (rng.normal(scale=2.0, size=(3, 8)).astype(np.float32) for _ in "abc")
    alpha = 1.0 / (1.0 + np.e)
    random_dist = numpy_iqe(px, p_goal, 2, alpha)
    step_dist = numpy_iqe(px, p_next, 2, alpha)
    dynamics, lagrange = 0.7, 0.3
    config = qrl.QRLConfig(softplus_beta=0.5, softplus_offset=3.0, epsilon=0.25)

    # -E[φ(d)], φ(d) = -softplus(offset - d; β) = -log(1 + exp(β (offset - d))) / β.
    push = np.mean(np.log1p(np.exp(0.5 * (3.0 - random_dist))) / 0.5)
    sq_dev = np.mean(np.maximum(step_dist - 1.0, 0.0) ** 2)
    expected = push + lagrange * (sq_dev - 0.25**2) + 0.1 * dynamics
    assert sq_dev > 0.25**2  # the batch violates the constraint: λ's term is not trivial

    jax_random = contrastive.iqe_distance(jnp.asarray(px), jnp.asarray(p_goal), 2, alpha)
    jax_step = contrastive.iqe_distance(jnp.asarray(px), jnp.asarray(p_next), 2, alpha)
    np.testing.assert_allclose(jax_random, random_dist, rtol=1e-5)
    loss, jax_push, jax_sq_dev = qrl.lagrangian(config, jax_random, jax_step, dynamics, lagrange)
    np.testing.assert_allclose(jax_push, push, rtol=1e-5)
    np.testing.assert_allclose(jax_sq_dev, sq_dev, rtol=1e-5)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_constraint_penalty_counts_only_steps_longer_than_one():
    step_dist = jnp.array([0.0, 0.5, 1.0, 1.5, 3.0])
    np.testing.assert_allclose(qrl.squared_deviation(step_dist), (0.25 + 4.0) / 5, rtol=1e-6)


def test_push_saturates_beyond_the_offset():
    far = qrl.global_push(jnp.array([100.0]), beta=0.1, offset=15.0)
    near = qrl.global_push(jnp.array([0.0]), beta=0.1, offset=15.0)
    assert float(far) < 3e-3 and float(near) == pytest.approx(15.0 + np.log1p(np.exp(-1.5)) / 0.1)


def tiny_batch(batch_size: int = 8) -> dict:
    """Random transitions and goals of the point task's sizes."""
    rng = np.random.default_rng(1)
    names = {"state_obs": 4, "next_state_obs": 4, "next_goal": 2, "action": 2, "goal": 2}
    names |= {"actor_state_obs": 4, "actor_goal": 2}
    return {
        name: jnp.asarray(rng.normal(size=(batch_size, dim)), jnp.float32)
        for name, dim in names.items()
    }


def scaled(critic: qrl.Critic, factor: float) -> qrl.Critic:
    """The critic with its projector's output layer scaled: distances scale by ``factor``."""
    projector = jax.tree_util.tree_map_with_path(
        lambda path, leaf: leaf * factor if "output" in jax.tree_util.keystr(path) else leaf,
        critic.projector,
    )
    return critic.replace(projector=projector)


def test_lagrange_multiplier_ascends_while_the_constraint_is_violated():
    """λ's step follows the sign of ``E[relu(d_step - 1)²] - ε²``: it grows while distances
    are large (steps longer than one) and shrinks when every distance is zero."""
    agent = qrl.make(TINY, **SIZES)
    state = agent.init(jax.random.PRNGKey(0))
    lagrange = float(jax.nn.softplus(state.params.raw_lagrange))
    update = jax.jit(agent.update)
    for factor, grows in ((100.0, True), (0.0, False)):
        critic = scaled(state.params.critic, factor)
        start = state.replace(params=state.params.replace(critic=critic))
        _, metrics = update(start, tiny_batch(), jax.random.PRNGKey(1))
        assert (float(metrics["sq_deviation"]) > TINY.epsilon**2) == grows
        assert (float(metrics["lagrange_multiplier"]) > lagrange) == grows
        assert set(metrics) == set(agent.metric_names)


def test_zero_dynamics_network_predicts_no_move():
    """``T(z, a) = z + MLP(z, a)``: with the MLP's weights zero the prediction is ``z``."""
    nets = qrl.build_nets(TINY, action_dim=2)
    state = qrl.init(nets, (4, 2, 2), jax.random.PRNGKey(0))
    critic = state.params.critic.replace(
        dynamics=jax.tree.map(jnp.zeros_like, state.params.critic.dynamics)
    )
    z = jnp.arange(8.0).reshape(2, 4)
    np.testing.assert_array_equal(qrl.latent_step(nets, critic, z, jnp.ones((2, 2))), z)


def test_bad_iqe_split_names_the_flags():
    with pytest.raises(ValueError, match="--iqe-dim must be a multiple of --iqe-components"):
        qrl.make(qrl.QRLConfig(iqe_dim=100, iqe_components=64), **SIZES)
