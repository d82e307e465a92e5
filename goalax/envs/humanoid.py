"""Humanoid tasks: ``humanoid`` and ``humanoid_{u,big,hardest}_maze``.

Each is the reference's task (jaxgcrl 0.2.8, ``humanoid.py`` and ``humanoid_maze.py``) on
goalax's own MJCF (``assets/humanoid.xml``, the reference's physical parameters; every body geom
collides with the floor): the same actuation, reset distribution, observation, thresholds and
termination, on the reference's default backend ``spring`` (also ``mjx``, ``generalized``).

- Actions in ``[-1, 1]`` map linearly onto the motors' control range ``[-0.4, 0.4]`` (``ctrl``),
  as the reference rescales them; brax would otherwise clip them there.
- Physics per backend as the reference's: ``spring``/``positional`` 10 x 1.5 ms with brax's gears
  (350 on legs and abdomen, 100 on arms), ``generalized``/``mjx`` 5 x 3 ms with the model's gears
  (25-300); env dt 0.015 s either way.
- Reset: the model's standing pose at rest, no noise (the reference's ``reset_noise_scale`` is 0).
  ``humanoid`` starts at the origin with the goal at a distance uniform in ``[1, 5]`` and a
  uniform angle; the mazes start at the start cell's centre with the goal at the centre of a
  uniformly drawn other free cell. The goal height is 1.25 (the reference's ``TARGET_Z_COORD``);
  the torso stands at 1.4, so a goal counts as reached (0.5) only near upright.
- Mazes (``HumanoidMaze``): the reference's frame (cell ``(row, col)`` centred at
  ``(2 row, 2 col)``: the humanoid, facing +x, faces down the printed layout), cell size 2, walls
  1 high. One deliberate deviation, on by default: the walls are merged boxes (the same solid with
  fewer collision pairs, see ``maze_walls_mjcf``); ``merged_walls=False`` builds the reference's
  box per wall cell.
- The reference's goal marker is kept: a ``target`` body on two slide joints, appended last and
  placed at the goal at reset, because the reference's observation reads it.

state_obs ``[268]``, the reference's: ``q [26]`` and ``qd [25]`` (the marker's two slide joints
last), then for each of the 12 links (the marker last) its inertia about the whole system's
centre of mass (``[3, 3]`` then mass: 120), its centre-of-mass velocity weighted by mass / total
mass and angular velocity (72), and the actuator forces of the applied control on each dof (25;
zeros after a reset). So the state part holds the episode's goal ``x, y`` (``q[24:26]``), as the
reference's does; a relabelled goal need not be it. The goal part is the torso position (0-2).

These quantities are computed, as the reference computes them, from brax's ``System`` (link
inertias, the pipeline's link frames and velocities, ``brax.actuator.to_tau``), so every backend
computes the same definition; on ``spring``/``positional`` brax's inertia scaling
(``spring_inertia_scale`` 1) makes every link's rotational inertia the identity, exactly as the
reference observes there. They are not MuJoCo's ``cinert``/``cvel``/``qfrc_actuator``, which only
``mjx`` has.

Every humanoid task terminates, as the reference's do, when the torso height leaves ``(1.0, 2.0)``
(it has fallen); ``termination=False`` turns that off.
"""

from __future__ import annotations

import os

import brax
import jax
import jax.numpy as jnp
import numpy as np
from brax import actuator, base

from goalax.envs import maze_layouts, notices
from goalax.envs.base import State
from goalax.envs.brax_base import GoalPipelineEnv, mjx_fast_solver

