"""Humanoid tasks: ``humanoid`` and ``humanoid_{u,big,hardest}_maze``.

Physics come from brax's bundled ``humanoid.xml`` (17 actuated joints), with brax's per-backend
integration settings. The goal is a torso position ``x, y, z`` with ``z`` the standing torso height
(1.4), so a goal is reached only upright: the goal part is entries 0-2 (torso position).

state_obs ``[24 + 23 + 3 L + 3 L]`` (``L`` = 11 links, 113 in all): ``q``, ``qd``, every link's
position relative to the torso and every link's linear velocity. (The predecessor's 268 entries
also held MuJoCo's com-inertia and actuator-force vectors, which brax's maximal-coordinate
backends do not compute.) Goals: ``humanoid`` draws a point 1-5 from the start at a random angle;
the mazes (cell size 2, walls 2 high) use the fixed start cell and a random other free cell ± 0.5.
Every humanoid task terminates, as the reference's do, when the torso height leaves
``(1.0, 2.0)`` (it has fallen); ``termination=False`` turns that off. Without it a fallen humanoid
sinks through the floor on the current brax (torso z ≈ -1.1 after 500 random steps), so the rest
of its episode is non-physical.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from goalax.envs import maze_layouts, notices
from goalax.envs.base import GoalPipelineEnv, State, brax_asset, mjx_fast_solver

TORSO_Z0 = 1.4
MAZE_CELL_SIZE = 2.0
MAZE_WALL_HALF_HEIGHT = 1.0
MAZE_GOAL_NOISE = 0.5
#: The reference's healthy torso heights (JaxGCRL's ``healthy_z_range``).
HUMANOID_HEALTHY_Z = (1.0, 2.0)
#: brax's gears for the maximal-coordinate backends (which ignore joint armature).
SPRING_GEAR = (350.0,) * 11 + (100.0,) * 6


class Humanoid(GoalPipelineEnv):
    """Torso to a standing-height point 1-5 away; ends when the humanoid falls."""

    backends = ("spring", "mjx", "generalized")
    healthy_z_range = HUMANOID_HEALTHY_Z

    def __init__(
        self,
        *,
        episode_length: int | None = None,
        backend: str | None = None,
        dense_reward: bool = False,
        termination: bool = True,
        layout: maze_layouts.Layout | None = None,
    ):
        backend = backend or self.backends[0]
        self.layout = layout
        self.termination = termination
        xml = brax_asset("humanoid.xml")
        if layout is not None:
            walls = maze_layouts.wall_geoms_mjcf(layout, MAZE_CELL_SIZE, MAZE_WALL_HALF_HEIGHT)
            xml = xml.replace("</worldbody>", walls + "\n</worldbody>")
        sys = notices.load_mjcf(xml)
        n_frames = 5
        if backend in ("spring", "positional"):
            sys = sys.tree_replace({"opt.timestep": 0.0015})
            sys = sys.replace(actuator=sys.actuator.replace(gear=jnp.asarray(SPRING_GEAR)))
            n_frames = 10
        if backend == "mjx":
            sys = mjx_fast_solver(sys)
        super().__init__(sys=sys, backend=backend, n_frames=n_frames)
        self.state_dim = sys.q_size() + sys.qd_size() + 6 * sys.num_links()
        self.goal_indices = (0, 1, 2)
        self.goal_threshold = 0.5
        self.success_easy_threshold = 2.0
        self.episode_length = 1000 if episode_length is None else episode_length
        self.dense_reward = dense_reward
        if layout is not None:
            self.start = maze_layouts.start_cell(layout)
            cells = maze_layouts.free_cells(layout)
            goal_cells = cells[(cells != np.array(self.start)).any(axis=-1)]
            self._start_xy = jnp.asarray(
                maze_layouts.cell_to_xy(np.array(self.start), layout, MAZE_CELL_SIZE), jnp.float32
            )
            self._goal_centres = jnp.asarray(
                maze_layouts.cell_to_xy(goal_cells, layout, MAZE_CELL_SIZE), jnp.float32
            )

    def reset(self, rng: jax.Array) -> State:
        key_q, key_qd, key_goal, key_noise = jax.random.split(rng, 4)
        if self.layout is None:
            start = jnp.zeros(2, jnp.float32)
            key_radius, key_angle = jax.random.split(key_goal)
            radius = jax.random.uniform(key_radius, (), jnp.float32, 1.0, 5.0)
            angle = jax.random.uniform(key_angle, (), jnp.float32, -jnp.pi, jnp.pi)
            goal_xy = radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)])
        else:
            start = self._start_xy
            cell = jax.random.randint(key_goal, (), 0, self._goal_centres.shape[0])
            goal_xy = self._goal_centres[cell] + jax.random.uniform(
                key_noise, (2,), jnp.float32, -MAZE_GOAL_NOISE, MAZE_GOAL_NOISE
            )
        goal = jnp.concatenate([goal_xy, jnp.array([TORSO_Z0], jnp.float32)])
        noise = jax.random.uniform(key_q, (self.sys.q_size(),), jnp.float32, -0.01, 0.01)
        q = self.sys.init_q.at[:2].set(start) + noise
        qd = jax.random.uniform(key_qd, (self.sys.qd_size(),), jnp.float32, -0.01, 0.01)
        return self.make_state(self.pipeline_init(q, qd), goal, {"goal": goal})

    def state_obs(self, pipeline_state) -> jax.Array:
        x, xd = pipeline_state.x, pipeline_state.xd
        relative = (x.pos - x.pos[0]).ravel()
        return jnp.concatenate([pipeline_state.q, pipeline_state.qd, relative, xd.vel.ravel()])

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        if self.layout is None:
            radii = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
            angles = np.deg2rad([0.0, 72.0, 144.0, 216.0, 288.0])
            xy = radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
            sets = {"tasks": xy}
        else:
            sets = maze_layouts.eval_goal_cells(self.layout, MAZE_CELL_SIZE, self.start)
        return {
            name: np.concatenate([xy, np.full((len(xy), 1), TORSO_Z0)], axis=-1).astype(np.float32)
            for name, xy in sets.items()
        }
