"""``simple_u_maze``, ``simple_big_maze``, ``simple_hardest_maze``: a ball pushed through a maze.

The reference's task (JaxGCRL 0.2.8 ``simple_maze``) in goalax's own MJCF, generated from the
layout (``maze_layouts``, the reference's world frame and 4.0 cells): walls 2.0 tall, and a ball
of radius 0.25 at height 0.75 on two slide joints (x, y) with a motor of gear 5 on each and no
control limit. A target body (no contacts) marks the goal.

Walls: merged boxes by default (``maze_layouts.wall_rectangles``: the same solid with fewer
contact pairs, 8.7x the env steps per second on the hardest maze, 8,860 vs 1,021 at 64 envs on
2 CPU cores); ``merged_walls=False`` builds the reference's box per wall cell, with which a
trajectory equals the reference's to float rounding (a 300-step path along the U-maze's walls:
0 difference; with merged boxes the seams' contacts differ and it drifts 4 mm).

state_obs ``[4]``: ``x, y, vx, vy`` of the ball (goal part ``x, y``). Every reset puts the ball
at the centre of the start cell (``maze_layouts.start_cell``) with a velocity drawn from
``N(0, 0.1^2)`` per axis, and the goal at the centre of a uniformly drawn other free cell.

Dynamics on ``spring`` (the default, as the reference's): 0.005 s x 10 substeps = 0.05 s per
step; spring's mass scale of 1 makes every body's mass 1, so an action ``a`` accelerates the
ball by ``5 a`` with no drag, and walls stop it through soft contacts. On ``generalized``
(0.01 s x 5) the joints' armature of 1 adds to the ball's 0.327 kg.

Termination, the reference's rule: the episode ends when the ball's height leaves (0.2, 1.0). The
ball has no height joint (its slide joints hold it at 0.746-0.748 on spring, walls included), so
the rule never fires; it is kept so that the task is the reference's in every fact.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from goalax.envs import maze_layouts, notices
from goalax.envs.base import State
from goalax.envs.brax_base import GoalPipelineEnv
from goalax.envs.mjcf_parts import BRAX_NUMERICS

CELL_SIZE = 4.0
BALL_RADIUS = 0.25
BALL_HEIGHT = 0.75
WALL_HALF_HEIGHT = 1.0
GEAR = 5.0
#: Standard deviation of the start velocity of each axis.
START_SPEED_STD = 0.1


class _Physics(NamedTuple):
    """Per-backend integration (env dt is ``timestep * n_frames`` = 0.05 s for both)."""

    timestep: float
    n_frames: int


_PHYSICS = {
    "spring": _Physics(timestep=0.005, n_frames=10),
    "generalized": _Physics(timestep=0.01, n_frames=5),
}


def maze_mjcf(layout: maze_layouts.Layout, timestep: float, merged_walls: bool) -> str:
    """MJCF of the reference's ball maze: walls, the ball and the goal marker."""
    walls = maze_layouts.wall_geoms_mjcf(layout, CELL_SIZE, WALL_HALF_HEIGHT, merge=merged_walls)
    # The custom numerics are brax's spring parameters of the reference's model; the floor collides
    # with the ball (the ball never reaches it: its centre is held at BALL_HEIGHT). Names are the
    # reference's (its ball is "torso"), so that facts join by name.
    return f"""
<mujoco model="point_maze">
  <compiler angle="radian" inertiafromgeom="true"/>
  <option timestep="{timestep}" iterations="4"/>
{BRAX_NUMERICS}
  <default>
    <joint armature="1" damping="0" limited="true" range="-100 100"/>
    <geom contype="0" conaffinity="0" condim="3" density="5" friction="1 0.5 0.5"/>
  </default>
  <worldbody>
    <light pos="0 0 30" dir="0 0 -1" diffuse="0.8 0.8 0.8" directional="true"/>
    <geom name="floor" type="plane" size="100 100 40" conaffinity="1" rgba="0.9 0.9 0.9 1"/>
    {walls}
    <body name="torso" pos="0 0 {BALL_HEIGHT}">
      <joint name="obj_slidex" type="slide" axis="1 0 0"/>
      <joint name="obj_slidey" type="slide" axis="0 1 0"/>
      <geom name="torso_geom" type="sphere" size="{BALL_RADIUS}" contype="1" conaffinity="1"
            rgba="0.2 0.4 0.9 1"/>
    </body>
    <body name="target" pos="0 0 0.01">
      <joint name="target_x" type="slide" axis="1 0 0" armature="0"/>
      <joint name="target_y" type="slide" axis="0 1 0" armature="0"/>
      <geom name="target" type="sphere" size="0.9" mass="1" rgba="0.9 0.2 0.2 0.4"/>
    </body>
  </worldbody>
  <actuator>
    <motor name="move_x" joint="obj_slidex" gear="{GEAR}"/>
    <motor name="move_y" joint="obj_slidey" gear="{GEAR}"/>
  </actuator>
</mujoco>
"""


