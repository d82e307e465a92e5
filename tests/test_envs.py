"""GoalEnv contract for every registered task, the registry, and task-specific physics.

Each task's jitted program (vmapped reset + a scanned rollout) compiles once per module in the
``task`` fixture; every contract test reads its outputs.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from goalax import envs
from goalax.envs import maze_layouts
from goalax.envs.point import PointPhysics
from goalax.envs.point_maze import BALL_RADIUS, PointMaze

N_ENVS, N_STEPS, N_RESETS = 8, 200, 16
METRICS = ("dist", "success", "success_easy")
#: Checked in the default run; every other registered task (20-60 s of compile each) only with
#: ``-m slow``, so the contract still covers every task without slowing down ``pytest``.
CORE_TASKS = ("point", "reacher", "simple_big_maze", "simple_hardest_maze", "simple_u_maze")


def rollout_fn(env: envs.GoalEnv):
    """jit of ``(reset keys [N_ENVS + N_RESETS], actions [T, N_ENVS, A])`` to
    ``(first states [N_ENVS], step outputs [T, N_ENVS, ...], goals [N_RESETS, goal_dim])``.

    Only the first ``N_ENVS`` reset states are stepped; the other resets only report their goals.
    (One vmapped reset for both keeps a single copy of the reset in the compiled program.)
    """

    def rollout(reset_keys, actions):
        states = jax.vmap(env.reset)(reset_keys)
        first = jax.tree.map(lambda x: x[:N_ENVS], states)

        def step(state, action):
            state = jax.vmap(env.step)(state, action)
            out = (state.obs, state.reward, state.done, state.metrics, state.info["goal"])
            return state, out

        _, outputs = jax.lax.scan(step, first, actions)
        return first, outputs, states.info["goal"][N_ENVS:]

    return jax.jit(rollout)


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


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(name, marks=() if name in CORE_TASKS else pytest.mark.slow)
        for name in envs.names()
    ],
)
def task(request):
    env = envs.make(request.param)
    rollout = rollout_fn(env)
    first, outputs, chain_goals = rollout(reset_keys(0), random_actions(jax.random.PRNGKey(1), env))
    return {
        "name": request.param,
        "env": env,
        "rollout": rollout,
        "first": first,
        "outputs": outputs,
        "chain_goals": chain_goals,
    }


# --- contract, for every task ------------------------------------------------------------------


def test_attributes_match_spec(task):
    env, spec = task["env"], envs.spec(task["name"])
    assert env.goal_dim == len(env.goal_indices) == spec.goal_dim
    assert env.observation_size == env.state_dim + env.goal_dim == spec.state_dim + spec.goal_dim
    assert all(0 <= i < env.state_dim for i in env.goal_indices)
    assert env.action_size == spec.action_size
    assert 0 < env.goal_threshold < env.success_easy_threshold
    assert (env.episode_length, env.backend) == (spec.episode_length, spec.backend)
    assert env.backend == getattr(type(env), "backends", (env.backend,))[0]
    assert not env.dense_reward


def test_reset_and_step_shapes_and_dtypes(task):
    env, first, outputs = task["env"], task["first"], task["outputs"]
    obs, reward, done, metrics, goal = outputs
    assert first.obs.shape == (N_ENVS, env.observation_size)
    assert obs.shape == (N_STEPS, N_ENVS, env.observation_size)
    assert first.info["goal"].shape == (N_ENVS, env.goal_dim)
    for array in (first.obs, first.reward, first.done, obs, reward, done, goal):
        assert array.dtype == jnp.float32
    assert reward.shape == done.shape == (N_STEPS, N_ENVS)
    assert set(METRICS) <= set(metrics) and set(METRICS) <= set(first.metrics)
    for name in METRICS:
        assert metrics[name].shape == (N_STEPS, N_ENVS) and metrics[name].dtype == jnp.float32


def test_rollout_is_finite_and_terminates_only_where_the_task_says(task):
    obs, reward, done, metrics, _ = task["outputs"]
    assert np.isfinite(obs).all() and np.isfinite(reward).all()
    assert np.isfinite(metrics["dist"]).all()
    assert (task["first"].done == 0).all()  # every reset starts healthy
    assert set(np.unique(done)) <= {0.0, 1.0}
    if envs.spec(task["name"]).termination == "-":
        assert (done == 0).all()


def test_observation_ends_with_goal_and_metrics_agree(task):
    env = task["env"]
    obs, reward, _, metrics, goal = task["outputs"]
    first_goal = task["first"].info["goal"]
    np.testing.assert_array_equal(obs[..., env.state_dim :], goal)
    np.testing.assert_array_equal(goal, np.broadcast_to(first_goal, goal.shape))
    achieved = obs[..., np.asarray(env.goal_indices)]
    dist = np.linalg.norm(achieved - goal, axis=-1)
    np.testing.assert_allclose(metrics["dist"], dist, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(metrics["success"], dist < env.goal_threshold)
    np.testing.assert_array_equal(metrics["success_easy"], dist < env.success_easy_threshold)
    np.testing.assert_array_equal(reward, metrics["success"])  # sparse by default


def test_goals_differ_between_keys_and_between_consecutive_resets(task):
    """Regression: the predecessor gave the same goal after every reset."""
    for goals in (task["first"].info["goal"], task["chain_goals"]):
        goals = np.asarray(goals)
        assert len(np.unique(goals, axis=0)) == len(goals), goals
    # The states differ too (not just the goals).
    assert len(np.unique(np.asarray(task["first"].obs), axis=0)) == N_ENVS


def test_reset_is_deterministic_given_key(task):
    env = task["env"]
    actions = random_actions(jax.random.PRNGKey(1), env)
    first, _, chain_goals = task["rollout"](reset_keys(0), actions)
    np.testing.assert_array_equal(first.obs, task["first"].obs)
    np.testing.assert_array_equal(chain_goals, task["chain_goals"])
    other, _, _ = task["rollout"](reset_keys(7), actions)
    assert not np.array_equal(other.info["goal"], task["first"].info["goal"])


def test_success_when_goal_part_equals_goal(task):
    env = task["env"]
    state_obs = np.array(task["first"].obs[0, : env.state_dim])
    goal = task["first"].info["goal"][0]
    state_obs[np.asarray(env.goal_indices)] = goal
    reward, metrics = env.reward_and_metrics(jnp.asarray(state_obs), goal)
    assert metrics["dist"] == 0 and metrics["success"] == 1 and metrics["success_easy"] == 1
    assert reward == 1
    # Just outside the threshold along one goal coordinate: no success, but easy success.
    state_obs[env.goal_indices[0]] += 1.01 * env.goal_threshold
    _, metrics = env.reward_and_metrics(jnp.asarray(state_obs), goal)
    assert metrics["success"] == 0 and metrics["success_easy"] == 1


def test_dense_reward_is_negative_distance(task):
    env = envs.make(task["name"], dense_reward=True)
    state_obs = task["first"].obs[0, : env.state_dim]
    goal = task["first"].info["goal"][0]
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
        goal_cells = maze_layouts.xy_to_cell(first.info["goal"], env.layout, env.cell_size)
        start_cells = maze_layouts.xy_to_cell(first.obs[:, :2], env.layout, env.cell_size)
        assert (np.asarray(env.layout)[start_cells[:, 0], start_cells[:, 1]] == 0).all()
        assert (goal_cells != start_cells).any(axis=-1).all()
    elif task["name"] == "reacher":
        np.testing.assert_allclose(first.info["goal"][:, 2], first.obs[:, 6], atol=1e-3)


def test_eval_goal_sets(task):
    env, sets = task["env"], task["env"].eval_goal_sets()
    if task["name"] in CORE_TASKS:
        assert sets
    for goals in sets.values():
        assert goals.dtype == np.float32 and goals.ndim == 2
        assert len(goals) > 0 and goals.shape[1] == env.goal_dim
        assert_in_goal_distribution(task["name"], env, goals)


def test_with_goal_swaps_goal_and_moves_reacher_target(task):
    env = task["env"]
    if task["name"] not in ("point", "reacher"):
        pytest.skip("one pure-JAX and one physics task are enough for the shared code path")
    state = jax.tree.map(lambda x: x[0], task["first"])
    goal = next(iter(env.eval_goal_sets().values()))[2]
    new = env.with_goal(state, goal)
    np.testing.assert_array_equal(new.info["goal"], goal)
    np.testing.assert_array_equal(new.obs[env.state_dim :], goal)
    np.testing.assert_allclose(new.obs[: env.state_dim], state.obs[: env.state_dim], atol=1e-5)
    achieved = new.obs[np.asarray(env.goal_indices)]
    np.testing.assert_allclose(new.metrics["dist"], np.linalg.norm(achieved - goal), rtol=1e-5)
    if task["name"] == "reacher":  # the marker is drawn at the new goal, and stays still
        np.testing.assert_allclose(new.pipeline_state.q[2:], goal[:2], atol=1e-6)
        np.testing.assert_array_equal(new.pipeline_state.qd[2:], 0.0)


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
    push = np.stack([np.cos(angles), np.sin(angles)], axis=-1) * 1.5  # clipped to [-1, 1]
    actions = jnp.asarray(np.broadcast_to(push, (N_STEPS, N_ENVS, 2)), jnp.float32)
    _, (obs, *_), _ = task["rollout"](reset_keys(0), actions)
    clearance = wall_clearance(np.asarray(obs[..., :2]), env.layout, env.cell_size)
    # Soft contacts: a corner impact at full speed sinks ~0.07 into the walls (see docs).
    assert clearance.min() > BALL_RADIUS - 0.1, clearance.min()
    # It really is pressed against a wall at the end, not stopped short of it.
    assert (clearance[-1] < BALL_RADIUS + 0.05).all(), clearance[-1]


def test_maze_free_cell_centers():
    env = envs.make("simple_u_maze")
    np.testing.assert_array_equal(
        env.free_cell_centers(), [[-2, 2], [0, 2], [2, 2], [2, 0], [-2, -2], [0, -2], [2, -2]]
    )


# --- long rollouts -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, backend", [(name, None) for name in envs.names()] + [("reacher", "generalized")]
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
