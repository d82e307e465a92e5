"""Ant mazes ``ant_{u,big,hardest}_maze``, Ant Soccer mazes ``ant_ball_{u,big,hardest}_maze``
(``ant_ball_maze`` is the U-maze variant).

The D4RL layouts of ``maze_layouts`` in the reference's frame: cell ``(row, col)`` is centred at
``(x, y) = (row, col) * 4``, so the start cell (1, 1) is at (4, 4); walls are 2 high (merged
boxes; ``merged_walls=False``: the reference's box per wall cell, see ``wall_geoms``). The ant
starts in the start cell with the reference's reset noise (its ``x, y`` exactly at the centre);
every reset draws the goal at the centre of a uniformly random goal cell. Ant mazes: every free
cell but the start is a goal cell. Ball mazes: the reference's ball and goal cells
(``SOCCER_CELLS``). Goal part: torso ``x, y`` (ant mazes) or ball ``x, y`` (ball mazes).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from goalax.envs import maze_layouts
from goalax.envs.ant import Ant, AntBall
from goalax.envs.ant_mjcf import MAZE, SOCCER, ball_body, box_geom

CELL_SIZE = 4.0
WALL_HALF_HEIGHT = 1.0

#: Ant Soccer cells ``(ball cells, goal cells)`` as ``(row, col)``, row-major: the reference's
#: for the U and big mazes. A reset draws goal cell ``i`` and starts the ball in ball cell
#: ``i mod len(ball cells)``: the reference draws both indices from one key, which pairs them so.
SOCCER_CELLS = {
    maze_layouts.U_MAZE: (((1, 3),), ((1, 2), (2, 3), (3, 1), (3, 2), (3, 3))),
    maze_layouts.BIG_MAZE: (
        ((3, 2), (3, 4)),
        ((1, 5), (1, 6), (2, 4), (2, 5), (2, 6), (3, 3), (4, 1), (4, 2), (4, 4), (4, 5))
        + ((4, 6), (5, 1), (5, 3), (5, 4), (5, 6), (6, 1), (6, 2), (6, 3), (6, 5), (6, 6)),
    ),
}


def cell_xy(cells) -> np.ndarray:
    """``[..., 2] (row, col) -> [..., 2] (x, y)``: cell centres in the reference's frame."""
    return np.asarray(cells, np.float64) * CELL_SIZE


def soccer_cells(layout: maze_layouts.Layout) -> tuple[np.ndarray, np.ndarray]:
    """``(ball cells [b, 2], goal cells [g, 2])`` of an Ant Soccer maze.

    The reference has no ball version of the hardest maze; there, as goalax's own choice, the
    ball starts in one of the cells two steps from the start and goals are the free cells three
    or more steps away.
    """
    if layout in SOCCER_CELLS:
        balls, goals = SOCCER_CELLS[layout]
        return np.asarray(balls), np.asarray(goals)
    cells = maze_layouts.free_cells(layout)
    steps = maze_layouts.cell_distances(layout, maze_layouts.start_cell(layout))
    steps = steps[cells[:, 0], cells[:, 1]]
    return cells[steps == 2], cells[steps >= 3]


def wall_geoms(layout: maze_layouts.Layout, merged: bool) -> str:
    """The layout's walls as boxes colliding with bit 1 both ways.

    ``merged``: rectangles of wall cells (``maze_layouts.wall_rectangles``), the same solid as
    the reference's box per wall cell with a third of the contact pairs: 4.6x the env steps per
    second on the hardest maze (64 envs, spring, measured 354 vs 76). Contacts at the seams
    between the reference's boxes differ, so a body sliding along a wall drifts by millimetres
    from the reference's path. ``merged=False``: one box per wall cell, as the reference.
    """
    if merged:
        rectangles = maze_layouts.wall_rectangles(layout)
        names = [f"wall{i}" for i in range(len(rectangles))]
    else:
        cells = np.argwhere(np.asarray(layout) == 1)
        rectangles = [(row, col, row, col) for row, col in cells]
        names = [f"block_{row}_{col}" for row, col in cells]
    geoms = []
    for name, (row0, col0, row1, col1) in zip(names, rectangles, strict=True):
        centre = cell_xy(((row0 + row1) / 2, (col0 + col1) / 2))
        half = (row1 - row0 + 1) * CELL_SIZE / 2, (col1 - col0 + 1) * CELL_SIZE / 2
        geoms.append(box_geom(name, (*centre, WALL_HALF_HEIGHT), (*half, WALL_HALF_HEIGHT), (1, 1)))
    return "".join(geoms)


class _MazeMixin:
    """Start cell, goal cells, walls and evaluation sets of a maze task."""

    cell_size = CELL_SIZE

    def _init_maze(
        self, layout: maze_layouts.Layout, goal_cells: np.ndarray, merged_walls: bool
    ) -> None:
        self.layout = layout
        self.merged_walls = merged_walls
        self.start = maze_layouts.start_cell(layout)
        self.goal_cells = np.asarray(goal_cells)
        self._start_xy = jnp.asarray(cell_xy(self.start), jnp.float32)
        self._goals = jnp.asarray(cell_xy(self.goal_cells), jnp.float32)

    def walls(self) -> str:
        return wall_geoms(self.layout, self.merged_walls)

    def goal_cell_index(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, (), 0, len(self.goal_cells))

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        """``all``: every goal cell; ``far``: those whose path from the start is at least half
        the longest (the hardest goals)."""
        steps = maze_layouts.cell_distances(self.layout, self.start)
        steps = steps[self.goal_cells[:, 0], self.goal_cells[:, 1]]
        far = self.goal_cells[steps >= max(1, int(np.ceil(steps.max() / 2)))]
        return {
            "far": cell_xy(far).astype(np.float32),
            "all": cell_xy(self.goal_cells).astype(np.float32),
        }


class AntMaze(_MazeMixin, Ant):
    """Ant torso ``x, y`` to the centre of a free cell of a maze. ``merged_walls``: see
    ``wall_geoms`` (``False``: the reference's box per wall cell)."""

    contacts = MAZE

    def __init__(self, layout: maze_layouts.Layout, *, merged_walls: bool = True, **kwargs):
        cells = maze_layouts.free_cells(layout)
        others = cells[(cells != maze_layouts.start_cell(layout)).any(axis=-1)]
        self._init_maze(layout, others, merged_walls)
        super().__init__(**kwargs)

    def mjcf(self) -> str:
        return self.ant_world(self.walls())

    def initial_state(self, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        key_ant, key_goal = jax.random.split(key)
        q, qd = self.ant_q(key_ant)
        return q.at[:2].set(self._start_xy), qd, self._goals[self.goal_cell_index(key_goal)]


class AntBallMaze(_MazeMixin, AntBall):
    """Ant Soccer in a maze: the ball's ``x, y`` to the centre of a goal cell."""

    contacts = SOCCER

    def __init__(self, layout: maze_layouts.Layout, *, merged_walls: bool = True, **kwargs):
        balls, goals = soccer_cells(layout)
        self._init_maze(layout, goals, merged_walls)
        self._balls = jnp.asarray(cell_xy(balls), jnp.float32)
        super().__init__(**kwargs)

    def mjcf(self) -> str:
        return self.ant_world(self.walls() + ball_body())

    def initial_state(self, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        key_ant, key_goal = jax.random.split(key)
        index = self.goal_cell_index(key_goal)
        q, qd = self.with_ball(key_ant, self._balls[index % self._balls.shape[0]])
        return q.at[:2].set(self._start_xy), qd, self._goals[index]
