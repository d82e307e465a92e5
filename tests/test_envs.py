"""GoalEnv contract for every registered task, the registry, and task-specific physics.

Each task's jitted program (vmapped reset + a scanned rollout of random actions) compiles once per
module in a ``task`` fixture; every contract test reads its outputs. The contract tests are
defined here and imported by ``test_envs_ant.py``, ``test_envs_humanoid.py``,
``test_envs_pusher.py`` and ``test_envs_arm.py`` (one file per family, so that the two xdist
workers share the task compiles); this file runs them on the core tasks.
"""

from __future__ import annotations

import dataclasses
import re
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from goalax import envs
from goalax.envs import maze_layouts
from goalax.envs.point import PointPhysics
from goalax.envs.point_maze import BALL_RADIUS, PointMaze

N_ENVS, N_STEPS, N_RESETS = 8, 100, 16
METRICS = ("dist", "success", "success_easy")
CORE_TASKS = ("point", "reacher", "simple_big_maze", "simple_hardest_maze", "simple_u_maze")
#: Tasks whose contract runs in the default suite: one of every env class and backend (the
#: mazes' layouts share one class, ``ant_ball_u_maze`` is the ball and the maze together). Each
#: other task's contract compiles a program of its own (5-25 s on the 2-core CPU) and runs under
#: ``-m slow``; the static attributes of every task are checked without compiling
#: (``test_attributes_match_spec``).
#: ``ant_push`` (brax's MJX pipeline, ~30 s of compiling) runs under ``-m slow``: ``cheetah`` keeps
#: an MJX task in the default suite.
DEFAULT_SUITE_TASKS = frozenset(
    {"point", "reacher", "simple_u_maze", "ant", "ant_ball_u_maze", "humanoid"}
    | {"cheetah", "pusher2"}
)
#: Names that are aliases of another task (same constructor and arguments): not compiled again.
ALIASES = {"ant_ball_maze": "ant_ball_u_maze"}
#: Smoke programs skip LLVM's expensive optimisations. Measured on the 2-core CPU (one process,
#: cold cache, other load present): compile 0.66x (humanoid), 0.69x (Panda arm) of the default;
#: they run a hundred steps, so the slower code costs nothing.
SMOKE_COMPILER_OPTIONS = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
}
#: Deepest a body frame may sit below the floor in a reachable state (contact softness).
FLOOR_TOLERANCE = 0.05


def lowest_body_z(pipeline_state) -> jax.Array:
    """``[]`` lowest body-frame height of a physics state (``inf`` without bodies)."""
    transforms = getattr(pipeline_state, "x", None)
    if transforms is None:
        return jnp.asarray(jnp.inf, jnp.float32)
    return jnp.min(transforms.pos[..., 2])


def rollout_fn(env: envs.GoalEnv):
    """Compiled ``(reset keys [N_ENVS + N_RESETS], actions [T, N_ENVS, A])`` to
    ``(first states [N_ENVS], step outputs (dict, leaves [T, N_ENVS, ...]), goals [N_RESETS])``.

    Only the first ``N_ENVS`` reset states are stepped (no auto-reset: a terminated episode runs
    on, and tests mask what follows the termination); the other resets only report their goals.
    """

    def rollout(reset_keys, actions):
        states = jax.vmap(env.reset)(reset_keys)
        first = jax.tree.map(lambda x: x[:N_ENVS], states)

        def step(state, action):
            state = jax.vmap(env.step)(state, action)
            out = {
                "obs": state.obs,
                "reward": state.reward,
                "done": state.done,
                "metrics": state.metrics,
                "goal": state.info["goal"],
                "lowest_z": jax.vmap(lowest_body_z)(state.pipeline_state),
            }
            return state, out

        _, outputs = jax.lax.scan(step, first, actions)
        return first, outputs, states.info["goal"][N_ENVS:]

    lowered = jax.jit(rollout).lower(reset_keys(0), random_actions(jax.random.PRNGKey(1), env))
    return lowered.compile(compiler_options=SMOKE_COMPILER_OPTIONS)


def reset_keys(seed: int) -> jax.Array:
    """``[N_ENVS + N_RESETS, 2]``: keys for parallel envs, then a chain of consecutive resets.

    The chain splits one key again and again, the way a training loop draws its reset keys.
    """
    key_envs, key = jax.random.split(jax.random.PRNGKey(seed))
    chain = []
    for _ in range(N_RESETS):
        key, key_reset = jax.random.split(key)
        chain.append(key_reset)
    return jnp.concatenate([jax.random.split(key_envs, N_ENVS), jnp.stack(chain)])


