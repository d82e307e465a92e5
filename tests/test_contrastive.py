"""Energies and contrastive losses: hand-worked values, invariants, gradients, regressions."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from goalax.contrastive import (
    ENERGIES,
    IQE_ALPHA,
    IQE_COMPONENTS,
    LOSSES,
    contrastive_loss,
    iqe_distance,
    logsumexp_penalty,
    mrn_distance,
    paired_logits,
    pairwise_iqe_distance,
    pairwise_logits,
)

# Eager JAX compiles every primitive for every new shape (slow on small CPUs): tests evaluate all
# losses (and all energies) in one jitted call per shape, and draw test data with numpy.


@jax.jit
def all_losses(logits):
    """{loss: (value, metrics)} for every loss and the penalty, one compile per logits shape."""
    return {
        **{loss: contrastive_loss(loss, logits) for loss in LOSSES},
        "logsumexp_penalty": logsumexp_penalty(logits),
    }


@jax.jit
def all_pairwise(phi, psi):
    return {energy: pairwise_logits(energy, phi, psi) for energy in ENERGIES}


@jax.jit
def all_paired(phi, psi):
    return {energy: paired_logits(energy, phi, psi) for energy in ENERGIES}


def normal(seed, shape):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), dtype=jnp.float32)


# Tiny batch for the energies: B = 2, d = 2, padded with zero columns to d = 8 (IQE's
# IQE_COMPONENTS = 8 components need d a multiple of 8; zero columns change no energy below).
DIM = 8
PHI = jnp.pad(jnp.array([[3.0, 0.0], [0.0, 1.0]]), ((0, 0), (0, DIM - 2)))
PSI = jnp.pad(jnp.array([[2.0, 1.0], [0.0, 3.0]]), ((0, 0), (0, DIM - 2)))

# Differences phi_i - psi_j:
#   (0,0): (1, -1)   (0,1): (3, -3)   (1,0): (-2, 0)   (1,1): (0, -2)
# cosine: phi rows normalise to (1, 0), (0, 1); psi rows to (2, 1)/√5, (0, 1).
SQRT5 = math.sqrt(5.0)
EXPECTED_ENERGIES = {
    "l2": [[-math.sqrt(2.0), -math.sqrt(18.0)], [-2.0, -2.0]],
    "l2_squared": [[-2.0, -18.0], [-4.0, -4.0]],
    "l1": [[-2.0, -6.0], [-2.0, -2.0]],
    # phi_0·psi_0 = 6, phi_0·psi_1 = 0, phi_1·psi_0 = 1, phi_1·psi_1 = 3.
    "dot": [[6.0, 0.0], [1.0, 3.0]],
    "cosine": [[2.0 / SQRT5, 0.0], [1.0 / SQRT5, 1.0]],
    # MRN: the symmetric half (columns 0-3) holds both nonzero columns, the asymmetric half is 0.
    "mrn": [[-math.sqrt(2.0), -math.sqrt(18.0)], [-2.0, -2.0]],
    # IQE: 8 components of 1 dim, each ReLU(psi_k - phi_k): (0, 1), (0, 3), (2, 0), (0, 2) on
    # the two nonzero columns, so max = m and mean = m / 8 with m = 1, 3, 2, 2.
    "iqe": [
        [-(IQE_ALPHA + (1 - IQE_ALPHA) / 8), -3 * (IQE_ALPHA + (1 - IQE_ALPHA) / 8)],
        [-2 * (IQE_ALPHA + (1 - IQE_ALPHA) / 8), -2 * (IQE_ALPHA + (1 - IQE_ALPHA) / 8)],
    ],
}


@pytest.mark.parametrize("energy", ENERGIES)
def test_pairwise_logits_hand_values(energy):
    logits = all_pairwise(PHI, PSI)[energy]
    np.testing.assert_allclose(logits, EXPECTED_ENERGIES[energy], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("energy", ENERGIES)
def test_paired_logits_is_the_diagonal(energy):
    phi, psi = normal(0, (2, 3, DIM))
    paired = all_paired(phi, psi)[energy]
    assert paired.shape == (3,)
    np.testing.assert_allclose(
        paired, jnp.diagonal(all_pairwise(phi, psi)[energy]), rtol=1e-6, atol=1e-6
    )


def test_cosine_normalises_each_row_not_the_batch():
    # Regression: the predecessor divided by the norm of the whole batch, so rescaling one row
    # changed every logit. Row-wise cosine must be unchanged by any positive per-row scaling.
    phi, psi = normal(1, (2, 3, DIM))
    scaled_phi = phi * jnp.array([[1.0], [1.0], [100.0]])
    logits = all_pairwise(phi, psi)["cosine"]
    scaled_logits = all_pairwise(scaled_phi, psi)["cosine"]
    np.testing.assert_allclose(scaled_logits, logits, rtol=1e-5, atol=1e-6)
    assert float(jnp.max(jnp.abs(logits))) <= 1.0 + 1e-6


# Logits for the losses. B = 2:        B = 3:
#   [[2, 0],                           [[2, 0, 1],
#    [1, 3]]                            [1, 3, 0],
#                                       [0, 0, 1]]
L2 = jnp.array([[2.0, 0.0], [1.0, 3.0]])
L3 = jnp.array([[2.0, 0.0, 1.0], [1.0, 3.0, 0.0], [0.0, 0.0, 1.0]])
e = math.e
log = math.log


def softplus(x):
    return log(1.0 + math.exp(x))


def log_sigmoid(x):
    return -softplus(-x)


FORWARD_L2 = ((-2 + log(e**2 + 1)) + (-3 + log(e + e**3))) / 2  # rows: {2, 0}, {1, 3}
BACKWARD_L2 = ((-2 + log(e**2 + e)) + (-3 + log(1 + e**3))) / 2  # columns: {2, 1}, {0, 3}
EXPECTED_LOSSES = {
    "infonce_forward": (L2, FORWARD_L2),
    "infonce_backward": (L2, BACKWARD_L2),
    # The sum of both directions, as in JaxGCRL: -mean(2 diag - lse_rows - lse_cols). On L3:
    # rows {2,0,1}, {1,3,0}, {0,0,1}; columns {2,1,0}, {0,3,0}, {1,0,1}; diagonal {2, 3, 1}.
    "infonce_sym": (
        L3,
        -(
            (2 * 2 - log(e**2 + 1 + e) - log(e**2 + e + 1))
            + (2 * 3 - log(e + e**3 + 1) - log(1 + e**3 + 1))
            + (2 * 1 - log(1 + 1 + e) - log(e + 1 + e))
        )
        / 3,
    ),
    # Labels I: diagonal BCE = softplus(-x), off-diagonal = softplus(x); mean over B^2 = 4.
    "binary_nce": (L2, (softplus(-2) + softplus(-3) + softplus(0) + softplus(1)) / 4),
    # FlatNCE's value is exactly 1 whatever the logits (its gradient is tested below).
    "flatnce": (L3, 1.0),
    # diag {2, 3, 1} mean 2; off-diagonal squares {0, 1, 1, 0, 0, 0} mean 2/6.
    "forward_backward": (L3, -2.0 + 0.5 * 2.0 / 6.0),
    # margins logits_ii - logits_ij: row 0: 2, 1; row 1: 2, 3; row 2: 1, 1.
    "dpo": (L3, -sum(log_sigmoid(m) for m in (2, 1, 2, 3, 1, 1)) / 6),
    # margins - 1: 1, 0, 1, 2, 0, 0 -> squares sum 6 over 6 negatives.
    "ipo": (L3, 1.0),
    # diag (x - 1)^2: 1, 4, 0; off-diagonal (x + 1)^2: 1, 4, 4, 1, 1, 1.
    "sppo": (L3, (1 + 4 + 0) / 3 + (1 + 4 + 4 + 1 + 1 + 1) / 6),
}


@pytest.mark.parametrize("loss", LOSSES)
def test_loss_hand_values(loss):
    logits, expected = EXPECTED_LOSSES[loss]
    value, _ = all_losses(logits)[loss]
    np.testing.assert_allclose(value, expected, rtol=1e-6)


def test_binary_nce_uses_identity_labels():
    # Regression: the predecessor scored every entry against the same label. With labels I the
    # value differs from both the all-zeros-label and the all-ones-label means.
    value, _ = all_losses(L2)["binary_nce"]
    all_zero_labels = np.mean([softplus(x) for x in (2, 0, 1, 3)])
    all_one_labels = np.mean([softplus(-x) for x in (2, 0, 1, 3)])
    assert abs(float(value) - all_zero_labels) > 0.1
    assert abs(float(value) - all_one_labels) > 0.1


def test_metrics_hand_values():
    _, metrics = all_losses(L3)["infonce_sym"]
    np.testing.assert_allclose(metrics["logits_pos"], 2.0)  # (2 + 3 + 1) / 3
    np.testing.assert_allclose(metrics["logits_neg"], 2.0 / 6.0)  # (0 + 1 + 1 + 0 + 0 + 0) / 6
    # Row argmaxes 0, 1, 2: all three rows pick their positive.
    np.testing.assert_allclose(metrics["categorical_accuracy"], 1.0)
    # Row 2 now prefers column 0 (5 > 1).
    _, metrics = all_losses(jnp.array([[2.0, 0.0, 1.0], [1.0, 3.0, 0.0], [5.0, 0.0, 1.0]]))[
        "infonce_sym"
    ]
    np.testing.assert_allclose(metrics["categorical_accuracy"], 2.0 / 3.0)


def test_flatnce_unflattened_metric_hand_value():
    # l_i = logsumexp_{j != i}(logits_ij - logits_ii):
    #   l_0 = log(e^-2 + e^-1), l_1 = log(e^-2 + e^-3), l_2 = log(2 e^-1) = log 2 - 1.
    _, metrics = all_losses(L3)["flatnce"]
    expected = (log(e**-2 + e**-1) + log(e**-2 + e**-3) + log(2) - 1) / 3
    np.testing.assert_allclose(metrics["flatnce_unflattened"], expected, rtol=1e-6)


def test_flatnce_gradient_matches_hand_formula():
    # d loss / d logits_ij = softmax_{j != i}(logits_i.)_j / B off the diagonal, -1 / B on it.
    grad = jax.jit(jax.grad(lambda x: contrastive_loss("flatnce", x)[0]))(L3)
    rows = np.asarray(L3, dtype=np.float64)
    expected = np.zeros_like(rows)
    for i in range(3):
        others = [j for j in range(3) if j != i]
        weights = np.exp(rows[i, others]) / np.sum(np.exp(rows[i, others]))
        expected[i, others] = weights / 3
        expected[i, i] = -1.0 / 3
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)


def test_logsumexp_penalty_hand_value():
    # Rows of L2: logsumexp {2, 0} = log(e^2 + 1), {1, 3} = log(e + e^3).
    expected = (log(e**2 + 1) ** 2 + log(e + e**3) ** 2) / 2
    np.testing.assert_allclose(all_losses(L2)["logsumexp_penalty"], expected, rtol=1e-6)


# A separating critic at the scale each loss aims for: IPO regresses margins to 1, SPPO
# logits to ±1 and FB negatives to 0, so "large diagonal" means their targets, not +∞.
SEPARATING = {"ipo": (0.5, -0.5), "sppo": (1.0, -1.0), "forward_backward": (5.0, 0.0)}


def _objective(loss, logits):
    value, metrics = all_losses(logits)[loss]
    # FlatNCE's value is constant 1; what it descends is the un-flattened mean l_i.
    return metrics["flatnce_unflattened"] if loss == "flatnce" else value


@pytest.mark.parametrize("loss", LOSSES)
@settings(max_examples=10, deadline=None)
@given(collapsed_value=st.floats(-3.0, 3.0), batch=st.sampled_from([2, 3]))
def test_separating_critic_beats_collapsed(loss, collapsed_value, batch):
    positive, negative = SEPARATING.get(loss, (5.0, -5.0))
    separating = np.where(np.eye(batch, dtype=bool), positive, negative).astype(np.float32)
    collapsed = np.full((batch, batch), collapsed_value, dtype=np.float32)
    assert _objective(loss, separating) < _objective(loss, collapsed) - 1e-3


@jax.jit
def all_gradients(phi, psi):
    """{"energy/loss": (d/dphi, d/dpsi)} of loss + logsumexp penalty + the actor's paired term.

    The chain rule is applied by hand (each energy's vjp, vmapped over the nine losses'
    gradients in logit space) so the program stays small: 45 full gradients compile slowly.
    """
    stacked_logits, energy_vjps, actor_grads = [], [], []
    for energy in ENERGIES:
        logits, energy_vjp = jax.vjp(functools.partial(pairwise_logits, energy), phi, psi)
        paired_mean = lambda a, b, energy=energy: jnp.mean(paired_logits(energy, a, b))
        stacked_logits.append(logits)
        energy_vjps.append(energy_vjp)
        actor_grads.append(jax.grad(paired_mean, argnums=(0, 1))(phi, psi))
    stacked_logits = jnp.stack(stacked_logits)  # [energy, B, B]
    penalty_grads = jax.vmap(jax.grad(logsumexp_penalty))(stacked_logits)
    loss_grads = jnp.stack(  # [loss, energy, B, B]
        [
            jax.vmap(jax.grad(lambda x, loss=loss: contrastive_loss(loss, x)[0]))(stacked_logits)
            for loss in LOSSES
        ]
    )
    grads = {}
    for k, energy in enumerate(ENERGIES):
        dphi, dpsi = jax.vmap(energy_vjps[k])(loss_grads[:, k] + penalty_grads[k])
        for n, loss in enumerate(LOSSES):
            grads[f"{energy}/{loss}"] = (dphi[n] + actor_grads[k][0], dpsi[n] + actor_grads[k][1])
    return grads


def test_gradients_finite_when_phi_equals_psi():
    # Repeated rows and a zero row: the L2 sqrt, the L1 kink and the cosine norm all sit at 0
    # (and every max and sort of MRN and IQE ties).
    phi = jnp.tile(jnp.array([[0.5, -1.0], [0.5, -1.0], [0.0, 0.0]]), (1, DIM // 2))
    grads = all_gradients(phi, phi)
    assert len(grads) == len(ENERGIES) * len(LOSSES)
    not_finite = [name for name, g in grads.items() if not all(np.isfinite(x).all() for x in g)]
    assert not not_finite


@settings(max_examples=25, deadline=None)
@given(
    logits=st.sampled_from([2, 3]).flatmap(
        lambda b: st.lists(st.floats(-20.0, 20.0), min_size=b * b, max_size=b * b).map(
            lambda xs: jnp.asarray(xs, dtype=jnp.float32).reshape(b, b)
        )
    )
)
def test_nonnegative_losses(logits):
    values = all_losses(logits)
    for loss in ("infonce_forward", "infonce_backward", "infonce_sym", "binary_nce", "dpo"):
        assert float(values[loss][0]) >= -1e-5, loss
    assert float(values["logsumexp_penalty"]) >= 0.0
    np.testing.assert_allclose(values["flatnce"][0], 1.0, rtol=1e-6)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_permuting_pairs_leaves_every_loss_unchanged(seed):
    phi, psi = normal(seed, (2, 3, DIM))
    perm = np.random.default_rng(seed).permutation(3)
    logits = all_pairwise(phi, psi)
    permuted = all_pairwise(phi[perm], psi[perm])
    for energy in ENERGIES:
        np.testing.assert_allclose(permuted[energy], logits[energy][perm][:, perm], atol=1e-5)
        values, permuted_values = all_losses(logits[energy]), all_losses(permuted[energy])
        for loss in LOSSES:
            np.testing.assert_allclose(
                permuted_values[loss][0], values[loss][0], rtol=1e-5, err_msg=f"{energy}/{loss}"
            )


def test_unknown_names_raise_with_valid_names():
    with pytest.raises(ValueError, match="infonce_sym"):
        contrastive_loss("infonce", L2)
    with pytest.raises(ValueError, match="cosine"):
        pairwise_logits("euclid", PHI, PSI)
    with pytest.raises(ValueError, match="l2_squared"):
        paired_logits("euclid", PHI, PSI)


def test_infonce_sym_is_the_sum_of_both_directions():
    value, _ = all_losses(L3)["infonce_sym"]
    forward, _ = all_losses(L3)["infonce_forward"]
    backward, _ = all_losses(L3)["infonce_backward"]
    np.testing.assert_allclose(value, forward + backward, rtol=1e-6)


@pytest.mark.parametrize("energy", ["l2", "l2_squared"])
@pytest.mark.parametrize("norm", [1.0, 10.0, 30.0])
def test_pairwise_distances_accurate_at_large_norms(energy, norm):
    # Positives 1e-3..1e-1 apart on embeddings of norm 1-30 (a common offset, as trained
    # encoders drift): the matmul form must agree with the float64 broadcast difference to a
    # small fraction of each pair's distance, on the diagonal and off it.
    rng = np.random.default_rng(int(norm))
    batch, dim = 64, 16
    direction = rng.normal(size=dim)
    offset = norm * direction / np.linalg.norm(direction)
    phi = offset + 0.3 * rng.normal(size=(batch, dim))
    psi = phi + rng.uniform(1e-3, 1e-1, size=(batch, 1)) * rng.normal(size=(batch, dim)) / 4
    psi[5] = phi[7] + 1e-2  # a near-duplicate off the diagonal
    distance = np.linalg.norm(phi[:, None, :] - psi[None, :, :], axis=-1)
    expected = -distance if energy == "l2" else -(distance**2)
    got = np.asarray(
        pairwise_logits(energy, jnp.asarray(phi, jnp.float32), jnp.asarray(psi, jnp.float32)),
        np.float64,
    )
    scale = distance if energy == "l2" else distance**2
    relative = np.abs(got - expected) / scale
    # ||a||^2 + ||b||^2 - 2 a.b on the raw float32 inputs is off by 2 % at norm 1 and by more
    # than the distance itself at norms 10 and 30.
    assert relative.max() < 1e-3, f"worst relative error {relative.max():.2e}"


# Quasimetric energies: MRN (Liu et al. 2023) and IQE (Wang & Isola 2022).


def test_mrn_distance_hand_values():
    # Halves: sym (0, 0) vs (3, 4): ||.||_2 = 5. Asym (1, 3) vs (2, 0): x - y = (-1, 3), so
    # d(x, y) = 5 + max(ReLU(-1), ReLU(3)) = 8; y - x = (1, -3), so d(y, x) = 5 + 1 = 6.
    x = jnp.array([0.0, 0.0, 1.0, 3.0])
    y = jnp.array([3.0, 4.0, 2.0, 0.0])
    np.testing.assert_allclose(mrn_distance(x, y), 8.0, rtol=1e-6)
    np.testing.assert_allclose(mrn_distance(y, x), 6.0, rtol=1e-6)


@functools.partial(jax.jit, static_argnames="components")
def iqe(x, y, components, alpha=IQE_ALPHA):
    """``iqe_distance``, compiled once per ``components`` (eager JAX is slow here)."""
    return iqe_distance(x, y, components, alpha)


def test_iqe_distance_hand_values():
    # Component 1 (unsorted on purpose): intervals [x_j, max(x_j, y_j)] = [2, 4], [5, 5],
    # [0, 3], [1, 2]: [1, 2] lies inside [0, 3], which overlaps [2, 4]: union [0, 4], length 4.
    # Component 2: [0, 1], [10, 12], [7, 7] (empty: y < x), [7, 7.5]: disjoint, 1 + 2 + 0.5.
    x = jnp.array([2.0, 5.0, 0.0, 1.0, 0.0, 10.0, 7.0, 7.0])
    y = jnp.array([4.0, 5.0, 3.0, 2.0, 1.0, 12.0, 6.0, 7.5])
    components = [4.0, 3.5]
    maxmean = 0.3 * max(components) + 0.7 * np.mean(components)
    np.testing.assert_allclose(iqe(x, y, components=2, alpha=0.3), maxmean, rtol=1e-6)
    # One component of all eight: [0, 1] now overlaps [0, 4], so [0, 4] + [7, 7.5] + [10, 12].
    np.testing.assert_allclose(iqe(x, y, components=1), 4.0 + 0.5 + 2.0, rtol=1e-6)
    # The other way: [4, 4], [5, 5], [3, 3], [2, 2] (all empty); [1, 1], [12, 12], [6, 7],
    # [7.5, 7.5]: length 1.
    expected_back = IQE_ALPHA * 1.0 + (1 - IQE_ALPHA) * 0.5
    np.testing.assert_allclose(iqe(y, x, components=2), expected_back, rtol=1e-6)


def _union_length(starts, ends) -> float:
    """Length of a union of intervals by merging them in order (float64 reference)."""
    total, reach = 0.0, -np.inf
    for start, end in sorted(zip(starts, ends, strict=True)):
        total += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return total


def _iqe_reference(x, y, components, alpha):
    parts = np.reshape(x, (components, -1)), np.reshape(y, (components, -1))
    lengths = [_union_length(a, np.maximum(a, b)) for a, b in zip(*parts, strict=True)]
    return alpha * max(lengths) + (1 - alpha) * np.mean(lengths)


#: Distances under test: the public functions and the two CRL energies as distances, d = 16.
QUASIMETRICS = {
    "mrn_distance": mrn_distance,
    "iqe_distance(4 components)": functools.partial(iqe_distance, components=4),
    "-energy mrn": lambda x, y: -paired_logits("mrn", x, y),
    "-energy iqe": lambda x, y: -paired_logits("iqe", x, y),
}


@jax.jit
def quasimetric_facts(x, y, z):
    """Per distance: d(x, y), d(y, x), d(x, z), d(y, z), d(x, x) and the gradients of d at
    ``x == y`` for rows ``[N, 16]``; and IQE of all pairs, by ``pairwise_iqe_distance`` and by
    broadcasting ``iqe_distance``."""
    facts = {}
    for name, fn in QUASIMETRICS.items():
        grads = jax.grad(lambda a, b, fn=fn: jnp.sum(fn(a, b)), argnums=(0, 1))(x, x)
        facts[name] = (fn(x, y), fn(y, x), fn(x, z), fn(y, z), fn(x, x), grads)
    all_pairs = (pairwise_iqe_distance(x, y, 4), iqe_distance(x[:, None], y[None], 4))
    return facts, all_pairs


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), grid=st.booleans())
def test_mrn_and_iqe_are_quasimetrics(seed, grid):
    # On a coarse grid many coordinates tie, the edge cases of the max and the sort.
    rng = np.random.default_rng(seed)
    points = rng.integers(-2, 3, size=(3, 32, 16)) * 0.5 if grid else rng.normal(size=(3, 32, 16))
    x, y, z = jnp.asarray(points, jnp.float32)
    facts, (pairwise, broadcast) = jax.device_get(quasimetric_facts(x, y, z))
    assert len(facts) == len(QUASIMETRICS)
    for name, (xy, yx, xz, yz, xx, grads) in facts.items():
        np.testing.assert_array_equal(xx, 0.0, err_msg=name)
        assert (xy >= 0).all() and (yx >= 0).all(), name
        assert (xz <= xy + yz + 1e-5).all(), name  # d(x, z) <= d(x, y) + d(y, z)
        assert np.abs(xy - yx).max() > 0.1, f"{name} is symmetric on 32 random pairs"
        assert all(np.isfinite(g).all() for g in grads), name
    expected = [_iqe_reference(a, b, 4, IQE_ALPHA) for a, b in zip(*points[:2], strict=True)]
    np.testing.assert_allclose(facts["iqe_distance(4 components)"][0], expected, rtol=1e-5)
    np.testing.assert_allclose(pairwise, broadcast, rtol=1e-5, atol=1e-6)


def test_quasimetrics_refuse_sizes_they_cannot_split():
    with pytest.raises(ValueError, match="even"):
        mrn_distance(jnp.zeros(3), jnp.zeros(3))
    with pytest.raises(ValueError, match="divides the embedding size 12"):
        iqe_distance(jnp.zeros(12), jnp.zeros(12), components=8)
    assert 64 % IQE_COMPONENTS == 0  # the default --repr-dim works with --energy iqe
