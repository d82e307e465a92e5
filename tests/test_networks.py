"""Networks: shapes, parameter trees, deep residual gradients, tanh-Gaussian log-probabilities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from goalax.networks import (
    LOG_STD_MAX,
    LOG_STD_MIN,
    MLP,
    TanhGaussianActor,
    deterministic_action,
    sample_tanh_gaussian,
)

OBS = jnp.asarray(np.random.default_rng(0).normal(size=(8, 10)), dtype=jnp.float32)


def param_shapes_full(module, x=OBS):
    """Variables of ``module`` as shapes, without running (or compiling) anything."""
    return jax.eval_shape(module.init, jax.random.key(0), x)


def param_shapes(module, x=OBS):
    return param_shapes_full(module, x)["params"]


def names_in(tree):
    return {str(getattr(k, "key", k)) for path, _ in jax.tree.leaves_with_path(tree) for k in path}


def test_mlp_output_shapes_and_finite():
    nets = {
        "plain": MLP(out_dim=5, width=16, depth=3),
        "residual": MLP(out_dim=5, width=16, depth=4, residual=True),
    }
    # One jitted program for both (compiling is the slow part on CPU); LayerNorm: actor test.
    outputs = jax.jit(
        lambda x: {name: net.apply(net.init(jax.random.key(0), x), x) for name, net in nets.items()}
    )(OBS)
    for name, out in outputs.items():
        assert out.shape == (8, 5), name
        assert bool(jnp.all(jnp.isfinite(out))), name
    # A leading batch shape of any rank works (Dense acts on the last axis).
    assert jax.eval_shape(
        nets["residual"].apply, param_shapes_full(nets["residual"]), jnp.zeros((2, 3, 10))
    ).shape == (2, 3, 5)


def test_layer_norm_flag_adds_layer_norm_params():
    plain = param_shapes(MLP(out_dim=3, width=16, depth=3, layer_norm=False))
    normed = param_shapes(MLP(out_dim=3, width=16, depth=3, layer_norm=True))
    assert not any(name.startswith("layer_norm") for name in names_in(plain))
    assert {f"layer_norm_{i}" for i in range(3)} <= set(normed)
    assert normed["layer_norm_0"]["scale"].shape == (16,)
    # Same Dense layers either way: the flag adds LayerNorm and nothing else.
    assert {k for k in normed if k.startswith("dense")} == {
        k for k in plain if k.startswith("dense")
    }


def test_residual_param_tree():
    # depth 8 = two blocks of four Dense → LayerNorm → swish, stacked along a leading axis.
    params = param_shapes(MLP(out_dim=3, width=16, depth=8, residual=True))
    assert set(params) == {"dense_0", "layer_norm_0", "blocks", "output"}
    assert set(params["blocks"]) == {
        f"{kind}_{i}" for kind in ("dense", "layer_norm") for i in range(4)
    }
    assert params["blocks"]["dense_3"]["kernel"].shape == (2, 16, 16)
    assert params["output"]["kernel"].shape == (16, 3)


@pytest.mark.parametrize("depth", [0, 2, 6, 63])
def test_residual_depth_must_be_positive_multiple_of_four(depth):
    with pytest.raises(ValueError, match="multiple of 4"):
        MLP(out_dim=3, depth=depth, residual=True)


def _init_outputs_grads(net):
    """Init ``net``, its outputs and ``d mean(out * w) / d params`` (a loss of scale 1).

    For a residual net also the outputs with every block LayerNorm zeroed (scale and bias 0), so
    each branch is ``swish(0) = 0`` and only the skips carry the signal.
    """
    weights = jnp.asarray(np.random.default_rng(1).normal(size=(8, net.out_dim)), jnp.float32)

    @jax.jit  # one program (init, forward, backward): compiling is the slow part on CPU
    def run(x, weights):
        params = net.init(jax.random.key(0), x)

        def loss(params):
            outputs = net.apply(params, x)
            return jnp.mean(outputs * weights), outputs

        grads, outputs = jax.grad(loss, has_aux=True)(params)
        if not net.residual:
            return params, outputs, grads, None
        zero_norms = lambda path, leaf: jnp.zeros_like(leaf) if "layer_norm" in str(path) else leaf
        blocks = jax.tree_util.tree_map_with_path(zero_norms, params["params"]["blocks"])
        zeroed = net.apply({"params": {**params["params"], "blocks": blocks}}, x)
        return params, outputs, grads, zeroed

    return run(OBS, weights)


def _first_layer_relative_grad(params, grads):
    """``||dL/dW_1|| / ||W_1||`` for the first Dense kernel."""
    kernel, grad = params["params"]["dense_0"]["kernel"], grads["params"]["dense_0"]["kernel"]
    return float(jnp.linalg.norm(grad) / jnp.linalg.norm(kernel))


def _swish(x):
    return x / (1.0 + np.exp(-x))


def test_depth_64_residual_critic_trains_at_init():
    net = MLP(out_dim=16, width=64, depth=64, residual=True)
    params, outputs, grads, zeroed_blocks_outputs = _init_outputs_grads(net)
    assert bool(jnp.all(jnp.isfinite(outputs)))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert _first_layer_relative_grad(params, grads) > 1e-3
    # Every block, including the first, gets a gradient of the same order as the output layer.
    block_grads = jnp.linalg.norm(grads["params"]["blocks"]["dense_0"]["kernel"], axis=(1, 2))
    output_grad = jnp.linalg.norm(grads["params"]["output"]["kernel"])
    assert float(jnp.min(block_grads)) > 1e-2 * float(output_grad)

    # The skips: with zero branches the net is output(swish(LayerNorm(dense_0(x)))), computed
    # here in numpy (without skips it would collapse to the output bias).
    p = jax.tree.map(np.asarray, params["params"])
    hidden = OBS @ p["dense_0"]["kernel"] + p["dense_0"]["bias"]
    centred = hidden - hidden.mean(axis=-1, keepdims=True)
    normed = centred / np.sqrt(np.mean(centred**2, axis=-1, keepdims=True) + 1e-6)
    hidden = _swish(normed * p["layer_norm_0"]["scale"] + p["layer_norm_0"]["bias"])
    expected = hidden @ p["output"]["kernel"] + p["output"]["bias"]
    np.testing.assert_allclose(zeroed_blocks_outputs, expected, rtol=1e-4, atol=1e-5)


def test_plain_deep_swish_stack_vanishes():
    # The check above can fail: a plain 16-layer swish MLP without LayerNorm or skips shrinks its
    # signal at every layer, and its first-layer gradient is orders of magnitude below 1e-3.
    params, _, grads, _ = _init_outputs_grads(MLP(out_dim=16, width=64, depth=16))
    assert _first_layer_relative_grad(params, grads) < 1e-4


def test_actor_shapes_and_log_std_range():
    actor = TanhGaussianActor(action_dim=3, width=16, depth=2, layer_norm=True)

    @jax.jit
    def init_apply(obs):
        params = actor.init(jax.random.key(0), obs)
        # Huge inputs saturate the squash but must never leave [LOG_STD_MIN, LOG_STD_MAX].
        return actor.apply(params, obs), actor.apply(params, 1e4 * obs)

    (mean, log_std), (_, extreme_log_std) = init_apply(OBS)
    assert mean.shape == log_std.shape == (8, 3)
    assert float(jnp.min(extreme_log_std)) >= LOG_STD_MIN
    assert float(jnp.max(extreme_log_std)) <= LOG_STD_MAX


sample = jax.jit(sample_tanh_gaussian)


def test_log_prob_matches_density_of_tanh_gaussian():
    # Reference in float64: for a = tanh(x), x ~ N(m, s^2) independently per dimension,
    # p(a) = prod_k N(atanh(a_k); m_k, s_k) / (1 - a_k^2).
    num, mean_row, log_std_row = 256, np.array([0.3, -0.8]), np.array([-0.5, 0.2])
    mean = jnp.asarray(np.tile(mean_row, (num, 1)), jnp.float32)
    log_std = jnp.asarray(np.tile(log_std_row, (num, 1)), jnp.float32)
    action, log_prob = sample(mean, log_std, jax.random.key(3))
    assert action.shape == (num, 2) and log_prob.shape == (num,)
    a = np.asarray(action, dtype=np.float64)
    assert np.all(np.abs(a) < 1.0)
    x, std = np.arctanh(a), np.exp(log_std_row)
    gaussian = -0.5 * ((x - mean_row) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    expected = np.sum(gaussian - np.log1p(-(a**2)), axis=-1)
    np.testing.assert_allclose(log_prob, expected, rtol=1e-4, atol=1e-3)


def test_log_prob_finite_when_tanh_saturates():
    # Far in the tails 1 - tanh(x)^2 underflows to 0 in float32; the softplus form stays finite.
    mean = jnp.array([[20.0, -30.0]])
    log_std = jnp.full((1, 2), LOG_STD_MIN)

    def log_prob_of(mean, log_std):
        return sample_tanh_gaussian(mean, log_std, jax.random.key(0))[1].sum()

    @jax.jit
    def value_grads_noise(mean, log_std):
        value, grads = jax.value_and_grad(log_prob_of, argnums=(0, 1))(mean, log_std)
        return value, grads, jax.random.normal(jax.random.key(0), mean.shape)

    value, grads, noise = value_grads_noise(mean, log_std)
    assert bool(jnp.isfinite(value))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)
    # Float64 reference with the same noise: for large |x|, -log(1 - tanh(x)^2)
    # = 2|x| - 2 log 2 + 2 log(1 + e^{-2|x|}) ≈ 2|x| - 2 log 2.
    noise = np.asarray(noise, dtype=np.float64)  # the ε that sample_tanh_gaussian drew
    x = np.asarray(mean, np.float64) + np.exp(LOG_STD_MIN) * noise
    gaussian = -0.5 * noise**2 - LOG_STD_MIN - 0.5 * np.log(2 * np.pi)
    expected = np.sum(
        gaussian + 2 * np.abs(x) - 2 * np.log(2.0) + 2 * np.log1p(np.exp(-2 * np.abs(x)))
    )
    np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_deterministic_action_is_tanh_of_mean():
    mean = jnp.array([[0.0, 1.0, -50.0]])
    np.testing.assert_allclose(
        jax.jit(deterministic_action)(mean), [[0.0, np.tanh(1.0), -1.0]], rtol=1e-6
    )


def test_dense_init_is_variance_scaling_one_third_fan_in_uniform():
    # The reference's init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), std 1/sqrt(3 fan_in), zero bias.
    from goalax.networks import MLP, TanhGaussianActor

    fan_in = 300
    critic = MLP(out_dim=64, width=512, depth=2).init(jax.random.PRNGKey(0), jnp.zeros((1, fan_in)))
    actor = TanhGaussianActor(action_dim=8, width=512).init(
        jax.random.PRNGKey(1), jnp.zeros((1, fan_in))
    )
    for params in (critic["params"], actor["params"]["trunk"]):
        kernel = np.asarray(params["dense_0"]["kernel"])
        bound = 1.0 / np.sqrt(fan_in)
        assert np.abs(kernel).max() <= bound
        assert np.abs(kernel).max() > 0.99 * bound  # uniform, so the bound is reached
        np.testing.assert_allclose(kernel.std(), 1.0 / np.sqrt(3 * fan_in), rtol=0.02)
        np.testing.assert_array_equal(params["dense_0"]["bias"], 0.0)
        hidden = np.asarray(params["dense_1"]["kernel"])
        np.testing.assert_allclose(hidden.std(), 1.0 / np.sqrt(3 * 512), rtol=0.02)