def random_actions(key, env):
    return jax.random.uniform(key, (N_STEPS, N_ENVS, env.action_size), minval=-1.0, maxval=1.0)


def compile_task(name: str) -> dict:
    """The task's env, its compiled rollout and the outputs of one run (keys 0 and 1)."""
    env = envs.make(name)
    rollout = rollout_fn(env)
    first, outputs, chain_goals = rollout(reset_keys(0), random_actions(jax.random.PRNGKey(1), env))
    return {
        "name": name,
        "env": env,
        "rollout": rollout,
        "first": first,
        "outputs": outputs,
        "chain_goals": chain_goals,
    }


def task_params(names) -> list:
    """``names`` without aliases, those outside ``DEFAULT_SUITE_TASKS`` marked ``slow``."""
    return [
        name if name in DEFAULT_SUITE_TASKS else pytest.param(name, marks=pytest.mark.slow)
        for name in names
        if name not in ALIASES
    ]


@pytest.fixture(scope="module", params=task_params(CORE_TASKS))
def task(request):
    return compile_task(request.param)


# --- contract, for every task (imported by the family files) ------------------------------------


#: Written down by hand, not read from the code: ``(state_dim, goal_indices, action_size,
#: goal_threshold, episode_length, backend)``. Sizes, goals and thresholds follow the reference
#: catalogue (the predecessor's tasks); where a state differs (ant_ball, ant_push, humanoid, the
#: arms) docs/envs.md gives its layout. A change to any task's interface fails here.
EXPECTED = {
    "ant": (29, (0, 1), 8, 0.5, 1000, "spring"),
    "ant_ball": (31, (29, 30), 8, 0.5, 1000, "spring"),
    "ant_ball_big_maze": (31, (29, 30), 8, 0.5, 1000, "spring"),
    "ant_ball_hardest_maze": (31, (29, 30), 8, 0.5, 1000, "spring"),
    "ant_ball_maze": (31, (29, 30), 8, 0.5, 1000, "spring"),
    "ant_ball_u_maze": (31, (29, 30), 8, 0.5, 1000, "spring"),
    "ant_big_maze": (29, (0, 1), 8, 0.5, 1000, "spring"),
    "ant_hardest_maze": (29, (0, 1), 8, 0.5, 1000, "spring"),
    "ant_push": (31, (0, 1), 8, 0.5, 1000, "mjx"),
    "ant_random_start": (29, (0, 1), 8, 0.5, 1000, "spring"),
    "ant_u_maze": (29, (0, 1), 8, 0.5, 1000, "spring"),
    "arm_binpick_easy": (18, (0, 1, 2), 5, 0.1, 150, "mjx"),
    "arm_binpick_hard": (18, (0, 1, 2), 5, 0.1, 150, "mjx"),
    "arm_grasp": (24, (16, 17, 18, 19, 20, 21, 22), 5, 0.1, 100, "mjx"),
    "arm_push_easy": (18, (0, 1, 2), 5, 0.1, 150, "mjx"),
    "arm_push_hard": (18, (0, 1, 2), 5, 0.1, 150, "mjx"),
    "arm_reach": (13, (7, 8, 9), 4, 0.1, 100, "mjx"),
    "cheetah": (18, (0,), 6, 0.5, 1000, "mjx"),
    "humanoid": (268, (0, 1, 2), 17, 0.5, 1000, "spring"),
    "humanoid_big_maze": (268, (0, 1, 2), 17, 0.5, 1000, "spring"),
    "humanoid_hardest_maze": (268, (0, 1, 2), 17, 0.5, 1000, "spring"),
    "humanoid_u_maze": (268, (0, 1, 2), 17, 0.5, 1000, "spring"),
    "point": (4, (0, 1), 2, 0.1, 50, "jax"),
    "pusher2": (23, (10, 11, 12, 13, 14, 15), 7, 0.1, 1000, "generalized"),
    "pusher_easy": (20, (10, 11, 12), 7, 0.1, 1000, "generalized"),
    "pusher_hard": (20, (10, 11, 12), 7, 0.1, 1000, "generalized"),
    "pusher_reacher": (17, (14, 15, 16), 7, 0.1, 1000, "generalized"),
    "reacher": (10, (4, 5, 6), 2, 0.05, 50, "generalized"),
    "simple_big_maze": (4, (0, 1), 2, 0.5, 1000, "spring"),
    "simple_hardest_maze": (4, (0, 1), 2, 0.5, 1000, "spring"),
    "simple_u_maze": (4, (0, 1), 2, 0.5, 1000, "spring"),
}


