"""The GoalEnv contract (``tests/test_envs.py``) on the six Franka Panda arm tasks, from ONE
compiled program.

The six tasks are the reference's, each with its own model (reach has no gripper, grasp has
fingertip bodies, the bins have walls), so the program holds six physics. Compiling MJX's Panda
costs tens of seconds per program on these CPUs, far more than adding a physics to one program,
so the program runs every task's reset and ``N_ARM_STEPS`` steps (``Arm.reset_inputs`` +
``pipeline_init`` + ``make_state``, which is ``Arm.reset``, then ``Arm.step``), and all the
contract tests read its outputs: once for every task's contract, twice more for determinism.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_envs import (
    N_ENVS,
    SMOKE_COMPILER_OPTIONS,
    add_contract_tests,
    random_actions,
    reset_keys,
)
from test_envs import (
    test_observation_ends_with_goal_and_metrics_agree as generic_observation_test,
)

from goalax import envs
from goalax.envs import arm

VARIANTS = tuple(name for name in envs.names() if name.startswith("arm_"))
N_ARM_STEPS = 20


def arm_actions(env) -> jax.Array:
    """``[N_ARM_STEPS, N_ENVS, A]``: the first steps of the contract's random actions."""
    return random_actions(jax.random.PRNGKey(1), env)[:N_ARM_STEPS]


def first_states(env, keys):
    """``(first states [N_ENVS], chain goals [N_RESETS])`` of ``Arm.reset``'s parts: only the
    first ``N_ENVS`` resets run the physics, the chain's only report their goals."""
    q, qd, goals = jax.vmap(env.reset_inputs)(keys)
    data = jax.vmap(env.pipeline_init)(q[:N_ENVS], qd[:N_ENVS])
    first = jax.vmap(lambda d, g: env.make_state(d, g, {"goal": g}))(data, goals[:N_ENVS])
    return first, goals[N_ENVS:]


def shared_program(arms):
    """Compiled ``(keys [V, N_ENVS + N_RESETS], actions: per task [T, N_ENVS, A])`` to
    per-task lists of ``(first states, step outputs, chain goals)``."""

    def program(keys, actions):
        out = ([], [], [])
        for i, env in enumerate(arms):
            first, chain = first_states(env, keys[i])

            def step(state, action, env=env):
                state = jax.vmap(env.step)(state, action)
                return state, {
                    "obs": state.obs,
                    "reward": state.reward,
                    "done": state.done,
                    "metrics": state.metrics,
                    "goal": state.info["goal"],
                    "lowest_z": jnp.full(state.reward.shape, jnp.inf),  # never tested: no floor
                }

            _, outputs = jax.lax.scan(step, first, actions[i])
            for part, value in zip(out, (first, outputs, chain), strict=True):
                part.append(value)
        return out

    keys = jnp.stack([reset_keys(0)] * len(arms))
    actions = [arm_actions(env) for env in arms]
    return jax.jit(program).lower(keys, actions).compile(compiler_options=SMOKE_COMPILER_OPTIONS)


@pytest.fixture(scope="module")
def arm_run():
    """The tasks, ``run(seed)`` (every task's rollout from ``reset_keys(seed)`` and the same
    actions) and the outputs of ``run(0)``, which every task's contract tests read."""
    arms = [envs.make(name) for name in VARIANTS]
    program = shared_program(arms)
    actions = [arm_actions(env) for env in arms]

    def run(seed: int):
        return jax.block_until_ready(program(jnp.stack([reset_keys(seed)] * len(arms)), actions))

    return arms, run, run(0)


@pytest.fixture(scope="module", params=VARIANTS)
def task(request, arm_run):
    arms, _, (first, outputs, chains) = arm_run
    index = VARIANTS.index(request.param)
    return {
        "name": request.param,
        "env": arms[index],
        "first": first[index],
        "outputs": outputs[index],
        "chain_goals": chains[index],
    }


# One determinism test for all six tasks, below, instead of one per task; grasp's goal moves.
add_contract_tests(
    globals(),
    skip=(
        "test_reset_is_deterministic_given_key",
        "test_observation_ends_with_goal_and_metrics_agree",
    ),
)


