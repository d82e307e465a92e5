"""Ant mazes ``ant_{u,big,hardest}_maze``, Ant Soccer mazes ``ant_ball_{u,big,hardest}_maze``
(``ant_ball_maze`` is the U-maze variant).

The D4RL layouts of ``maze_layouts`` with cell size 4, walls 2 high. The ant always starts at the
centre of the layout's start cell (``maze_layouts.start_cell``); every reset draws the goal in a
uniformly random other free cell, ± 1 around its centre. In the ball mazes the ball starts between
the start cell and a free neighbour, and the goal cell is drawn among the cells other than the
start cell. Goal part: torso ``x, y`` (ant mazes) or ball ``x, y`` (ball mazes).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from goalax.envs import maze_layouts
from goalax.envs.ant import Ant, AntBall, State, ant_mjcf, ball_body

CELL_SIZE = 4.0
WALL_HALF_HEIGHT = 1.0
GOAL_NOISE = 1.0


class _MazeMixin:
    """Start cell, goal cells and evaluation sets of a maze task (``self.layout`` set first)."""

    cell_size = CELL_SIZE

    def _init_maze(self, layout: maze_layouts.Layout) -> None:
        self.layout = layout
        self.start = maze_layouts.start_cell(layout)
        start_xy = maze_layouts.cell_to_xy(np.array(self.start), layout, self.cell_size)
        cells = maze_layouts.free_cells(layout)
        goal_cells = cells[(cells != np.array(self.start)).any(axis=-1)]
        self._start_xy = jnp.asarray(start_xy, jnp.float32)
        self._goal_centres = jnp.asarray(
            maze_layouts.cell_to_xy(goal_cells, layout, self.cell_size), jnp.float32
        )
        distances = maze_layouts.cell_distances(layout, self.start)
        neighbour = next(c for c in cells if distances[tuple(c)] == 1)
        neighbour_xy = maze_layouts.cell_to_xy(neighbour, layout, self.cell_size)
        self._ball_xy = jnp.asarray(start_xy + 0.45 * (neighbour_xy - start_xy), jnp.float32)

    def walls(self) -> str:
        return maze_layouts.wall_geoms_mjcf(self.layout, self.cell_size, WALL_HALF_HEIGHT)

    def sample_maze_goal(self, key: jax.Array) -> jax.Array:
        key_cell, key_noise = jax.random.split(key)
        cell = jax.random.randint(key_cell, (), 0, self._goal_centres.shape[0])
        noise = jax.random.uniform(key_noise, (2,), jnp.float32, -GOAL_NOISE, GOAL_NOISE)
        return self._goal_centres[cell] + noise

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        return maze_layouts.eval_goal_cells(self.layout, self.cell_size, self.start)


class AntMaze(_MazeMixin, Ant):
    """Ant torso ``x, y`` to a free cell of a maze; never terminates."""

    backends = ("spring", "mjx", "positional")

    def __init__(self, layout: maze_layouts.Layout, **kwargs):
        self._init_maze(layout)
        super().__init__(**kwargs)

    def mjcf(self) -> str:
        return ant_mjcf(self.walls(), torso_collides=True)

    def reset(self, rng: jax.Array) -> State:
        key_ant, key_goal = jax.random.split(rng)
        goal = self.sample_maze_goal(key_goal)
        q, qd = self.ant_q(key_ant, self._start_xy)
        return self.make_state(self.pipeline_init(q, qd), goal, {"goal": goal})


class AntBallMaze(_MazeMixin, AntBall):
    """Ant Soccer in a maze: the ball's ``x, y`` to a free cell; never terminates."""

    backends = ("spring", "mjx", "positional")

    def __init__(self, layout: maze_layouts.Layout, **kwargs):
        self._init_maze(layout)
        super().__init__(**kwargs)

    def mjcf(self) -> str:
        return ant_mjcf(self.walls() + ball_body(), torso_collides=True)

    def reset(self, rng: jax.Array) -> State:
        key_ant, key_goal = jax.random.split(rng)
        goal = self.sample_maze_goal(key_goal)
        return self.reset_with(key_ant, self._start_xy, self._ball_xy, goal)