@pytest.mark.parametrize("name", envs.names())
def test_attributes_match_spec(name):
    """Every task, the default suite included: building an env compiles nothing."""
    env, spec = envs.make(name), envs.spec(name)
    state_dim, goal_indices, action_size, threshold, episode_length, backend = EXPECTED[name]
    assert (env.state_dim, tuple(env.goal_indices), env.action_size) == (
        state_dim,
        goal_indices,
        action_size,
    )
    assert (env.goal_threshold, env.episode_length, env.backend) == (
        threshold,
        episode_length,
        backend,
    )
    assert env.goal_dim == len(env.goal_indices) == spec.goal_dim
    assert env.observation_size == env.state_dim + env.goal_dim == spec.state_dim + spec.goal_dim
    assert all(0 <= i < env.state_dim for i in env.goal_indices)
    assert env.action_size == spec.action_size
    assert 0 < env.goal_threshold < env.success_easy_threshold
    if env.goal_threshold == 0.5 and name not in CORE_TASKS:
        # Locomotion: success_easy at 2.0 as in the predecessor (the point mazes use 1.0).
        assert env.success_easy_threshold == 2.0
    assert (env.episode_length, env.backend) == (spec.episode_length, spec.backend)
    assert env.backend == getattr(type(env), "backends", (env.backend,))[0]
    assert not env.dense_reward


def test_reset_and_step_shapes_and_dtypes(task):
    env, first, out = task["env"], task["first"], task["outputs"]
    assert first.obs.shape == (N_ENVS, env.observation_size)
    n_steps = out["obs"].shape[0]
    assert n_steps >= 20
    assert out["obs"].shape == (n_steps, N_ENVS, env.observation_size)
    assert first.info["goal"].shape == (N_ENVS, env.goal_dim)
    for array in (first.obs, first.reward, first.done, out["obs"], out["reward"], out["done"]):
        assert array.dtype == jnp.float32
    assert out["reward"].shape == out["done"].shape == (n_steps, N_ENVS)
    assert set(METRICS) <= set(out["metrics"]) and set(METRICS) <= set(first.metrics)
    for name in METRICS:
        assert out["metrics"][name].shape == (n_steps, N_ENVS)
        assert out["metrics"][name].dtype == jnp.float32


def test_rollout_is_finite_and_terminates_only_where_the_task_says(task):
    out = task["outputs"]
    assert np.isfinite(out["obs"]).all() and np.isfinite(out["reward"]).all()
    assert np.isfinite(out["metrics"]["dist"]).all() and np.isfinite(task["first"].obs).all()
    assert (task["first"].done == 0).all()  # every reset starts healthy
    assert set(np.unique(out["done"])) <= {0.0, 1.0}
    if envs.spec(task["name"]).termination == "-":
        assert (out["done"] == 0).all()


def reachable(done: np.ndarray) -> np.ndarray:
    """``[T, E]`` bool: the states an agent reaches (up to and with the first termination)."""
    ended_before = np.cumsum(done, axis=0) - done > 0
    return ~ended_before


def test_termination_follows_the_healthy_torso_range(task):
    env, out = task["env"], task["outputs"]
    z_range = getattr(env, "healthy_z_range", None)
    if z_range is None:
        pytest.skip("this task never terminates")
    if isinstance(env, PointMaze):
        pytest.skip("the ball's height is not observed: test_maze_terminates_as_the_reference")
    torso_z = out["obs"][..., 2]  # q[2]: the free joint's height (= the torso link's)
    unhealthy = (torso_z < z_range[0]) | (torso_z > z_range[1])
    clear = np.minimum(np.abs(torso_z - z_range[0]), np.abs(torso_z - z_range[1])) > 1e-4
    np.testing.assert_array_equal((out["done"] > 0)[clear], unhealthy[clear])
    first_z = task["first"].obs[:, 2]
    assert ((first_z > z_range[0]) & (first_z < z_range[1])).all()
    if envs.spec(task["name"]).termination.startswith("torso z outside (1.0"):
        # Most humanoids under random actions fall within a hundred steps (the reference's:
        # 53 of 64, every one within 300; tests/test_termination.py checks the 300).
        assert (out["done"] > 0).any(axis=0).mean() >= 0.5, out["done"].argmax(axis=0)


