"""The GoalEnv contract (``tests/test_envs.py``) on the six Franka Panda arm tasks, from ONE
compiled program.

The six variants share the physics (the same MJCF, actuators and ``ctrl`` mapping) and differ only
in what a reset draws (``Arm.reset_inputs``: cube start and goal) and in the goal part of the
state. Compiling MJX's Panda kinematics costs about a minute per program on these CPUs, so the
program here draws every variant's reset inputs, runs the shared ``pipeline_init`` and
``pipeline_step`` once for the envs of all variants together, and builds each variant's states
with its own ``make_state``: exactly what ``Arm.reset`` and ``Arm.step`` compose.

Running it is slow too (about 0.25 s per step for the 48 envs of the six variants), so it runs
``N_ARM_STEPS`` steps, three times in all: once for the contract tests of every variant, twice for
the determinism test (the same keys again, other keys).
"""

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

from goalax import envs

VARIANTS = tuple(name for name in envs.names() if name.startswith("arm_"))
N_ARM_STEPS = 20


def arm_actions(arm) -> jax.Array:
    """``[N_ARM_STEPS, N_ENVS, A]``: the first steps of the contract's random actions."""
    return random_actions(jax.random.PRNGKey(1), arm)[:N_ARM_STEPS]


def shared_program(arms):
    """Compiled ``(keys [V, N_ENVS + N_RESETS], actions [T, V * N_ENVS, A])`` to per-variant
    ``(first states, step outputs, chain goals)`` lists."""
    physics = arms[0]

    def states(data, goals):
        """Each variant's ``State`` of its slice of the shared physics states."""
        out = []
        for i, arm in enumerate(arms):
            part = jax.tree.map(lambda x, i=i: x[i * N_ENVS : (i + 1) * N_ENVS], data)
            make = jax.vmap(lambda d, g, arm=arm: arm.make_state(d, g, {"goal": g}))
            out.append(make(part, goals[i]))
        return out

    def program(keys, actions):
        inputs = [jax.vmap(arm.reset_inputs)(keys[i]) for i, arm in enumerate(arms)]
        q = jnp.concatenate([q[:N_ENVS] for q, _, _ in inputs])
        qd = jnp.concatenate([qd[:N_ENVS] for _, qd, _ in inputs])
        goals = [goal[:N_ENVS] for _, _, goal in inputs]
        data = jax.vmap(physics.pipeline_init)(q, qd)

        def step(data, action):
            data = jax.vmap(physics.pipeline_step)(data, jax.vmap(physics.ctrl)(action))
            outputs = [
                {
                    "obs": s.obs,
                    "reward": s.reward,
                    "done": s.done,
                    "metrics": s.metrics,
                    "goal": s.info["goal"],
                    "lowest_z": jnp.full(s.reward.shape, jnp.inf),  # no floor to stand on
                }
                for s in states(data, goals)
            ]
            return data, outputs

        _, outputs = jax.lax.scan(step, data, actions)
        chains = [goal[N_ENVS:] for _, _, goal in inputs]
        return states(data, goals), outputs, chains

    keys = jnp.stack([reset_keys(0)] * len(arms))
    actions = jnp.tile(arm_actions(physics), (1, len(arms), 1))
    return jax.jit(program).lower(keys, actions).compile(compiler_options=SMOKE_COMPILER_OPTIONS)


@pytest.fixture(scope="module")
def arm_run():
    """The variants, ``run(seed)`` (every variant's rollout from ``reset_keys(seed)`` and the
    same actions) and the outputs of ``run(0)``, which every variant's contract tests read."""
    arms = [envs.make(name) for name in VARIANTS]
    program = shared_program(arms)
    actions = jnp.tile(arm_actions(arms[0]), (1, len(arms), 1))

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


# One determinism test for all six variants, below, instead of one per variant.
add_contract_tests(globals(), skip=("test_reset_is_deterministic_given_key",))


def test_reset_is_deterministic_given_key(arm_run):
    """Every variant: the same keys give the same first states and reset chain, other keys other
    goals (two more runs of the shared program in all)."""
    _, run, (first, _, chains) = arm_run
    (again, _, chains_again), (other, _, _) = run(0), run(7)
    for i, name in enumerate(VARIANTS):
        np.testing.assert_array_equal(again[i].obs, first[i].obs, err_msg=name)
        np.testing.assert_array_equal(chains_again[i], chains[i], err_msg=name)
        assert not np.array_equal(other[i].info["goal"], first[i].info["goal"]), name


def test_shared_program_is_what_reset_and_step_compose(arm_run):
    """``Arm.reset``/``Arm.step`` of every variant give states of the same structure, shapes and
    dtypes as the shared program's (traced only, nothing compiled), and the variants really do
    share the physics the program runs once."""
    arms = arm_run[0]
    key = jax.random.PRNGKey(0)
    for arm in arms:
        reset = jax.eval_shape(arm.reset, key)
        step = jax.eval_shape(arm.step, reset, jnp.zeros(arm.action_size))
        q, qd, goal = jax.eval_shape(arm.reset_inputs, key)
        data = jax.eval_shape(arms[0].pipeline_init, q, qd)
        composed = jax.eval_shape(
            lambda d, g, arm=arm: arm.make_state(d, g, {"goal": g}), data, goal
        )
        for got in (reset, step):
            assert jax.tree.structure(got) == jax.tree.structure(composed)
            # Leaves only: MJX's Contact carries static index arrays that do not compare as bools.
            assert [(x.shape, x.dtype) for x in jax.tree.leaves(got)] == [
                (x.shape, x.dtype) for x in jax.tree.leaves(composed)
            ]
        np.testing.assert_array_equal(arm.sys.mj_model.body_mass, arms[0].sys.mj_model.body_mass)
        assert arm.sys.mj_model.nq == arms[0].sys.mj_model.nq
    assert len(VARIANTS) == 6
