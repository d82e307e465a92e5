"""The GoalEnv contract (``tests/test_envs.py``) on the six Franka Panda arm tasks, from one
compiled program per group of tasks.

The six tasks are the reference's, each with its own model (reach has no gripper, grasp has
fingertip bodies, the bins have walls), so a program holds one physics per task: every task's
``Arm.reset`` and ``N_ARM_STEPS`` of ``Arm.step``. That costs about a minute of compiling per
physics on these CPUs and about 5 s of running per task (25 physics steps per env step), so the
default suite runs the family's cheapest model, ``arm_reach`` (no gripper), and the other five
share a program under ``-m slow`` (their compiled-free checks, static facts against the
reference and grasp's success rules, stay in the default suite). Each program runs once: the
determinism test reads two more sets of resets (the same keys again, other keys) that it only
resets.
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
#: The default suite's program: one physics costs about a minute of compiling, four (one per
#: model structure) took 4 of the suite's 8 minutes. The other five share a program under slow.
DEFAULT_PROGRAM = ("arm_reach",)
PROGRAMS = {"default": DEFAULT_PROGRAM, "slow": tuple(sorted(set(VARIANTS) - set(DEFAULT_PROGRAM)))}
N_ARM_STEPS = 20
#: Key seeds of the program's reset sets: the one stepped, the same again, another.
SEEDS = (0, 0, 7)


def arm_actions(env) -> jax.Array:
    """``[N_ARM_STEPS, N_ENVS, A]``: the first steps of the contract's random actions."""
    return random_actions(jax.random.PRNGKey(1), env)[:N_ARM_STEPS]


def shared_program(arms):
    """Compiled ``(keys [len(SEEDS), N_ENVS + N_RESETS], actions: per task [T, N_ENVS, A])`` to
    per-task ``(first states [len(SEEDS), N_ENVS], step outputs of set 0, chain goals
    [len(SEEDS), N_RESETS])``: every set is reset, set 0 alone is stepped."""

    def program(keys, actions):
        out = ([], [], [])
        for env, task_actions in zip(arms, actions, strict=True):
            envs_keys, chain_keys = keys[:, :N_ENVS], keys[:, N_ENVS:]
            first = jax.vmap(jax.vmap(env.reset))(envs_keys)
            chain = jax.vmap(jax.vmap(lambda k, env=env: env.reset_inputs(k)[2]))(chain_keys)

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

            _, outputs = jax.lax.scan(step, jax.tree.map(lambda x: x[0], first), task_actions)
            for part, value in zip(out, (first, outputs, chain), strict=True):
                part.append(value)
        return out

    keys = jnp.stack([reset_keys(seed) for seed in SEEDS])
    actions = [arm_actions(env) for env in arms]
    compiled = (
        jax.jit(program).lower(keys, actions).compile(compiler_options=SMOKE_COMPILER_OPTIONS)
    )
    return jax.block_until_ready(compiled(keys, actions))


def program_of(name: str) -> str:
    return next(program for program, names in PROGRAMS.items() if name in names)


@pytest.fixture(scope="module")
def arm_runs():
    """``run(program) -> (tasks, outputs)``: each program compiled and run once, when first read
    (every task's contract tests read its program's outputs)."""

    @functools.cache
    def run(program: str):
        arms = [envs.make(name) for name in PROGRAMS[program]]
        return arms, shared_program(arms)

    return run


def _marks(program: str) -> list:
    return [pytest.mark.slow] if program == "slow" else []


@pytest.fixture(
    scope="module",
    params=[pytest.param(name, marks=_marks(program_of(name))) for name in VARIANTS],
)
def task(request, arm_runs):
    program = program_of(request.param)
    arms, (first, outputs, chains) = arm_runs(program)
    index = PROGRAMS[program].index(request.param)
    return {
        "name": request.param,
        "env": arms[index],
        "first": jax.tree.map(lambda x: x[0], first[index]),
        "outputs": outputs[index],
        "chain_goals": chains[index][0],
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


@pytest.mark.parametrize(
    "program", [pytest.param(program, marks=_marks(program)) for program in PROGRAMS]
)
def test_reset_is_deterministic_given_key(program, arm_runs):
    """Every task: the same keys give the same first states and reset chain, other keys other
    goals (the program's second and third reset sets)."""
    _, (first, _, chains) = arm_runs(program)
    for i, name in enumerate(PROGRAMS[program]):
        np.testing.assert_array_equal(first[i].obs[1], first[i].obs[0], err_msg=name)
        np.testing.assert_array_equal(chains[i][1], chains[i][0], err_msg=name)
        assert not np.array_equal(first[i].info["goal"][2], first[i].info["goal"][0]), name
    assert sorted(sum(PROGRAMS.values(), ())) == sorted(VARIANTS) and len(VARIANTS) == 6


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