def test_observation_ends_with_goal_and_metrics_agree(task):
    """The contract's test, but for grasp, whose goal follows the cube (as the reference's):
    after every step its fingertip targets sit either side of the cube, 7.5 cm apart."""
    if task["name"] != "arm_grasp":
        generic_observation_test(task)
        return
    env, out = task["env"], task["outputs"]
    obs, goal, metrics = out["obs"], out["goal"], out["metrics"]
    np.testing.assert_array_equal(obs[..., env.state_dim :], goal)
    expected_goal = jax.vmap(jax.vmap(arm.grasp_goal))(jnp.asarray(obs[..., :3]))
    np.testing.assert_allclose(goal, expected_goal, atol=1e-6)
    achieved = env.achieved_goal(jnp.asarray(obs[..., : env.state_dim]))
    expected = env.goal_metrics(achieved, jnp.asarray(goal))
    np.testing.assert_allclose(metrics["dist"], expected["dist"], rtol=1e-5, atol=1e-6)
    for name in ("success", "success_easy"):
        np.testing.assert_array_equal(metrics[name], expected[name])
    np.testing.assert_array_equal(out["reward"], metrics["success"])


def test_reset_is_deterministic_given_key(arm_run):
    """Every task: the same keys give the same first states and reset chain, other keys other
    goals (two more runs of the shared program in all)."""
    _, run, (first, _, chains) = arm_run
    (again, _, chains_again), (other, _, _) = run(0), run(7)
    for i, name in enumerate(VARIANTS):
        np.testing.assert_array_equal(again[i].obs, first[i].obs, err_msg=name)
        np.testing.assert_array_equal(chains_again[i], chains[i], err_msg=name)
        assert not np.array_equal(other[i].info["goal"], first[i].info["goal"]), name


def test_shared_program_is_what_reset_composes(arm_run):
    """``Arm.reset`` of every task gives a state of the same structure, shapes and dtypes as the
    program's first states (traced only, nothing compiled)."""

    def first_of_one(env, key):
        return jax.tree.map(lambda x: x[0], first_states(env, key[None])[0])

    for env in arm_run[0]:
        key = jax.random.PRNGKey(0)
        reset = jax.eval_shape(env.reset, key)
        composed = jax.eval_shape(functools.partial(first_of_one, env), key)
        assert jax.tree.structure(reset) == jax.tree.structure(composed)
        # Leaves only: MJX's Contact carries static index arrays that do not compare as bools.
        assert [(x.shape, x.dtype) for x in jax.tree.leaves(reset)] == [
            (x.shape, x.dtype) for x in jax.tree.leaves(composed)
        ]
    assert len(VARIANTS) == 6


def test_grasp_success_is_the_references_two_rules():
    """Fingertips' midpoint within 5 cm of the cube and their distance within 2 cm of 7.5 cm
    (easy: 15 cm and 5 cm), read from the fingertips alone (no compile)."""
    goal = arm.grasp_goal(jnp.array([0.1, 0.6, 0.03]))
    cases = (  # (shift of both fingertips, their distance, success, success_easy)
        ((0.0, 0.0, 0.0), 0.075, 1.0, 1.0),
        ((0.0, 0.049, 0.0), 0.09, 1.0, 1.0),
        ((0.0, 0.0, 0.051), 0.075, 0.0, 1.0),
        ((0.0, 0.0, 0.0), 0.1, 0.0, 1.0),
        ((0.149, 0.0, 0.0), 0.03, 0.0, 1.0),
        ((0.151, 0.0, 0.0), 0.075, 0.0, 0.0),
        ((0.0, 0.0, 0.0), 0.13, 0.0, 0.0),
    )
    for shift, gap, success, easy in cases:
        tips = goal[:6] + jnp.tile(jnp.asarray(shift), 2)
        metrics = arm.grasp_metrics(jnp.concatenate([tips, jnp.array([gap])]), goal)
        assert (metrics["success"], metrics["success_easy"]) == (success, easy), (shift, gap)
