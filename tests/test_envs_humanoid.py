"""The GoalEnv contract (``tests/test_envs.py``) on the humanoid family and the half cheetah, and
the humanoid's own model, actuation, reset and observation (the reference's: jaxgcrl 0.2.8).

A file of its own so that pytest-xdist (``--dist loadfile``) spreads the task compiles over both
workers; the contract tests themselves are imported, not copied. The side-by-side comparison with
the reference's running env is ``tests/test_reference_fidelity.py``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_envs import add_family
from test_termination import FLOOR_TOLERANCE, random_rollout

from goalax import envs
from goalax.envs import maze_layouts
from goalax.envs.humanoid import GOAL_Z, MAZE_CELL_SIZE, MAZE_WALL_HALF_HEIGHT

add_family(globals(), [name for name in envs.names() if name.startswith(("humanoid", "cheetah"))])

#: The 17 motors: abdomen and legs first (11), arms last (6), in the action's order.
N_LEG_MOTORS = 11


@pytest.fixture(scope="module")
def humanoid():
    return envs.make("humanoid")


def test_actions_map_linearly_onto_the_control_range(humanoid):
    """Regression: actions were passed to brax, which clipped them to +-0.4 (2.5x the torque for
    |a| < 0.4, 60% of the range saturated); the reference rescales [-1, 1] onto the range."""
    low, high = np.asarray(humanoid.sys.actuator.ctrl_range).T
    np.testing.assert_allclose((low, high), (np.full(17, -0.4), np.full(17, 0.4)), rtol=1e-6)
    for action, ctrl in ((-1.0, -0.4), (-0.2, -0.08), (0.0, 0.0), (0.2, 0.08), (1.0, 0.4)):
        np.testing.assert_allclose(humanoid.ctrl(jnp.full(17, action)), ctrl, atol=1e-7)
    np.testing.assert_allclose(humanoid.ctrl(jnp.full(17, 3.0)), 0.4, atol=1e-7)  # clipped


@pytest.mark.parametrize(
    "backend, legs, arms",
    [("spring", 350.0, 100.0), pytest.param("generalized", None, 25.0, marks=pytest.mark.slow)],
)
def test_full_action_applies_the_references_joint_forces(backend, legs, arms):
    """Action 1 gives gear x 0.4 on every motor's dof: spring 140 (legs, abdomen) and 40 (arms);
    generalized/MJX use the model's gears (100-300, arms 25)."""
    env = envs.make("humanoid", backend=backend)
    pipeline_state = jax.jit(env.reset)(jax.random.PRNGKey(0)).pipeline_state
    forces = jax.jit(env.state_obs)(pipeline_state, env.ctrl(jnp.ones(17)))[-env.sys.qd_size() :]
    forces = np.asarray(forces)
    gear = np.asarray(env.sys.actuator.gear)
    expected = np.zeros(25)  # the root's 6 dofs and the goal marker's 2 have no motor
    expected[np.asarray(env.sys.actuator.qd_id)] = 0.4 * gear
    np.testing.assert_allclose(forces, expected, rtol=1e-6)
    if legs is not None:
        assert set(gear[:N_LEG_MOTORS]) == {legs}
    assert set(gear[N_LEG_MOTORS:]) == {arms}


def test_every_body_geom_collides_with_the_floor(humanoid):
    """Regression: brax's stock humanoid lets only the feet touch the floor (a fallen humanoid
    sank to torso z -1.1); in the reference's model every geom of the body does. The goal marker
    touches nothing."""
    model = humanoid.sys.mj_model
    floor = model.geom("floor")
    names = [model.geom(i).name for i in range(model.ngeom)]
    body = [i for i in range(model.ngeom) if names[i] not in ("floor", "target")]
    assert len(body) == 17
    for i in body:
        assert model.geom_contype[i] & floor.conaffinity[0], names[i]
    marker = model.geom("target")
    assert marker.contype[0] == 0 and marker.conaffinity[0] == 0