def test_reachable_states_stay_above_the_floor(task):
    """With the task's defaults no reachable state has a body below the floor. (Without
    termination, and for the ant without lower-leg contacts, brax lets both sink through it.)"""
    env, out = task["env"], task["outputs"]
    if getattr(env, "healthy_z_range", None) is None or isinstance(env, PointMaze):
        pytest.skip("not a floor-walking task")
    alive = reachable(out["done"])
    assert out["obs"][..., 2][alive].min() > 0.0
    assert out["lowest_z"][alive].min() > -FLOOR_TOLERANCE, out["lowest_z"][alive].min()


def test_observation_ends_with_goal_and_metrics_agree(task):
    env, out = task["env"], task["outputs"]
    obs, goal, metrics = out["obs"], out["goal"], out["metrics"]
    first_goal = task["first"].info["goal"]
    np.testing.assert_array_equal(obs[..., env.state_dim :], goal)
    np.testing.assert_array_equal(goal, np.broadcast_to(first_goal, goal.shape))
    achieved = np.asarray(env.achieved_goal(jnp.asarray(obs[..., : env.state_dim])))
    expected = env.goal_metrics(jnp.asarray(achieved), jnp.asarray(goal))
    np.testing.assert_allclose(metrics["dist"], expected["dist"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(metrics["success"], expected["success"])
    np.testing.assert_array_equal(metrics["success_easy"], expected["success_easy"])
    np.testing.assert_array_equal(out["reward"], metrics["success"])  # sparse by default


#: Tasks with one goal, as the reference's (the cheetah's ``x = 5``).
ONE_GOAL = ("cheetah",)


def test_goals_differ_between_keys_and_between_consecutive_resets(task):
    """Regression: the predecessor gave the same goal after every reset. Goals drawn from a few
    points (maze cell centres) repeat, but not all at once; a task with one goal keeps it."""
    for goals in (task["first"].info["goal"], task["chain_goals"]):
        n_unique = len(np.unique(np.asarray(goals), axis=0))
        if task["name"] in ONE_GOAL:
            assert n_unique == 1, goals
        elif "maze" in task["name"]:
            assert n_unique > 1, goals
        else:
            assert n_unique == len(goals), goals
    # The states differ too (not just the goals); the humanoid mazes start without noise, as the
    # reference's, so their states differ exactly where the goal (the marker in q) does.
    n_states = len(np.unique(np.asarray(task["first"].obs), axis=0))
    if task["name"].startswith("humanoid_"):
        assert n_states == len(np.unique(np.asarray(task["first"].info["goal"]), axis=0))
    else:
        assert n_states == N_ENVS


def test_reset_is_deterministic_given_key(task):
    env = task["env"]
    actions = random_actions(jax.random.PRNGKey(1), env)
    first, _, chain_goals = task["rollout"](reset_keys(0), actions)
    np.testing.assert_array_equal(first.obs, task["first"].obs)
    np.testing.assert_array_equal(chain_goals, task["chain_goals"])
    other, _, _ = task["rollout"](reset_keys(7), actions)
    assert not np.array_equal(other.obs, task["first"].obs)  # (the cheetah has one goal)


def test_success_when_goal_part_equals_goal(task):
    env = task["env"]
    state_obs = np.array(task["first"].obs[0, : env.state_dim])
    goal = task["first"].info["goal"][0]
    state_obs[np.asarray(env.goal_indices)] = goal
    reward, metrics = env.reward_and_metrics(jnp.asarray(state_obs), jnp.asarray(goal))
    assert metrics["dist"] == 0 and metrics["success"] == 1 and metrics["success_easy"] == 1
    assert reward == 1
    # Just outside the threshold along one goal coordinate: no success, but easy success.
    state_obs[env.goal_indices[0]] += 1.01 * env.goal_threshold
    _, metrics = env.reward_and_metrics(jnp.asarray(state_obs), jnp.asarray(goal))
    assert metrics["success"] == 0 and metrics["success_easy"] == 1


def test_dense_reward_is_negative_distance(task):
    env = envs.make(task["name"], dense_reward=True)
    state_obs = jnp.asarray(task["first"].obs[0, : env.state_dim])
    goal = jnp.asarray(task["first"].info["goal"][0])
    reward, metrics = env.reward_and_metrics(state_obs, goal)
    assert metrics["dist"] > 0
    np.testing.assert_allclose(reward, -metrics["dist"])


def assert_in_goal_distribution(name: str, env: envs.GoalEnv, goals: np.ndarray) -> None:
    """``goals [n, goal_dim]`` lie where the task's reset draws goals (core tasks only)."""
    goals = np.asarray(goals)
    if isinstance(env, PointMaze):
        cells = maze_layouts.xy_to_cell(goals, env.layout, env.cell_size)
        assert (np.asarray(env.layout)[cells[:, 0], cells[:, 1]] == 0).all(), goals
    elif name == "reacher":
        assert (np.linalg.norm(goals[:, :2], axis=-1) <= 0.2 + 1e-6).all(), goals
        np.testing.assert_allclose(goals[:, 2], 0.01, atol=1e-6)
    elif name == "point":
        assert (np.abs(goals) <= 1.0).all(), goals


def test_goal_distribution(task):
    env, first = task["env"], task["first"]
    assert_in_goal_distribution(task["name"], env, first.info["goal"])
    assert_in_goal_distribution(task["name"], env, task["chain_goals"])
    if isinstance(env, PointMaze):
        # The reference's: start at the centre of cell (1, 1), goals at other free cells' centres.
        np.testing.assert_array_equal(first.obs[:, :2], 4.0)
        others = env.free_cell_centers()[1:]
        for goals in (first.info["goal"], task["chain_goals"]):
            assert (np.asarray(goals)[:, None] == others).all(-1).any(-1).all(), goals
    elif task["name"] == "reacher":
        np.testing.assert_allclose(first.info["goal"][:, 2], first.obs[:, 6], atol=1e-3)


def swap_goal(env: envs.GoalEnv, state, goal):
    """``env.with_goal(state, goal)`` compiled at low optimisation: run eagerly, the physics'
    ``pipeline_init`` dispatches op by op (cheetah 25 s, compiled 5 s on 2 cores)."""
    goal = jnp.asarray(goal)
    lowered = jax.jit(env.with_goal).lower(state, goal)
    return lowered.compile(compiler_options=SMOKE_COMPILER_OPTIONS)(state, goal)


def test_eval_goal_sets(task):
    env, name, sets = task["env"], task["name"], task["env"].eval_goal_sets()
    assert sets
    for goals in sets.values():
        assert goals.dtype == np.float32 and goals.ndim == 2
        assert len(goals) > 0 and goals.shape[1] == env.goal_dim and np.isfinite(goals).all()
        assert_in_goal_distribution(name, env, goals)
    if "maze" in name and name not in CORE_TASKS:  # locomotion mazes: far cells and all cells
        assert set(sets) == {"far", "all"} and len(sets["far"]) < len(sets["all"])
    elif name not in CORE_TASKS:
        assert set(sets) == {"tasks"} and len(np.unique(sets["tasks"], axis=0)) == 5
    state = jax.tree.map(lambda x: x[0], task["first"])
    goal = next(iter(sets.values()))[0]
    swapped = swap_goal(env, state, goal)
    np.testing.assert_allclose(swapped.obs[env.state_dim :], goal)
    np.testing.assert_array_equal(swapped.info["goal"], goal)


def test_with_goal_swaps_goal_and_moves_reacher_target(task):
    env = task["env"]
    if task["name"] not in ("point", "reacher"):
        pytest.skip("one pure-JAX and one physics task are enough for the shared code path")
    state = jax.tree.map(lambda x: x[0], task["first"])
    goal = next(iter(env.eval_goal_sets().values()))[2]
    new = swap_goal(env, state, goal)
    np.testing.assert_array_equal(new.info["goal"], goal)
    np.testing.assert_array_equal(new.obs[env.state_dim :], goal)
    np.testing.assert_allclose(new.obs[: env.state_dim], state.obs[: env.state_dim], atol=1e-5)
    achieved = new.obs[np.asarray(env.goal_indices)]
    np.testing.assert_allclose(new.metrics["dist"], np.linalg.norm(achieved - goal), rtol=1e-5)
    if task["name"] == "reacher":  # the marker is drawn at the new goal, and stays still
        np.testing.assert_allclose(new.pipeline_state.q[2:], goal[:2], atol=1e-6)
        np.testing.assert_array_equal(new.pipeline_state.qd[2:], 0.0)


def test_reacher_observation_of_a_reference_state_is_the_reference_observation():
    """A state of the reference's own reacher (jaxgcrl 0.2.8, generalized, step 50 of a random
    rollout) and its observation: ``cos q``, ``sin q``, fingertip, and the reference's fingertip
    velocity (the second link's velocity carried 0.11 along the world's x axis)."""
    q = [4.239840984344482, 0.38228052854537964, -0.006804243195801973, -0.0027663125656545162]
    qd = [2.1361849308013916, -5.548812389373779, 0.0, 0.0]
    expected = [-0.455156534910202, 0.9278163313865662, -0.8904114365577698, 0.37303733825683594]
    expected += [-0.05543159693479538, -0.19859330356121063, 0.009999999776482582]
    expected += [0.1902083456516266, -0.47261887788772583, 0.0]
    env = envs.make("reacher")
    state_obs = jax.jit(lambda q, qd: env.state_obs(env.pipeline_init(q, qd)))
    np.testing.assert_allclose(state_obs(jnp.asarray(q), jnp.asarray(qd)), expected, atol=2e-6)


#: The contract tests, for the family files to import.
CONTRACT_TESTS = (
    test_reset_and_step_shapes_and_dtypes,
    test_rollout_is_finite_and_terminates_only_where_the_task_says,
    test_termination_follows_the_healthy_torso_range,
    test_reachable_states_stay_above_the_floor,
    test_observation_ends_with_goal_and_metrics_agree,
    test_goals_differ_between_keys_and_between_consecutive_resets,
    test_reset_is_deterministic_given_key,
    test_success_when_goal_part_equals_goal,
    test_dense_reward_is_negative_distance,
    test_eval_goal_sets,
)


def add_contract_tests(namespace: dict, skip: tuple[str, ...] = ()) -> None:
    """Put the contract tests (but ``skip``) into a test module's ``namespace``: they run there
    on that module's ``task`` fixture."""
    for test in CONTRACT_TESTS:
        if test.__name__ not in skip:
            namespace[test.__name__] = test


def add_family(namespace: dict, names) -> None:
    """Make a family test file: a module-scoped ``task`` fixture compiling each of ``names``
    (aliases left out) once, and the contract tests on it."""

    @pytest.fixture(scope="module", params=task_params(names))
    def task(request):
        return compile_task(request.param)

    namespace["task"] = task
    add_contract_tests(namespace)


# --- auto-reset ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["point", pytest.param("reacher", marks=pytest.mark.slow)])
def test_goal_changes_at_every_auto_reset(name):
    """Regression: the predecessor's auto-reset restored a cached first state, so every episode
    had the same goal. ``rollout.collect`` (one implementation for every task) must not. The
    default suite checks it on ``point`` (the code path is shared; reacher's compile is ~13 s)."""
    from goalax.training import rollout

    env, num_envs, num_steps, episode = envs.make(name), 4, 20, 5

    def program(key):
        key_reset, key_collect = jax.random.split(key)
        carry = rollout.reset(env, key_reset, num_envs)
        _, transitions, episode_ids = rollout.collect(
            env,
            lambda obs, k: jax.random.uniform(k, (num_envs, env.action_size), minval=-1.0),
            carry,
            key_collect,
            unroll_length=num_steps,
            episode_length=episode,
            budget=jnp.int32(num_steps * num_envs),
            fields=("goal",),
        )
        return transitions["goal"], episode_ids

    key = jax.random.PRNGKey(0)
    compiled = jax.jit(program).lower(key).compile(compiler_options=SMOKE_COMPILER_OPTIONS)
    goals, episode_ids = jax.device_get(compiled(key))
    assert episode_ids[-1].min() == num_steps // episode - 1  # an episode every 5 steps
    for env_index in range(num_envs):
        starts = np.flatnonzero(np.diff(episode_ids[:, env_index]) > 0) + 1
        episode_goals = goals[np.concatenate([[0], starts]), env_index]
        for before, after in zip(episode_goals[:-1], episode_goals[1:], strict=True):
            assert not np.allclose(before, after), (env_index, episode_goals)
        for start, end in zip(
            np.concatenate([[0], starts]), np.concatenate([starts, [num_steps]]), strict=True
        ):
            assert (goals[start:end, env_index] == goals[start, env_index]).all()


# --- registry ----------------------------------------------------------------------------------


def test_names_sorted_and_complete():
    names = envs.names()
    assert names == sorted(names)
    assert set(CORE_TASKS) <= set(names)


def test_unknown_name_suggests_closest():
    with pytest.raises(envs.UnknownEnvError) as info:
        envs.make("reachr")
    message = str(info.value)
    assert isinstance(info.value, ValueError) and "\n" not in message
    # The closest name comes first; other families may add more close names after it.
    assert re.fullmatch(
        r"unknown env 'reachr'; closest: reacher(, \w+)* \(run 'goalax envs' for the full list\)",
        message,
    ), message
    with pytest.raises(envs.UnknownEnvError, match="closest: simple_u_maze"):
        envs.spec("simple_u_maz")
    with pytest.raises(envs.UnknownEnvError) as info:
        envs.make("qqqqqqqq")
    assert all(name in str(info.value) for name in envs.names())


def test_aliases_are_their_target_task():
    for alias, target in ALIASES.items():
        a, b = envs.make(alias), envs.make(target)
        assert type(a) is type(b) and a.layout == b.layout
        assert dataclasses.replace(envs.spec(alias), name=target, description="") == (
            dataclasses.replace(envs.spec(target), description="")
        )
        assert alias in envs.names()


def test_invalid_overrides_are_refused():
    with pytest.raises(ValueError, match="use one of: jax"):
        envs.make("point", backend="spring")
    with pytest.raises(ValueError, match="generalized"):
        envs.make("simple_u_maze", backend="mjx")
    with pytest.raises(ValueError, match="episode_length"):
        envs.make("point", episode_length=0)


def test_overrides_are_applied():
    env = envs.make("point", episode_length=7, dense_reward=True)
    assert env.episode_length == 7 and env.dense_reward
    assert envs.make("reacher", backend="generalized").backend == "generalized"


# --- point -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def point():
    return envs.make("point")


def test_point_success_when_placed_on_goal(point):
    state = point.reset(jax.random.PRNGKey(3))
    goal = state.info["goal"]
    state = state.replace(pipeline_state=PointPhysics(pos=goal, vel=jnp.zeros(2)))
    state = jax.jit(point.step)(state, jnp.zeros(2))
    assert state.metrics["dist"] == 0 and state.metrics["success"] == 1 and state.reward == 1


def test_point_greedy_controller_reaches_every_goal_in_time(point):
    """The task is solvable within its episode length from every start (learnability check)."""

    def run(key):
        state = point.reset(key)

        def step(state, _):
            pos = state.pipeline_state.pos
            action = jnp.clip((state.info["goal"] - pos) / (point.max_speed * point.dt), -1, 1)
            state = point.step(state, action)
            return state, state.metrics["success"]

        return jax.lax.scan(step, state, None, length=point.episode_length)[1]

    success = jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(0), 256))
    assert (success[:, -1] == 1).all()
    assert 0 < success[:, 0].mean() < 0.5  # not trivially solved at the start


