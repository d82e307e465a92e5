"""The GoalEnv contract (``tests/test_envs.py``) on the ant family (incl. soccer, push, mazes),
and the ant tasks' facts that must equal the reference's (jaxgcrl 0.2.8).

A file of its own so that pytest-xdist (``--dist loadfile``) spreads the task compiles over both
workers; the contract tests themselves are imported, not copied. The reference's numbers below
were measured by building its envs in its own venv (1,024 seeded resets each).
"""

import jax
import mujoco
import numpy as np
import pytest
from test_envs import N_ENVS, add_family
from test_envs import test_goals_differ_between_keys_and_between_consecutive_resets as goals_differ

from goalax import envs
from goalax.envs import maze_layouts
from goalax.envs.ant import Ant
from goalax.envs.ant_maze import CELL_SIZE

ANT_TASKS = [name for name in envs.names() if name.startswith("ant")]
add_family(globals(), ANT_TASKS)

N_RESETS = 1024
FEET = {"left_foot_geom", "right_foot_geom", "third_foot_geom", "fourth_foot_geom"}
LOWER_LEGS = {"left_ankle_geom", "right_ankle_geom", "third_ankle_geom", "fourth_ankle_geom"}
#: The ant's rest pose ``q [15]``: torso at height 0.55, identity quaternion, legs.
REST_Q = np.array([0, 0, 0.55, 1, 0, 0, 0, 0, 1, 0, -1, 0, -1, 0, 1], np.float32)


def test_goals_differ_between_keys_and_between_consecutive_resets(task):
    """Maze goals are cell centres, as the reference's, so draws repeat; they must vary."""
    if not hasattr(task["env"], "goal_cells"):
        goals_differ(task)
        return
    for goals in (task["first"].info["goal"], task["chain_goals"]):
        assert len(np.unique(np.asarray(goals), axis=0)) > 1
    assert len(np.unique(np.asarray(task["first"].obs), axis=0)) == N_ENVS


def draws(env: envs.GoalEnv) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(q, qd, goal)`` of ``N_RESETS`` seeded resets, before physics (``initial_state``)."""
    keys = jax.random.split(jax.random.PRNGKey(0), N_RESETS)
    return jax.device_get(jax.jit(jax.vmap(env.initial_state))(keys))


def geom_names(model: mujoco.MjModel, ids) -> set[str]:
    return {mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, int(i)) for i in ids}


def floor_colliders(env: envs.GoalEnv) -> set[str]:
    """Names of the geoms MuJoCo's contype/conaffinity rule lets touch the floor."""
    model = env.sys.mj_model
    floor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    contype, conaffinity = model.geom_contype, model.geom_conaffinity
    hits = (contype & conaffinity[floor]) | (contype[floor] & conaffinity)
    hits[model.geom_bodyid == 0] = 0  # the floor and fixed walls never collide with each other
    return geom_names(model, np.flatnonzero(hits))


# --- models -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, others",
    [
        ("ant", set()),
        ("ant_random_start", set()),
        ("ant_ball", {"object_geom"}),
        ("ant_u_maze", set()),
        ("ant_ball_big_maze", {"object_geom"}),
        ("ant_push", {"torso_geom", "block_M"}),
    ],
)
def test_lower_leg_contacts_option_restores_the_reference_contact_set(name, others):
    """Default: feet and lower legs touch the floor (knees no longer sink through it);
    ``lower_leg_contacts=False``: the reference's set, in which only the feet of the legs do."""
    assert floor_colliders(envs.make(name)) == FEET | LOWER_LEGS | others
    reference = envs.make(name, lower_leg_contacts=False)
    assert floor_colliders(reference) == FEET | others
    model = reference.sys.mj_model
    assert model.geom_conaffinity[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "floor")] == 1