@pytest.mark.slow
def test_a_fallen_humanoid_lies_on_the_floor():
    """With termination off the episode goes on after the fall, on the floor, not through it."""
    env = envs.make("humanoid", termination=False)
    torso_z, lowest_z, _, _ = random_rollout(env, num_envs=6, num_steps=300)
    assert torso_z.min() < 1.0  # it fell
    assert torso_z.min() > 0.0 and lowest_z.min() > -FLOOR_TOLERANCE, lowest_z.min()


def test_reset_is_the_references(humanoid):
    """The standing pose without noise; the goal 1-5 from the origin at height 1.25, its x, y on
    the marker's joints (the last two of q); velocities and actuator forces zero."""
    keys = jax.random.split(jax.random.PRNGKey(3), 256)
    state = jax.jit(jax.vmap(humanoid.reset))(keys)
    q = np.asarray(state.pipeline_state.q)
    goal = np.asarray(state.info["goal"])
    init_q = np.asarray(humanoid.sys.init_q)
    np.testing.assert_array_equal(q[:, :-2], np.broadcast_to(init_q[:-2], q[:, :-2].shape))
    np.testing.assert_array_equal(q[:, -2:], goal[:, :2])
    np.testing.assert_array_equal(goal[:, 2], GOAL_Z)
    distance = np.linalg.norm(goal[:, :2], axis=-1)
    assert distance.min() >= 1.0 and distance.max() <= 5.0
    assert distance.min() < 1.2 and distance.max() > 4.8  # the whole range is drawn
    np.testing.assert_array_equal(state.pipeline_state.qd, 0.0)
    np.testing.assert_array_equal(state.obs[:, humanoid.state_dim - 25 : humanoid.state_dim], 0.0)


def test_observation_layout_and_centre_of_mass_inertia(humanoid):
    """``q, qd``, then per link the inertia about the system's centre of mass and the mass
    (recomputed here with the parallel-axis theorem), then mass-weighted velocities."""
    state = jax.jit(humanoid.reset)(jax.random.PRNGKey(0))
    obs = np.asarray(state.obs, np.float64)
    q_size, qd_size, links = humanoid.sys.q_size(), humanoid.sys.qd_size(), humanoid.sys.num_links()
    assert (q_size, qd_size, links, humanoid.state_dim) == (26, 25, 12, 268)
    np.testing.assert_array_equal(obs[:q_size], state.pipeline_state.q)
    com_inertia = obs[q_size + qd_size : q_size + qd_size + 10 * links].reshape(links, 10)
    inertia = humanoid.sys.link.inertia
    mass = np.asarray(inertia.mass, np.float64)
    np.testing.assert_allclose(com_inertia[:, 9], mass, rtol=1e-6)
    com = np.asarray(state.pipeline_state.x.vmap().do(inertia.transform).pos, np.float64)
    centre = (mass[:, None] * com).sum(0) / mass.sum()
    offset = com - centre
    # spring: brax's spring_inertia_scale 1 makes each link's rotational inertia the identity;
    # at the rest pose every link frame is upright (rotation = identity up to 0.002 rad).
    parallel = mass[:, None, None] * (
        (offset**2).sum(-1)[:, None, None] * np.eye(3) - offset[:, :, None] * offset[:, None, :]
    )
    np.testing.assert_allclose(
        com_inertia[:, :9].reshape(links, 3, 3), np.eye(3) + parallel, atol=2e-4
    )
    velocities = obs[q_size + qd_size + 10 * links : humanoid.state_dim - qd_size]
    assert velocities.shape == (6 * links,)
    np.testing.assert_array_equal(velocities, 0.0)  # at rest