ASSET = os.path.join(os.path.dirname(__file__), "assets", "humanoid.xml")
#: The goal's height (the reference's ``TARGET_Z_COORD``, close to a standing torso's).
GOAL_Z = 1.25
#: Range of the goal's distance from the start in ``humanoid``.
GOAL_DISTANCE = (1.0, 5.0)
MAZE_CELL_SIZE = 2.0
#: Walls are 1 high (the reference's ``MAZE_HEIGHT`` 0.5 x cell size 2).
MAZE_WALL_HALF_HEIGHT = 0.5
#: The reference's healthy torso heights (JaxGCRL's ``healthy_z_range``).
HUMANOID_HEALTHY_Z = (1.0, 2.0)
#: brax's gears for the maximal-coordinate backends (which ignore joint armature).
SPRING_GEAR = (350.0,) * 11 + (100.0,) * 6
#: Half-range of the marker's slide joints (the reference's: 20 in ``humanoid``, 100 in mazes).
TARGET_RANGE = 20.0
MAZE_TARGET_RANGE = 100.0


def target_mjcf(slide_range: float) -> str:
    """The reference's goal marker: a 1 kg sphere of radius 0.5 at the goal height on x/y slide
    joints, touching nothing (``contype``/``conaffinity`` 0)."""
    joint = (
        f'type="slide" limited="true" range="{-slide_range} {slide_range}" '
        'armature="0" damping="0" stiffness="0"'
    )
    return (
        f'<body name="target" pos="0 0 {GOAL_Z}">'
        f'<joint name="target_x" axis="1 0 0" {joint}/>'
        f'<joint name="target_y" axis="0 1 0" {joint}/>'
        '<geom name="target" type="sphere" size="0.5" mass="1" contype="0" conaffinity="0" '
        'rgba="0.2 0.8 0.2 0.5"/></body>'
    )


def cell_xy(cells: np.ndarray) -> np.ndarray:
    """``[..., 2] (row, col) -> [..., 2]`` world ``x, y`` of cell centres in the reference's maze
    frame (x along rows, y along columns, cell ``(0, 0)`` at the origin)."""
    return np.asarray(cells, np.float32) * MAZE_CELL_SIZE


def maze_walls_mjcf(layout: maze_layouts.Layout, merged: bool) -> str:
    """Wall boxes in the reference's maze frame. ``merged``: ``maze_layouts``' rectangles, which
    cover every wall cell next to a free cell with few boxes (fewer collision pairs; no seams
    between boxes for a body to catch on); else one box per wall cell, as the reference builds
    them."""
    if merged:
        rectangles = maze_layouts.wall_rectangles(layout)
    else:
        rectangles = [(r, c, r, c) for r, c in np.argwhere(np.asarray(layout) == 1).tolist()]
    geoms = []
    for i, (row0, col0, row1, col1) in enumerate(rectangles):
        centre = cell_xy(np.array([row0 + row1, col0 + col1]) / 2)
        half = MAZE_CELL_SIZE * np.array([row1 - row0 + 1, col1 - col0 + 1]) / 2
        h = MAZE_WALL_HALF_HEIGHT
        geoms.append(
            f'<geom name="wall{i}" type="box" pos="{centre[0]} {centre[1]} {h}" '
            f'size="{half[0]} {half[1]} {h}" contype="1" conaffinity="1" '
            'rgba="0.7 0.5 0.3 1"/>'
        )
    return "\n".join(geoms)


def humanoid_mjcf(world: str) -> str:
    """The task's model: the humanoid asset with ``world`` (maze walls, the goal marker last, so
    that its joints are the last entries of ``q``/``qd`` and it is the last link) appended."""
    with open(ASSET) as f:
        return f.read().replace("</worldbody>", world + "\n</worldbody>")


def humanoid_system(xml: str, backend: str) -> tuple[brax.System, int]:
    """``(system, n_frames)``: the reference's integration settings for ``backend``."""
    sys = notices.load_mjcf(xml)
    if backend in ("spring", "positional"):
        sys = sys.tree_replace({"opt.timestep": 0.0015})
        return sys.replace(actuator=sys.actuator.replace(gear=jnp.asarray(SPRING_GEAR))), 10
    if backend == "mjx":
        sys = mjx_fast_solver(sys)
    return sys, 5