def test_every_ant_task_has_the_reference_dt_gear_and_masses():
    for name in ANT_TASKS:
        env = envs.make(name)
        model = env.sys.mj_model
        assert env.dt == pytest.approx(0.05) and env.action_size == 8
        np.testing.assert_array_equal(env.sys.actuator.gear, 150.0)
        np.testing.assert_array_equal(env.sys.actuator.ctrl_range, [[-1.0, 1.0]] * 8)
        torso = model.body_mass[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "torso")]
        # ant.xml's density 5; ant_push's model uses 40.
        assert torso == pytest.approx(3.871042 if name == "ant_push" else 0.48388, rel=1e-5)
    assert envs.make("ant", backend="positional").sys.actuator.gear[0] == 200.0
    mjx = envs.make("ant_push").sys.opt
    assert (mjx.iterations, mjx.ls_iterations) == (4, 8)
    assert envs.make("ant", backend="mjx").sys.opt.iterations == 1


def test_ball_slides_on_x_and_y_with_the_reference_radius_and_mass():
    """Regression: goalax's ball was free-jointed (it rolled), radius 0.35, mass 1."""
    env = envs.make("ant_ball")
    model = env.sys.mj_model
    ball = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "object")
    joints = np.flatnonzero(model.jnt_bodyid == ball)
    assert [model.jnt_type[j] for j in joints] == [mujoco.mjtJoint.mjJNT_SLIDE] * 2
    np.testing.assert_array_equal(model.jnt_axis[joints], [[1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(model.dof_armature[model.jnt_dofadr[joints]], 1.0)
    np.testing.assert_array_equal(model.dof_damping[model.jnt_dofadr[joints]], 0.0)
    geom = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "object_geom")
    assert model.geom_size[geom, 0] == 0.5 and model.body_pos[ball, 2] == 0.5
    assert model.body_mass[ball] == pytest.approx(0.575959, rel=1e-5)
    assert (model.geom_contype[geom], model.geom_conaffinity[geom]) == (1, 0)
    assert env.state_dim == 31 and env.goal_indices == (29, 30)


def test_push_model_is_the_reference_layout():
    env = envs.make("ant_push")
    model = env.sys.mj_model
    block = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "movable")
    assert model.body_mass[block] == pytest.approx(0.0002)
    np.testing.assert_allclose(model.body_pos[block], [8.0, 8.0, 2.0])
    joints = np.flatnonzero(model.jnt_bodyid == block)
    assert [model.jnt_type[j] for j in joints] == [mujoco.mjtJoint.mjJNT_SLIDE] * 3
    walls = [g for g in range(model.ngeom) if model.geom_bodyid[g] == 0 and model.geom_type[g] == 6]
    assert len(walls) == 7
    low = model.geom_pos[walls, :2] - model.geom_size[walls, :2]
    high = model.geom_pos[walls, :2] + model.geom_size[walls, :2]
    np.testing.assert_allclose([low.min(0), high.max(0)], [[-12, -12], [28, 28]])
    np.testing.assert_allclose(model.geom_size[walls, 2], 2.0)
    assert env.state_dim == 31 and env.goal_indices == (0, 1) and env.backends == ("mjx",)


@pytest.mark.parametrize("name", ["ant_u_maze", "ant_big_maze", "ant_hardest_maze"])
def test_maze_walls_cover_the_wall_cells_in_the_reference_frame(name):
    """Cell (row, col) is centred at (row, col) * 4, the reference's frame; the merged wall
    boxes cover every wall cell next to a free cell, and no free cell."""
    env = envs.make(name)
    model, grid = env.sys.mj_model, np.asarray(env.layout)
    covered = np.zeros(grid.shape, dtype=int)
    for g in range(model.ngeom):
        if mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g).startswith("wall"):
            assert model.geom_size[g, 2] == 1.0 and model.geom_pos[g, 2] == 1.0  # 2 high
            low = np.round((model.geom_pos[g, :2] - model.geom_size[g, :2]) / CELL_SIZE + 0.5)
            high = np.round((model.geom_pos[g, :2] + model.geom_size[g, :2]) / CELL_SIZE + 0.5)
            covered[int(low[0]) : int(high[0]), int(low[1]) : int(high[1])] += 1
    assert covered.max() == 1 and (grid[covered == 1] == 1).all()
    padded = np.pad(grid == 0, 1)
    near_free = sum(
        padded[i : i + grid.shape[0], j : j + grid.shape[1]] for i in range(3) for j in range(3)
    )
    assert (covered[(grid == 1) & (near_free > 0)] == 1).all()


