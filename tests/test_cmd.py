"""CMD: the loss against the formula written out by hand, the critic's wiring (which way the
quasimetric points, where the potential enters, what the invariance term trains), the actor's
score and one update."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from goalax.agents import cmd, crl

SIZES = dict(state_dim=4, goal_dim=2, action_dim=2)


def hand_loss(distances, potential, state_distances, penalty, invariance_coef) -> float:
    """``infonce_sym(c(g_j) - d_ij) + penalty × mean_i lse_i² + coef × mean_i d(ψ(ŝ_i), φ_i)``
    term by term."""
    batch = len(potential)
    logits = [[potential[j] - distances[i][j] for j in range(batch)] for i in range(batch)]
    row_lse = [np.log(sum(np.exp(logits[i][j]) for j in range(batch))) for i in range(batch)]
    col_lse = [np.log(sum(np.exp(logits[i][j]) for i in range(batch))) for j in range(batch)]
    forward = sum(row_lse[i] - logits[i][i] for i in range(batch)) / batch
    backward = sum(col_lse[j] - logits[j][j] for j in range(batch)) / batch
    lse_penalty = sum(value**2 for value in row_lse) / batch
    invariance = sum(state_distances) / batch
    return forward + backward + penalty * lse_penalty + invariance_coef * invariance


def test_loss_hand_values():
    distances = np.array([[0.5, 2.0, 3.0], [1.0, 0.2, 2.5], [4.0, 1.5, 0.0]])
    potential = np.array([0.3, -0.2, 1.0])
    state_distances = np.array([0.1, 0.4, 0.0])
    config = cmd.CMDConfig(logsumexp_penalty=0.1, invariance_coef=0.5)
    loss, metrics = jax.jit(cmd.cmd_loss, static_argnums=0)(
        config, *[jnp.asarray(x, jnp.float32) for x in (distances, potential, state_distances)]
    )
    expected = hand_loss(distances, potential, state_distances, 0.1, 0.5)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(metrics["invariance_loss"]) == pytest.approx(0.5 / 3, rel=1e-6)
    assert float(metrics["potential"]) == pytest.approx(1.1 / 3, rel=1e-6)
    # rows 0, 1 and 2 all rank their own goal first once the potential is added
    assert float(metrics["categorical_accuracy"]) == 1.0


def numpy_mrn(x, y) -> float:
    """MRN distance from x to y: ``||x_sym - y_sym|| + max_k ReLU(x_asym,k - y_asym,k)``."""
    half = len(x) // 2
    return float(np.linalg.norm(x[:half] - y[:half]) + max(0.0, np.max(x[half:] - y[half:])))


@pytest.fixture(scope="module")
def tiny_agent():
    """Tiny networks, a batch of 3 and, computed once in one compiled program, the goal
    encoder's outputs on ``goal_rows`` and ``φ(s, a)``."""
    config = cmd.CMDConfig(width=8, actor_width=8, repr_dim=4, invariance_coef=0.7)
    nets = cmd.build_nets(config, SIZES["action_dim"])
    state = jax.jit(lambda key: crl.init(nets, tuple(SIZES.values()), key))(jax.random.PRNGKey(0))
    rng = np.random.default_rng(1)
    batch = {
        "state_obs": rng.normal(size=(3, 4)),
        "action": rng.uniform(-1, 1, size=(3, 2)),
        "goal": rng.normal(size=(3, 2)),
        "state_goal": rng.normal(size=(3, 2)),
    }
    batch = {name: jnp.asarray(x, jnp.float32) for name, x in batch.items()}

    @jax.jit
    def embed(params):
        outputs = nets.goal_encoder.apply(params.goal_encoder, cmd.goal_rows(batch))
        return outputs, crl.sa_embedding(
            nets, params.sa_encoder, batch["state_obs"], batch["action"]
        )

    outputs, phi = embed(state.params)
    return nets, state.params, batch, outputs, phi


def test_critic_loss_is_cmd_loss_of_the_quasimetric_from_sa_to_goal(tiny_agent):
    nets, params, batch, outputs, phi = tiny_agent
    loss, _ = jax.jit(cmd.critic_loss, static_argnums=0)(nets, params.sa_encoder, outputs, batch)
    out, phi = np.asarray(outputs), np.asarray(phi)
    psi, potential, psi_state = out[:3, :4], out[:3, 4], out[3:, :4]
    distances = [[numpy_mrn(phi[i], psi[j]) for j in range(3)] for i in range(3)]
    state_distances = [numpy_mrn(psi_state[i], phi[i]) for i in range(3)]
    expected = hand_loss(distances, potential, state_distances, 0.1, 0.7)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_invariance_trains_the_goal_encoder_only(tiny_agent):
    """φ's gradient is the same with and without the invariance term; ψ(ŝ)'s is not."""
    nets, params, batch, outputs, _ = tiny_agent

    @jax.jit
    def grads(sa_params, outputs):
        def loss(coef, sa, out):
            config = cmd.CMDConfig(width=8, repr_dim=4, invariance_coef=coef)
            return cmd.critic_loss(nets._replace(config=config), sa, out, batch)[0]

        return [
            jax.grad(functools.partial(loss, coef), (0, 1))(sa_params, outputs)
            for coef in (0.7, 0.0)
        ]

    (sa_with, out_with), (sa_without, out_without) = grads(params.sa_encoder, outputs)
    for with_term, without in zip(
        jax.tree.leaves(sa_with), jax.tree.leaves(sa_without), strict=True
    ):
        np.testing.assert_allclose(with_term, without, rtol=1e-5, atol=1e-7)
    assert not np.allclose(out_with[3:], out_without[3:])  # the rows of ψ(ŝ)


def test_actor_score_is_minus_the_distance_without_potential(tiny_agent):
    nets, _, _, outputs, phi = tiny_agent
    score = np.asarray(jax.jit(cmd.actor_score, static_argnums=0)(nets, phi, outputs))
    out, phi = np.asarray(outputs), np.asarray(phi)
    np.testing.assert_allclose(score, [-numpy_mrn(phi[i], out[i, :4]) for i in range(3)], rtol=1e-5)


def test_one_update_reports_every_metric_finite():
    agent = cmd.make(cmd.CMDConfig(width=8, actor_width=8, repr_dim=4), **SIZES)
    batch = {
        "state_obs": jnp.ones((4, 4)) * jnp.arange(4.0)[:, None],
        "action": jnp.zeros((4, 2)),
        "goal": jnp.ones((4, 2)) * jnp.arange(4.0)[::-1, None],
        "state_goal": jnp.ones((4, 2)) * jnp.arange(4.0)[:, None],
    }
    state = jax.jit(agent.init)(jax.random.PRNGKey(0))
    new_state, metrics = jax.jit(agent.update)(state, batch, jax.random.PRNGKey(1))
    assert set(metrics) == set(agent.metric_names)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state.params, new_state.params)
    assert all(jax.tree.leaves(moved))


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (dict(energy="mrn", repr_dim=5), "--repr-dim must be even"),
        (dict(invariance_coef=-1.0), "--invariance-coef"),
    ],
)
def test_bad_configs_say_which_flag(overrides, fragment):
    with pytest.raises(ValueError, match=fragment):
        cmd.CMDConfig(**overrides).validate()