def test_point_arena_walls_stop_motion(point):
    state = point.reset(jax.random.PRNGKey(0))
    step = jax.jit(point.step)
    for _ in range(30):
        state = step(state, jnp.array([1.0, -1.0]))
    np.testing.assert_allclose(state.pipeline_state.pos, [1.0, -1.0])
    np.testing.assert_array_equal(state.pipeline_state.vel, [0.0, 0.0])
    state = step(state, jnp.array([-1.0, -1.0]))  # sliding along the bottom wall still moves
    np.testing.assert_allclose(state.pipeline_state.pos, [1.0 - point.dt, -1.0], rtol=1e-6)


# --- mazes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(maze_layouts.LAYOUTS))
def test_layouts_connected_and_walls_cover_only_walls(name):
    layout = maze_layouts.LAYOUTS[name]
    grid = np.asarray(layout)
    free = maze_layouts.free_cells(layout)
    dist = maze_layouts.cell_distances(layout, tuple(free[0]))
    assert (dist[grid == 0] >= 0).all() and (dist[grid == 1] == -1).all()
    covered = np.zeros(grid.shape, dtype=int)
    for row0, col0, row1, col1 in maze_layouts.wall_rectangles(layout):
        covered[row0 : row1 + 1, col0 : col1 + 1] += 1
    assert covered.max() == 1 and (grid[covered == 1] == 1).all()
    assert (covered[1:-1, 1:-1] >= (grid[1:-1, 1:-1] == 1)).all()  # every inner wall cell
    centers = maze_layouts.free_cell_centers(layout, 2.0)
    np.testing.assert_array_equal(maze_layouts.xy_to_cell(centers, layout, 2.0), free)