def test_unmerged_walls_are_the_reference_box_per_wall_cell():
    model = envs.make("ant_u_maze", merged_walls=False).sys.mj_model
    grid = np.asarray(maze_layouts.U_MAZE)
    for row, col in np.argwhere(grid == 1):
        g = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, f"block_{row}_{col}")
        np.testing.assert_allclose(model.geom_pos[g], [4 * row, 4 * col, 1.0])
        np.testing.assert_allclose(model.geom_size[g], [2.0, 2.0, 1.0])
        assert (model.geom_contype[g], model.geom_conaffinity[g]) == (1, 1)
    walls = (model.geom_bodyid == 0) & (model.geom_type == mujoco.mjtGeom.mjGEOM_BOX)
    assert walls.sum() == (grid == 1).sum()
    merged = envs.make("ant_u_maze").sys.mj_model
    assert ((merged.geom_bodyid == 0) & (merged.geom_type == mujoco.mjtGeom.mjGEOM_BOX)).sum() < 8


# --- reset distributions --------------------------------------------------------------------------


def test_ant_reset_noise_moves_the_torso_too():
    """Regression: goalax perturbed the legs only; the reference adds U(-0.1, 0.1) to every
    entry of ``q`` (torso position and quaternion, which stays unnormalised) and N(0, 0.1^2)
    to every velocity."""
    q, qd, goal = draws(envs.make("ant"))
    noise = q - REST_Q
    assert np.abs(noise).max() <= 0.1 + 1e-6
    np.testing.assert_allclose(noise.std(0), 0.2 / np.sqrt(12), rtol=0.15)  # uniform's std
    np.testing.assert_allclose(qd.std(0), 0.1, rtol=0.15)
    assert np.linalg.norm(q[:, 3:7], axis=-1).std() > 0.03
    np.testing.assert_allclose(np.linalg.norm(goal, axis=-1), 10.0, rtol=1e-6)


def test_random_start_is_on_the_circle_of_radius_10_around_the_goal():
    q, _, goal = draws(envs.make("ant_random_start"))
    start = q[:, :2]
    np.testing.assert_allclose(np.linalg.norm(goal, axis=-1), 10.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(start - goal, axis=-1), 10.0, rtol=1e-5)
    assert np.linalg.norm(start, axis=-1).max() > 19.0  # up to 20 from the origin


def test_ball_starts_where_the_reference_draws_it():
    """Regression: goalax started the ball 30-70 % of the way to the goal (a quarter of the
    episodes were a success_easy at step 0). The reference: ball = goal / 5 + (cos b, sin a)
    for the goal's angle a and an angle b of its own, so 2.78-5.0 from the goal (mean 3.551)."""
    env = envs.make("ant_ball")
    q, qd, goal = draws(env)
    ball = q[:, 15:17]
    np.testing.assert_allclose(np.linalg.norm(goal, axis=-1), 5.0, rtol=1e-5)
    offset = ball - goal / 5
    np.testing.assert_allclose(offset[:, 1], goal[:, 1] / 5, atol=1e-5)
    assert np.abs(offset[:, 0]).max() <= 1.0 + 1e-6
    assert np.mean(offset[:, 0] ** 2) == pytest.approx(0.5, abs=0.05)  # cos of a uniform angle
    distance = np.linalg.norm(ball - goal, axis=-1)
    assert distance.min() >= 2.777 and distance.max() <= 5.0 + 1e-5
    assert distance.mean() == pytest.approx(3.551, abs=0.1)  # 5 standard errors
    np.testing.assert_array_equal(qd[:, 14:], 0.0)
    assert np.linalg.norm(ball - q[:, :2], axis=-1).mean() == pytest.approx(1.647, abs=0.1)