def test_with_goal_moves_the_marker(humanoid):
    reset = jax.jit(humanoid.reset)(jax.random.PRNGKey(0))
    physics, info = reset.pipeline_state, reset.info
    ctrl = humanoid.ctrl(jnp.full(17, 0.5))  # as after a step with this action
    state_obs = jax.jit(humanoid.state_obs)(physics, ctrl)
    state = humanoid.make_state(physics, info["goal"], info, state_obs)
    goal = humanoid.eval_goal_sets()["tasks"][3]
    moved = jax.jit(humanoid.with_goal)(state, goal)
    np.testing.assert_allclose(moved.pipeline_state.q[-2:], goal[:2], atol=1e-6)
    np.testing.assert_array_equal(moved.obs[humanoid.state_dim :], goal)
    np.testing.assert_allclose(moved.obs[24:26], goal[:2], atol=1e-6)
    forces = slice(humanoid.state_dim - 25, humanoid.state_dim)
    np.testing.assert_array_equal(moved.obs[forces], state.obs[forces])  # the step's control
    assert np.abs(np.asarray(moved.obs[forces])).max() > 0
    np.testing.assert_allclose(moved.obs[:24], state.obs[:24], atol=1e-6)  # the body stays


def test_maze_is_the_references_frame_start_and_goals():
    """Cell (row, col) is centred at (2 row, 2 col); start at the start cell's centre (2, 2);
    goals at the centres of the other free cells, no noise; walls 1 high cover the wall cells."""
    env = envs.make("humanoid_u_maze")
    wall_cover(env)
    layout = np.asarray(maze_layouts.U_MAZE)
    state = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), 128))
    q = np.asarray(state.pipeline_state.q)
    np.testing.assert_array_equal(q[:, :3], np.broadcast_to(np.float32([2, 2, 1.4]), (128, 3)))
    goals = {tuple(g) for g in np.asarray(state.info["goal"]).round(6).tolist()}
    free = [tuple(c) for c in np.argwhere(layout == 0).tolist() if tuple(c) != (1, 1)]
    assert goals == {(2.0 * r, 2.0 * c, GOAL_Z) for r, c in free}
    for goals in env.eval_goal_sets().values():
        assert {tuple(g) for g in goals.round(6).tolist()} <= {
            (2.0 * r, 2.0 * c, GOAL_Z) for r, c in free
        }


@pytest.mark.parametrize("name", ["humanoid_u_maze", "humanoid_big_maze", "humanoid_hardest_maze"])
def test_merged_walls_are_the_references_solid(name):
    """Deliberate deviation: goalax merges wall cells into few boxes (fewer collision pairs: 135
    vs 33 env steps/s on the hardest maze, 64 envs on spring, 2-core CPU under load);
    ``merged_walls=False`` builds the reference's box per wall cell.
    Both cover exactly the wall cells (every one that a body can reach), each once."""
    merged = envs.make(name)
    per_cell = envs.make(name, merged_walls=False)
    layout = np.asarray(merged.layout)
    assert wall_cover(per_cell) == (layout == 1).sum()
    assert wall_cover(merged) < wall_cover(per_cell)


def wall_cover(env) -> int:
    """Number of wall boxes of ``env``; asserts that they cover each wall cell of its layout
    that borders a free cell exactly once, no free cell, and stand 1 high."""
    model, layout = env.sys.mj_model, np.asarray(env.layout)
    walls = [i for i in range(model.ngeom) if model.geom(i).name.startswith("wall")]
    covered = np.zeros_like(layout)
    for i in walls:
        (x, y, z), (hx, hy, hz) = model.geom_pos[i], model.geom_size[i]
        assert (z, hz) == (MAZE_WALL_HALF_HEIGHT, MAZE_WALL_HALF_HEIGHT)
        low = np.round((np.array([x, y]) - (hx, hy)) / MAZE_CELL_SIZE + 0.5).astype(int)
        high = np.round((np.array([x, y]) + (hx, hy)) / MAZE_CELL_SIZE + 0.5).astype(int)
        covered[low[0] : high[0], low[1] : high[1]] += 1
    free = np.pad(layout == 0, 1)
    near_free = np.zeros_like(layout, bool)
    for dr in range(3):
        for dc in range(3):
            near_free |= free[dr : dr + layout.shape[0], dc : dc + layout.shape[1]]
    assert (covered[layout == 0] == 0).all()
    assert (covered[(layout == 1) & near_free] == 1).all()
    assert (covered <= 1).all()
    return len(walls)