def wall_clearance(xy: np.ndarray, layout, cell_size: float) -> np.ndarray:
    """``[..., 2] -> [...]``: distance from each point to the nearest wall cell."""
    walls = maze_layouts.cell_to_xy(np.argwhere(np.asarray(layout) == 1), layout, cell_size)
    gap = np.maximum(np.abs(xy[..., None, :] - walls) - cell_size / 2, 0.0)
    return np.linalg.norm(gap, axis=-1).min(axis=-1)


def test_maze_ball_cannot_pass_through_walls(task):
    env = task["env"]
    if not isinstance(env, PointMaze):
        pytest.skip("maze only")
    angles = np.linspace(0, 2 * np.pi, N_ENVS, endpoint=False) + 0.3
    push = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    actions = jnp.asarray(np.broadcast_to(push, (N_STEPS, N_ENVS, 2)), jnp.float32)
    _, out, _ = task["rollout"](reset_keys(0), actions)
    obs = out["obs"]
    clearance = wall_clearance(np.asarray(obs[..., :2]), env.layout, env.cell_size)
    # Soft contacts: an impact at full speed sinks a little into the walls.
    assert clearance.min() > BALL_RADIUS - 0.1, clearance.min()
    # It really is pressed against a wall at the end, not stopped short of it.
    assert (clearance[-1] < BALL_RADIUS + 0.05).all(), clearance[-1]
    assert (out["done"] == 0).all()  # impacts keep the ball at its height: no termination