def test_push_goals_and_block_start_as_the_reference():
    q, qd, goal = draws(envs.make("ant_push"))
    near_x = (goal[:, 0] >= 16) & (goal[:, 0] < 18) & (goal[:, 1] >= 8) & (goal[:, 1] < 10)
    near_y = (goal[:, 1] >= 16) & (goal[:, 1] < 18) & (goal[:, 0] >= 8) & (goal[:, 0] < 10)
    assert (near_x ^ near_y).all() and 0.4 < near_x.mean() < 0.6
    assert np.abs(q[:, 15:18]).max() <= 0.1  # block offsets from (8, 8, 2)
    np.testing.assert_allclose(q[:, 2], 0.75, atol=0.1 + 1e-6)
    assert qd[:, 14].std() > 0.05 and (qd[:, 15:] == 0).all()  # only the block's x moves


def test_maze_starts_at_the_start_cell_and_goals_are_cell_centres():
    """Regression: goals were drawn +-1 around the cell centres; the reference's are the
    centres of every free cell but the start (4, 4)."""
    q, _, goal = draws(envs.make("ant_u_maze"))
    np.testing.assert_array_equal(q[:, :2], 4.0)
    goals, counts = np.unique(goal, axis=0, return_counts=True)
    expected = [(4, 8), (4, 12), (8, 12), (12, 4), (12, 8), (12, 12)]
    np.testing.assert_array_equal(goals, expected)
    assert counts.min() > N_RESETS / len(expected) / 2


@pytest.mark.parametrize(
    "name", ["ant_ball_u_maze", pytest.param("ant_ball_big_maze", marks=pytest.mark.slow)]
)
def test_ball_maze_cells_are_the_reference_cells(name):
    """The reference draws goal cell i and ball cell i mod (number of ball cells) from one key."""
    env = envs.make(name)
    q, _, goal = draws(env)
    goal_cells, ball_cells = goal / CELL_SIZE, q[:, 15:17] / CELL_SIZE
    np.testing.assert_array_equal(q[:, :2], 4.0)
    balls = {"ant_ball_u_maze": [(1, 3)], "ant_ball_big_maze": [(3, 2), (3, 4)]}[name]
    index = (goal_cells[:, None, :] == env.goal_cells[None]).all(-1).argmax(-1)
    np.testing.assert_array_equal(ball_cells, np.asarray(balls)[index % len(balls)])
    assert len(np.unique(goal_cells, axis=0)) == len(env.goal_cells)
    assert {"ant_ball_u_maze": 5, "ant_ball_big_maze": 20}[name] == len(env.goal_cells)


# --- behaviour of the deviation -------------------------------------------------------------


@pytest.mark.slow
def test_knees_sink_with_the_reference_contacts_and_not_with_goalax_s():
    """Why the lower legs touch the floor: with the reference's contact set a fallen or kneeling
    ant's knees pass through it (termination off, 16 envs x 400 random steps)."""

    def lowest(env):
        @jax.jit
        def run(key):
            state = jax.vmap(env.reset)(jax.random.split(key, 16))

            def step(state, k):
                action = jax.random.uniform(k, (16, 8), minval=-1, maxval=1)
                state = jax.vmap(env.step)(state, action)
                return state, state.pipeline_state.x.pos[..., 2].min()

            return jax.lax.scan(step, state, jax.random.split(key, 400))[1].min()

        return float(run(jax.random.PRNGKey(3)))

    assert lowest(Ant(termination=False, lower_leg_contacts=False)) < -0.1
    assert lowest(Ant(termination=False)) > -0.1


def test_the_reference_contact_set_is_the_same_model_otherwise():
    default, reference = Ant().sys.mj_model, Ant(lower_leg_contacts=False).sys.mj_model
    for field in ("body_mass", "geom_size", "geom_pos", "jnt_range", "actuator_gear"):
        np.testing.assert_array_equal(getattr(default, field), getattr(reference, field))
    changed = np.flatnonzero(
        (default.geom_contype != reference.geom_contype)
        | (default.geom_conaffinity != reference.geom_conaffinity)
    )
    assert geom_names(default, changed) == LOWER_LEGS | {"floor"}
    assert reference.geom_contype.sum() == 4  # the feet