class Humanoid(GoalPipelineEnv):
    """Torso to a goal 1-5 away at height 1.25; ends when the humanoid falls."""

    backends = ("spring", "mjx", "generalized")
    healthy_z_range = HUMANOID_HEALTHY_Z

    def __init__(
        self,
        *,
        episode_length: int | None = None,
        backend: str | None = None,
        dense_reward: bool = False,
        termination: bool = True,
    ):
        backend = backend or self.backends[0]
        self.termination = termination
        sys, n_frames = humanoid_system(humanoid_mjcf(self.world_mjcf()), backend)
        super().__init__(sys=sys, backend=backend, n_frames=n_frames)
        self.state_dim = sys.q_size() + sys.qd_size() + 16 * sys.num_links() + sys.qd_size()
        self.goal_indices = (0, 1, 2)
        self.goal_threshold = 0.5
        self.success_easy_threshold = 2.0
        self.episode_length = 1000 if episode_length is None else episode_length
        self.dense_reward = dense_reward
        self._ctrl_range = sys.actuator.ctrl_range

    def world_mjcf(self) -> str:
        """What the task appends to the humanoid's world: the goal marker."""
        return target_mjcf(TARGET_RANGE)

    def start_xy(self) -> jax.Array:
        return jnp.zeros(2, jnp.float32)

    def sample_goal_xy(self, key: jax.Array) -> jax.Array:
        """``[2]``: a point at a distance uniform in ``GOAL_DISTANCE`` from the origin, at a
        uniform angle (so not uniform over the annulus: near goals are denser, as the
        reference's)."""
        key_distance, key_angle = jax.random.split(key)
        distance = jax.random.uniform(key_distance, (), jnp.float32, *GOAL_DISTANCE)
        angle = jax.random.uniform(key_angle, (), jnp.float32, 0.0, 2 * jnp.pi)
        return distance * jnp.stack([jnp.cos(angle), jnp.sin(angle)])

    def reset(self, rng: jax.Array) -> State:
        goal_xy = self.sample_goal_xy(rng)
        q = self.sys.init_q.at[:2].set(self.start_xy()).at[-2:].set(goal_xy)
        goal = jnp.concatenate([goal_xy, jnp.array([GOAL_Z], jnp.float32)])
        pipeline_state = self.pipeline_init(q, jnp.zeros(self.sys.qd_size(), jnp.float32))
        return self.make_state(pipeline_state, goal, {"goal": goal})

    def ctrl(self, action: jax.Array) -> jax.Array:
        """``[17]``: ``[-1, 1]`` onto each motor's control range, linearly (clipped first)."""
        low, high = self._ctrl_range[:, 0], self._ctrl_range[:, 1]
        return low + (jnp.clip(action, -1.0, 1.0) + 1.0) / 2.0 * (high - low)

    def step(self, state: State, action: jax.Array) -> State:
        ctrl = self.ctrl(action)
        pipeline_state = self.pipeline_step(state.pipeline_state, ctrl)
        state_obs = self.state_obs(pipeline_state, ctrl)
        return self.make_state(pipeline_state, state.info["goal"], state.info, state_obs)

    def with_goal(self, state: State, goal: jax.Array) -> State:
        """Swap the goal and move the marker there (its joints are part of the state)."""
        goal = jnp.asarray(goal, jnp.float32)
        physics = state.pipeline_state
        q = physics.q.at[-2:].set(goal[:2])
        qd = physics.qd.at[-2:].set(0.0)
        pipeline_state = self.pipeline_init(q, qd)
        # The actuator forces (last qd_size entries) do not depend on the marker: kept as they were.
        forces = state.obs[self.state_dim - self.sys.qd_size() : self.state_dim]
        state_obs = self.state_obs(pipeline_state)[: -self.sys.qd_size()]
        moved = state.replace(
            pipeline_state=pipeline_state,
            obs=jnp.concatenate([state_obs, forces, state.obs[self.state_dim :]]),
        )
        return super().with_goal(moved, goal)

    def link_inertia(self) -> base.Inertia:
        """Link inertias as brax's pipeline sees them: on ``spring``/``positional`` rotational
        inertia and mass are scaled by ``spring_inertia_scale``/``spring_mass_scale``."""
        inertia = self.sys.link.inertia
        if self.backend not in ("spring", "positional"):
            return inertia
        diagonal = jax.vmap(jnp.diagonal)(inertia.i) ** (1 - self.sys.spring_inertia_scale)
        return inertia.replace(
            i=jax.vmap(jnp.diag)(diagonal), mass=inertia.mass ** (1 - self.sys.spring_mass_scale)
        )

    def state_obs(self, pipeline_state, ctrl: jax.Array | None = None) -> jax.Array:
        """``[268]`` (see the module docstring); ``ctrl``: the control applied in the step that led
        here (``None``: zeros, as after a reset)."""
        if ctrl is None:
            ctrl = jnp.zeros(self.action_size, jnp.float32)
        inertia = self.link_inertia()
        mass = inertia.mass
        com_frames = pipeline_state.x.vmap().do(inertia.transform)  # each link's com frame
        centre = jnp.sum(mass[:, None] * com_frames.pos, axis=0) / jnp.sum(mass)
        about_centre = com_frames.replace(pos=com_frames.pos - centre).vmap().do(inertia)
        com_inertia = jnp.concatenate(
            [about_centre.i.reshape(-1, 9), mass[:, None]], axis=-1
        )  # [links, 10]
        to_com = base.Transform.create(pos=com_frames.pos - pipeline_state.x.pos)
        com_motion = to_com.vmap().do(pipeline_state.xd)
        com_velocity = jnp.concatenate(
            [mass[:, None] * com_motion.vel / jnp.sum(mass), com_motion.ang], axis=-1
        )  # [links, 6]
        forces = actuator.to_tau(self.sys, ctrl, pipeline_state.q, pipeline_state.qd)
        return jnp.concatenate(
            [
                pipeline_state.q,
                pipeline_state.qd,
                com_inertia.ravel(),
                com_velocity.ravel(),
                forces,
            ]
        )

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        """``tasks``: distances 1-5 at 72 degree steps."""
        radii = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
        angles = np.deg2rad([0.0, 72.0, 144.0, 216.0, 288.0])
        xy = radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
        return {"tasks": with_goal_z(xy)}