class PointMaze(GoalPipelineEnv):
    """Ball to the centre of a free cell of a maze. ``merged_walls``: see the module docstring
    (``False``: the reference's box per wall cell)."""

    backends = ("spring", "generalized")
    #: The reference's healthy heights of the ball (``termination``: end the episode outside).
    healthy_z_range = (0.2, 1.0)

    def __init__(
        self,
        layout: maze_layouts.Layout,
        *,
        episode_length: int | None = None,
        backend: str | None = None,
        dense_reward: bool = False,
        termination: bool = True,
        merged_walls: bool = True,
    ):
        backend = backend or self.backends[0]
        physics = _PHYSICS[backend]
        sys = notices.load_mjcf(maze_mjcf(layout, physics.timestep, merged_walls))
        super().__init__(sys=sys, backend=backend, n_frames=physics.n_frames)
        self.layout = layout
        self.cell_size = CELL_SIZE
        self.state_dim = 4
        self.goal_indices = (0, 1)
        self.goal_threshold = 0.5
        self.success_easy_threshold = 2.0
        self.episode_length = 1000 if episode_length is None else episode_length
        self.dense_reward = dense_reward
        self.termination = termination
        self.start = maze_layouts.start_cell(layout)
        self._start_xy = jnp.asarray(self._cells_xy(np.array([self.start]))[0])
        goal_cells = [cell for cell in maze_layouts.free_cells(layout) if tuple(cell) != self.start]
        self._goal_xy = jnp.asarray(self._cells_xy(np.array(goal_cells)))

    def _cells_xy(self, cells: np.ndarray) -> np.ndarray:
        return maze_layouts.cell_to_xy(cells, self.layout, self.cell_size).astype(np.float32)

    def free_cell_centers(self) -> np.ndarray:
        """``[n_free, 2]`` world ``(x, y)`` of the free cells' centres (row-major order)."""
        return maze_layouts.free_cell_centers(self.layout, self.cell_size)

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        """``far`` and ``all`` cells, as for the locomotion mazes (the start is fixed)."""
        return maze_layouts.eval_goal_cells(self.layout, self.cell_size, self.start)

    def reset(self, rng: jax.Array) -> State:
        key_speed, key_goal = jax.random.split(rng)
        speed = START_SPEED_STD * jax.random.normal(key_speed, (2,), jnp.float32)
        goal = self._goal_xy[jax.random.randint(key_goal, (), 0, self._goal_xy.shape[0])]
        q = jnp.concatenate([self._start_xy, goal])
        qd = jnp.concatenate([speed, jnp.zeros(2, jnp.float32)])
        return self.make_state(self.pipeline_init(q, qd), goal, info={"goal": goal})

    def step(self, state: State, action: jax.Array) -> State:
        pipeline_state = self.pipeline_step(state.pipeline_state, action)
        return self.make_state(pipeline_state, state.info["goal"], info=state.info)

    def with_goal(self, state: State, goal: jax.Array) -> State:
        """Swap the goal and move the target marker there (the ball is untouched)."""
        goal = jnp.asarray(goal, jnp.float32)
        physics = state.pipeline_state
        q = physics.q.at[2:].set(goal)
        qd = physics.qd.at[2:].set(0.0)
        return super().with_goal(state.replace(pipeline_state=self.pipeline_init(q, qd)), goal)

    def terminated(self, pipeline_state) -> jax.Array:
        """1.0 when the ball's height (its link's ``x.pos``) leaves ``healthy_z_range``."""
        if not self.termination:
            return super().terminated(pipeline_state)
        low, high = self.healthy_z_range
        ball_z = pipeline_state.x.pos[0, 2]
        return ((ball_z < low) | (ball_z > high)).astype(jnp.float32)

    def state_obs(self, pipeline_state) -> jax.Array:
        """``[4]``: ``x, y, vx, vy`` of the ball."""
        return jnp.concatenate([pipeline_state.q[:2], pipeline_state.qd[:2]]).astype(jnp.float32)