def test_maze_terminates_as_the_reference():
    """The reference's rule: the episode ends when the ball's height leaves (0.2, 1.0)."""
    env = envs.make("simple_u_maze")
    for z, done in ((0.1, 1.0), (0.75, 0.0), (1.1, 1.0)):
        ball_and_target = jnp.array([[4.0, 4.0, z], [8.0, 4.0, 0.01]])
        state = types.SimpleNamespace(x=types.SimpleNamespace(pos=ball_and_target))
        assert env.terminated(state) == done
    assert envs.make("simple_u_maze", termination=False).terminated(state) == 0
    assert envs.spec("simple_u_maze").termination == "torso z outside (0.2, 1.0)"


def test_maze_free_cell_centers():
    env = envs.make("simple_u_maze")
    np.testing.assert_array_equal(
        env.free_cell_centers(), [[4, 4], [4, 8], [4, 12], [8, 12], [12, 4], [12, 8], [12, 12]]
    )


# --- long rollouts -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, backend", [(name, None) for name in envs.names()] + [("reacher", "spring")]
)
def test_long_random_rollout_stays_finite(name, backend):
    """1000 random steps x 16 envs without resets: no NaN / inf (the ant on ``generalized``
    fails this, hence its default ``spring``)."""
    env = envs.make(name, backend=backend)
    n_envs, n_steps = 16, 1000

    @jax.jit
    def run(key):
        key_reset, key_actions = jax.random.split(key)
        state = jax.vmap(env.reset)(jax.random.split(key_reset, n_envs))

        def step(state, key):
            action = jax.random.uniform(key, (n_envs, env.action_size), minval=-1, maxval=1)
            state = jax.vmap(env.step)(state, action)
            return state, jnp.isfinite(state.obs).all()

        return jax.lax.scan(step, state, jax.random.split(key_actions, n_steps))[1]

    assert run(jax.random.PRNGKey(0)).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", task_params(envs.names()))