def with_goal_z(xy: np.ndarray) -> np.ndarray:
    """``[n, 2] -> [n, 3]`` float32 goals at the goal height."""
    return np.concatenate([xy, np.full((len(xy), 1), GOAL_Z)], axis=-1).astype(np.float32)


class HumanoidMaze(Humanoid):
    """Torso from the start cell to the centre of another free cell of ``layout``.

    ``merged_walls``: merged wall boxes (goalax's default) or the reference's box per wall cell
    (``maze_walls_mjcf``).
    """

    def __init__(self, layout: maze_layouts.Layout, *, merged_walls: bool = True, **kwargs):
        self.layout = layout
        self.merged_walls = merged_walls
        self.start = maze_layouts.start_cell(layout)
        cells = maze_layouts.free_cells(layout)
        goal_cells = cells[(cells != np.array(self.start)).any(axis=-1)]
        self._start_xy = jnp.asarray(cell_xy(np.array(self.start)))
        self._goal_centres = jnp.asarray(cell_xy(goal_cells))
        super().__init__(**kwargs)

    def world_mjcf(self) -> str:
        walls = maze_walls_mjcf(self.layout, self.merged_walls)
        return walls + "\n" + target_mjcf(MAZE_TARGET_RANGE)

    def start_xy(self) -> jax.Array:
        return self._start_xy

    def sample_goal_xy(self, key: jax.Array) -> jax.Array:
        """``[2]``: the centre of a uniformly drawn free cell other than the start cell."""
        return self._goal_centres[jax.random.randint(key, (), 0, self._goal_centres.shape[0])]

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        """``far`` (the farther half of the free cells by path length) and ``all`` cells."""
        named = maze_layouts.eval_goal_cells(self.layout, MAZE_CELL_SIZE, self.start)
        return {
            name: with_goal_z(cell_xy(maze_layouts.xy_to_cell(xy, self.layout, MAZE_CELL_SIZE)))
            for name, xy in named.items()
        }
