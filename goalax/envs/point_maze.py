"""``simple_u_maze``, ``simple_big_maze``, ``simple_hardest_maze``: a point mass in a maze.

The MJCF is generated from the layout (``maze_layouts``): one box per merged run of wall cells and a
ball with two slide joints (x, y) and a force motor on each. There is no gravity and no z joint, so
the ball never touches the floor and the only contacts are ball-wall.

state_obs ``[4]``: ``x, y, vx, vy`` (goal part ``x, y``). Every reset puts the ball in a uniformly
random free cell (± ``start_noise``) and the goal in a different uniformly random free cell,
uniform over the part of that cell the ball's centre can reach.

Dynamics: force ``gear * action`` on a 1 kg ball against a linear drag ``damping * velocity``,
so the top speed is ``gear / damping`` = 4 units/s (2 cells/s) and the velocity settles in about
0.2 s (2 env steps of 0.1 s). Actions with norm above 1 are scaled to norm 1, so the top speed is
the same in every direction.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import PipelineEnv

from goalax.envs import maze_layouts, notices
from goalax.envs.base import GoalEnv, State

CELL_SIZE = 2.0
BALL_RADIUS = 0.25
WALL_HALF_HEIGHT = 0.5
GEAR = 20.0
DAMPING = 5.0
TIMESTEP = 0.025
N_FRAMES = 4


def maze_mjcf(layout: maze_layouts.Layout, cell_size: float = CELL_SIZE) -> str:
    """MJCF of the maze walls plus the actuated ball (mass 1, at the origin)."""
    walls = maze_layouts.wall_geoms_mjcf(layout, cell_size, WALL_HALF_HEIGHT)
    n_rows, n_cols = np.asarray(layout).shape
    floor = f"{n_cols * cell_size / 2} {n_rows * cell_size / 2} 0.1"
    # vel_damping is the drag for the maximal-coordinate backends (spring, positional), the joint
    # damping the same drag for generalized coordinates; each backend reads only its own.
    # Frictionless walls: spring averages the impulses of simultaneous contacts, and with friction
    # a ball pushed into a concave corner jitters, speeds up and sinks into the walls. A stiffer
    # Baumgarte correction (0.5, brax default 0.1) pushes it back out faster after an impact.
    return f"""
<mujoco model="point_maze">
  <compiler angle="radian"/>
  <option timestep="{TIMESTEP}" gravity="0 0 0"/>
  <default>
    <geom friction="0 0 0"/>
  </default>
  <custom>
    <numeric name="vel_damping" data="{-DAMPING}"/>
    <numeric name="baumgarte_erp" data="0.5"/>
  </custom>
  <worldbody>
    <light pos="0 0 20" dir="0 0 -1" diffuse="0.8 0.8 0.8"/>
    <geom name="floor" type="plane" size="{floor}" contype="0" conaffinity="0"
          rgba="0.9 0.9 0.9 1"/>
    {walls}
    <body name="ball" pos="0 0 {BALL_RADIUS}">
      <joint name="ball_x" type="slide" axis="1 0 0" damping="{DAMPING}"/>
      <joint name="ball_y" type="slide" axis="0 1 0" damping="{DAMPING}"/>
      <geom name="ball" type="sphere" size="{BALL_RADIUS}" mass="1" rgba="0.2 0.4 0.9 1"/>
    </body>
  </worldbody>
  <actuator>
    <motor joint="ball_x" gear="{GEAR}" ctrlrange="-1 1" ctrllimited="true"/>
    <motor joint="ball_y" gear="{GEAR}" ctrlrange="-1 1" ctrllimited="true"/>
  </actuator>
</mujoco>
"""


class PointMaze(GoalEnv, PipelineEnv):
    """Point mass to a goal position in a maze; never terminates."""

    backends = ("spring", "generalized")

    def __init__(
        self,
        layout: maze_layouts.Layout,
        *,
        episode_length: int | None = None,
        backend: str | None = None,
        dense_reward: bool = False,
        start_noise: float = 0.25,
    ):
        backend = backend or "spring"
        sys = notices.load_mjcf(maze_mjcf(layout))
        super().__init__(sys=sys, backend=backend, n_frames=N_FRAMES)
        self.layout = layout
        self.cell_size = CELL_SIZE
        self.state_dim = 4
        self.goal_indices = (0, 1)
        self.goal_threshold = 0.5
        self.success_easy_threshold = 1.0
        self.episode_length = 1000 if episode_length is None else episode_length
        self.dense_reward = dense_reward
        self.start_noise = start_noise
        self._cell_centers = jnp.asarray(self.free_cell_centers())

    def free_cell_centers(self) -> np.ndarray:
        """``[n_free, 2]`` world ``(x, y)`` of the free cells' centres (row-major order)."""
        return maze_layouts.free_cell_centers(self.layout, self.cell_size)

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        """``all``: every free cell's centre. Starts are random, so no set is "far" from them."""
        return {"all": self.free_cell_centers()}

    def reset(self, rng: jax.Array) -> State:
        key_cells, key_start, key_goal = jax.random.split(rng, 3)
        start_cell, goal_cell = self._distinct_cells(key_cells)
        start = self._cell_centers[start_cell] + jax.random.uniform(
            key_start, (2,), jnp.float32, -self.start_noise, self.start_noise
        )
        goal_reach = self.cell_size / 2 - BALL_RADIUS
        goal = self._cell_centers[goal_cell] + jax.random.uniform(
            key_goal, (2,), jnp.float32, -goal_reach, goal_reach
        )
        pipeline_state = self.pipeline_init(start, jnp.zeros(2, jnp.float32))
        return self.make_state(pipeline_state, goal, info={"goal": goal})

    def step(self, state: State, action: jax.Array) -> State:
        # Same top speed in every direction: the box [-1, 1]^2 is squashed into the unit disc.
        action = jnp.clip(action, -1.0, 1.0)
        action = action / jnp.maximum(1.0, jnp.linalg.norm(action))
        pipeline_state = self.pipeline_step(state.pipeline_state, action)
        return self.make_state(pipeline_state, state.info["goal"], info=state.info)

    def state_obs(self, pipeline_state) -> jax.Array:
        """``[4]``: ``x, y, vx, vy`` of the ball."""
        return jnp.concatenate([pipeline_state.q, pipeline_state.qd]).astype(jnp.float32)

    def _distinct_cells(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Two different free-cell indices, each pair equally likely."""
        key_start, key_goal = jax.random.split(key)
        n_free = self._cell_centers.shape[0]
        start = jax.random.randint(key_start, (), 0, n_free)
        goal = jax.random.randint(key_goal, (), 0, n_free - 1)
        return start, goal + (goal >= start)