def test_crl_smoke_run(name, tmp_path):
    """CRL trains on the task from the public API: 2 iterations of 4 envs x 10 steps (the first
    one prefill, the second with updates), evaluation at the start and end, finite losses and
    metrics. (``benchmarks/tasks.sh`` runs the same per task at 64 envs and records compile time
    and throughput.)"""
    import goalax
    from goalax.agents.crl import CRLConfig
    from goalax.config import RunConfig, TrainConfig

    run = RunConfig(
        env=name,
        num_envs=4,
        unroll_length=10,
        episode_length=20,
        total_env_steps=80,
        eval_every=80,
        batch_size=16,
        buffer_size=400,
        prefill_steps=10,
        utd_ratio=0.1,
        num_eval_envs=2,
        run_dir=str(tmp_path / name),
        quiet=True,
    )
    agent = CRLConfig(width=32, actor_width=32, repr_dim=16)
    result = goalax.train(TrainConfig(run=run, agent=agent))
    assert [row["env_steps"] for row in result.metrics] == [0, 80]
    final = result.metrics[-1]
    assert 0.0 <= final["eval/success"] <= 1.0 and final["grad_steps"] == 4
    numeric = {k: v for k, v in final.items() if isinstance(v, float)}
    assert numeric and all(np.isfinite(v) for v in numeric.values()), numeric


def test_every_registered_task_has_written_down_attributes():
    """``EXPECTED`` names every task, so a new task cannot skip ``test_attributes_match_spec``."""
    assert sorted(EXPECTED) == envs.names()
