"""Maze layouts (``1`` wall, ``0`` free) and the geometry shared by every maze family.

The three maps are D4RL's maze2d ``umaze``, ``medium`` and ``large`` maps (the ones the JaxGCRL
paper calls U, big and hardest), typed out as arrays so results stay comparable.

World frame: the reference's (JaxGCRL 0.2.8, every maze family): cell ``(row, col)`` has its
centre at ``x = row * cell_size``, ``y = col * cell_size``, so the printed first row is the line
``x = 0`` and the outer wall's corner cell sits on the origin. Positions, starts and goals are
then the reference's own numbers, with no offset between the two codes.
"""

from __future__ import annotations

from collections import deque

import numpy as np

Layout = tuple[tuple[int, ...], ...]

U_MAZE: Layout = (
    (1, 1, 1, 1, 1),
    (1, 0, 0, 0, 1),
    (1, 1, 1, 0, 1),
    (1, 0, 0, 0, 1),
    (1, 1, 1, 1, 1),
)

BIG_MAZE: Layout = (
    (1, 1, 1, 1, 1, 1, 1, 1),
    (1, 0, 0, 1, 1, 0, 0, 1),
    (1, 0, 0, 1, 0, 0, 0, 1),
    (1, 1, 0, 0, 0, 1, 1, 1),
    (1, 0, 0, 1, 0, 0, 0, 1),
    (1, 0, 1, 0, 0, 1, 0, 1),
    (1, 0, 0, 0, 1, 0, 0, 1),
    (1, 1, 1, 1, 1, 1, 1, 1),
)

HARDEST_MAZE: Layout = (
    (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
    (1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1),
    (1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1),
    (1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1),
    (1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1),
    (1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1),
    (1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1),
    (1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1),
    (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
)

LAYOUTS: dict[str, Layout] = {"u_maze": U_MAZE, "big_maze": BIG_MAZE, "hardest_maze": HARDEST_MAZE}


def free_cells(layout: Layout) -> np.ndarray:
    """``[n_free, 2]`` int: ``(row, col)`` of every free cell, row-major order."""
    return np.argwhere(np.asarray(layout) == 0)


def cell_to_xy(cells: np.ndarray, layout: Layout, cell_size: float) -> np.ndarray:
    """``[..., 2] (row, col) -> [..., 2] (x, y)`` cell centres in the world frame."""
    del layout  # the frame does not depend on the layout's size
    return np.asarray(cells, dtype=np.float64) * cell_size


def xy_to_cell(xy: np.ndarray, layout: Layout, cell_size: float) -> np.ndarray:
    """``[..., 2] (x, y) -> [..., 2] (row, col)`` of the cell containing each point."""
    del layout
    return np.floor(np.asarray(xy, dtype=np.float64) / cell_size + 0.5).astype(np.int64)


def free_cell_centers(layout: Layout, cell_size: float) -> np.ndarray:
    """``[n_free, 2]`` float32: world ``(x, y)`` of every free cell's centre, row-major order."""
    return cell_to_xy(free_cells(layout), layout, cell_size).astype(np.float32)


def cell_distances(layout: Layout, start: tuple[int, int]) -> np.ndarray:
    """``[n_rows, n_cols]`` int: shortest path length in cells from ``start`` (-1: unreachable).

    Moves are between 4-neighbouring free cells; used to pick far evaluation goals and to check
    that a layout is connected.
    """
    grid = np.asarray(layout)
    dist = np.full(grid.shape, -1, dtype=np.int64)
    dist[start] = 0
    queue = deque([start])
    while queue:
        row, col = queue.popleft()
        for d_row, d_col in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            nxt = (row + d_row, col + d_col)
            inside = 0 <= nxt[0] < grid.shape[0] and 0 <= nxt[1] < grid.shape[1]
            if inside and grid[nxt] == 0 and dist[nxt] < 0:
                dist[nxt] = dist[row, col] + 1
                queue.append(nxt)
    return dist


def wall_rectangles(layout: Layout) -> list[tuple[int, int, int, int]]:
    """Wall cells merged into few rectangles ``(row0, col0, row1, col1)``, bounds inclusive.

    Fewer, larger boxes mean fewer collision pairs. Wall cells with no free cell among their 8
    neighbours can never be touched: no rectangle starts at one, but rectangles may grow over them.
    Greedy: grow each rectangle right along its row, then down while the whole span is unclaimed
    wall.
    """
    grid = np.asarray(layout)
    n_rows, n_cols = grid.shape
    padded = np.pad(grid == 0, 1)
    near_free = np.zeros_like(padded[1:-1, 1:-1])
    for d_row in (0, 1, 2):
        for d_col in (0, 1, 2):
            near_free |= padded[d_row : d_row + n_rows, d_col : d_col + n_cols]
    unclaimed = grid == 1
    rectangles = []
    for row in range(n_rows):
        for col in range(n_cols):
            if not (unclaimed[row, col] and near_free[row, col]):
                continue
            col_end = col
            while col_end + 1 < n_cols and unclaimed[row, col_end + 1]:
                col_end += 1
            row_end = row
            while row_end + 1 < n_rows and unclaimed[row_end + 1, col : col_end + 1].all():
                row_end += 1
            unclaimed[row : row_end + 1, col : col_end + 1] = False
            rectangles.append((row, col, row_end, col_end))
    return rectangles


def start_cell(layout: Layout) -> tuple[int, int]:
    """The fixed start cell of every maze: the first free cell in row-major order (the reference's
    ``r`` cell, ``(1, 1)`` in all three layouts)."""
    row, col = free_cells(layout)[0]
    return int(row), int(col)


def eval_goal_cells(layout: Layout, cell_size: float, start: tuple[int, int]) -> dict:
    """Named evaluation goals ``{"far": [n, 2], "all": [m, 2]}`` (world xy of cell centres).

    ``all``: every free cell but ``start``; ``far``: the free cells whose shortest-path distance
    from ``start`` is at least half the largest one (the hardest goals, always non-empty).
    """
    dist = cell_distances(layout, start)
    cells = free_cells(layout)
    steps = dist[cells[:, 0], cells[:, 1]]
    far = cells[steps >= max(1, int(np.ceil(steps.max() / 2)))]
    others = cells[steps > 0]
    return {
        "far": cell_to_xy(far, layout, cell_size).astype(np.float32),
        "all": cell_to_xy(others, layout, cell_size).astype(np.float32),
    }


def wall_geoms_mjcf(
    layout: Layout,
    cell_size: float,
    half_height: float,
    rgba: str = "0.55 0.5 0.45 1",
    merge: bool = True,
) -> str:
    """MJCF ``<geom>`` boxes for the layout's walls, colliding with all: merged rectangles (the
    same solid with fewer collision pairs), or with ``merge=False`` one box per wall cell, as the
    reference builds them (contacts at the seams between its boxes differ from a merged box's)."""
    if merge:
        rectangles = wall_rectangles(layout)
    else:
        rectangles = [(row, col, row, col) for row, col in np.argwhere(np.asarray(layout) == 1)]
    geoms = []
    for i, (row0, col0, row1, col1) in enumerate(rectangles):
        low, high = cell_to_xy(np.array([[row0, col0], [row1, col1]]), layout, cell_size)
        centre, half = (low + high) / 2, (high - low + cell_size) / 2
        geoms.append(
            f'<geom name="wall{i}" type="box" pos="{centre[0]} {centre[1]} {half_height}" '
            f'size="{half[0]} {half[1]} {half_height}" contype="1" conaffinity="1" '
            f'rgba="{rgba}"/>'
        )
    return "\n".join(geoms)
