"""Task registry: ``make(name)``, ``names()``, ``spec(name)``.

``_REGISTRY`` maps a task name to how to build it. A task family adds one line per task here; the
rest of goalax only ever sees names.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import NamedTuple

from goalax.envs import cheetah, maze_layouts, pusher, reacher
from goalax.envs.ant import Ant, AntBall, AntPush
from goalax.envs.ant_maze import AntBallMaze, AntMaze
from goalax.envs.arm import Arm
from goalax.envs.base import GoalEnv
from goalax.envs.humanoid import Humanoid, HumanoidMaze
from goalax.envs.point import PointEnv
from goalax.envs.point_maze import PointMaze
from goalax.errors import closest

__all__ = [
    "EnvSpec",
    "UnknownEnvError",
    "default_env_steps",
    "make",
    "mjx_base_names",
    "names",
    "spec",
]

#: Default training budget (env steps) of a task without its own: about 10-15 minutes of CRL on
#: two CPU cores for the physics tasks; the paper's runs use 10M at 1024 envs (see docs/parity.md).
DEFAULT_ENV_STEPS = 1_000_000


class UnknownEnvError(ValueError):
    """Raised by ``make``/``spec`` for a name that is not registered."""


class _Entry(NamedTuple):
    #: Builds the env: ``constructor(episode_length=, backend=, dense_reward=) -> GoalEnv``.
    constructor: Callable[..., GoalEnv]
    #: One line for ``goalax envs``.
    description: str
    #: Backends the task supports, default first.
    backends: tuple[str, ...]
    #: The task ends when its body is unhealthy (its constructor takes ``termination=``).
    terminates: bool = False
    #: Default ``--total-env-steps``: where CRL's default run has learned the task, when measured.
    env_steps: int = DEFAULT_ENV_STEPS
    #: The constructor takes ``impl=`` (the task has a backend on goalax's own MJX base).
    mjx_base: bool = False
    #: Constructor options that build the reference's model where goalax deviates on purpose
    #: (``make(..., reference_model=True)``; docs/parity.md gives each reason).
    reference_options: tuple[tuple[str, bool], ...] = ()


#: The reference's ant: only the feet touch the floor (goalax: the lower legs too).
_REFERENCE_ANT = (("lower_leg_contacts", False),)
#: The reference's maze walls: one box per wall cell (goalax merges runs of cells).
_REFERENCE_WALLS = (("merged_walls", False),)


#: Measured in docs/results.md ("Default budgets"): CRL's success has levelled off by then.
POINT_ENV_STEPS = 100_000
REACHER_ENV_STEPS = 600_000


def on_backend(brax_cls: type, mjx_cls: type, backends: tuple[str, ...]) -> Callable[..., GoalEnv]:
    """The constructor of a task with a class per physics: ``mjx_cls`` (goalax's MJX base) for
    backend ``mjx``, ``brax_cls`` (brax's pipelines) for the others; ``backends[0]`` is the
    default. ``impl`` (the MJX implementation) applies to ``mjx`` only."""

    def make(
        *,
        episode_length: int | None = None,
        backend: str | None = None,
        dense_reward: bool = False,
        impl: str = "jax",
    ) -> GoalEnv:
        backend = backend or backends[0]
        if backend == "mjx":
            return mjx_cls(episode_length=episode_length, dense_reward=dense_reward, impl=impl)
        if impl != "jax":
            raise ValueError(f"--impl {impl} applies to --backend mjx only")
        return brax_cls(episode_length=episode_length, backend=backend, dense_reward=dense_reward)

    return make


def _maze(layout: maze_layouts.Layout, description: str) -> _Entry:
    return _Entry(
        functools.partial(PointMaze, layout),
        description,
        PointMaze.backends,
        True,
        reference_options=_REFERENCE_WALLS,
    )


_REGISTRY: dict[str, _Entry] = {
    "point": _Entry(
        PointEnv,
        "pure-JAX 2D point mass to a point in [-1, 1]^2 (fast tests)",
        PointEnv.backends,
        env_steps=POINT_ENV_STEPS,
    ),
    "reacher": _Entry(
        on_backend(reacher.Reacher, reacher.MjxReacher, reacher.BACKENDS),
        "2-link planar arm: fingertip to a point in a disc of radius 0.2",
        reacher.BACKENDS,
        env_steps=REACHER_ENV_STEPS,
        mjx_base=True,
    ),
    "simple_u_maze": _maze(maze_layouts.U_MAZE, "ball in a 5x5 U-maze (cell 4.0)"),
    "simple_big_maze": _maze(maze_layouts.BIG_MAZE, "ball in an 8x8 maze (cell 4.0)"),
    "simple_hardest_maze": _maze(maze_layouts.HARDEST_MAZE, "ball in a 9x12 maze (cell 4.0)"),
}

_MAZE_SIZES = {"u_maze": "5x5 U-maze", "big_maze": "8x8 maze", "hardest_maze": "9x12 maze"}
_REGISTRY.update(
    {
        "ant": _Entry(
            Ant,
            "quadruped ant: torso xy to a point 10 away",
            Ant.backends,
            True,
            reference_options=_REFERENCE_ANT,
        ),
        "ant_random_start": _Entry(
            functools.partial(Ant, random_start=True),
            "ant from a random start 10 away from a goal 10 from the origin",
            Ant.backends,
            True,
            reference_options=_REFERENCE_ANT,
        ),
        "ant_ball": _Entry(
            AntBall,
            "Ant Soccer: ant pushes a ball to a point 5 away",
            AntBall.backends,
            True,
            reference_options=_REFERENCE_ANT,
        ),
        "ant_push": _Entry(
            AntPush,
            "heavy ant pushes a block out of its way to reach a point",
            AntPush.backends,
            True,
            reference_options=_REFERENCE_ANT,
        ),
        "ant_ball_maze": _Entry(
            functools.partial(AntBallMaze, maze_layouts.U_MAZE),
            "Ant Soccer in the 5x5 U-maze (cell 4.0; = ant_ball_u_maze)",
            AntBallMaze.backends,
            True,
            reference_options=_REFERENCE_ANT + _REFERENCE_WALLS,
        ),
    }
)
for _size, _what in _MAZE_SIZES.items():
    _layout = maze_layouts.LAYOUTS[_size]
    _REGISTRY[f"ant_{_size}"] = _Entry(
        functools.partial(AntMaze, _layout),
        f"ant in a {_what} (cell 4.0)",
        AntMaze.backends,
        True,
        reference_options=_REFERENCE_ANT + _REFERENCE_WALLS,
    )
    _REGISTRY[f"ant_ball_{_size}"] = _Entry(
        functools.partial(AntBallMaze, _layout),
        f"Ant Soccer in a {_what} (cell 4.0)",
        AntBallMaze.backends,
        True,
        reference_options=_REFERENCE_ANT + _REFERENCE_WALLS,
    )

_REGISTRY["humanoid"] = _Entry(
    Humanoid, "humanoid: torso to a point 1-5 away at height 1.25", Humanoid.backends, True
)
for _size, _what in _MAZE_SIZES.items():
    _REGISTRY[f"humanoid_{_size}"] = _Entry(
        functools.partial(HumanoidMaze, maze_layouts.LAYOUTS[_size]),
        f"humanoid in a {_what} (cell 2.0)",
        Humanoid.backends,
        True,
        reference_options=_REFERENCE_WALLS,
    )
_REGISTRY["cheetah"] = _Entry(
    on_backend(cheetah.Cheetah, cheetah.MjxCheetah, cheetah.BACKENDS),
    "half cheetah: torso x to 5",
    cheetah.BACKENDS,
    mjx_base=True,
)

for _name, _variant, _what in (
    ("pusher_easy", "easy", "7-joint arm pushes a puck to a goal in a 0.3 x 0.4 region beside it"),
    ("pusher_hard", "hard", "7-joint arm pushes a puck to a goal anywhere in a 1.0 square"),
    ("pusher_reacher", "reacher", "7-joint pusher arm: wrist to a point above the table"),
    ("pusher2", "two", "7-joint arm pushes two pucks to two goal regions"),
):
    _REGISTRY[_name] = _Entry(
        on_backend(
            functools.partial(pusher.Pusher, variant=_variant),
            functools.partial(pusher.MjxPusher, variant=_variant),
            pusher.BACKENDS,
        ),
        _what,
        pusher.BACKENDS,
        mjx_base=True,
    )

for _variant, _what in (
    ("reach", "end effector to a point in a 0.4 m cube in front of it (the reference's)"),
    ("grasp", "fingertips either side of the cube, 7.5 cm apart (the reference's)"),
    ("push_easy", "push the cube from a small blue region to the red one beside it"),
    ("push_hard", "push the cube from a 0.5 m blue region to anywhere on the red one"),
    ("binpick_easy", "move the cube from the blue bin to the centre of the red bin"),
    ("binpick_hard", "move the cube from the blue bin to anywhere in the red bin"),
):
    _REGISTRY[f"arm_{_variant}"] = _Entry(
        functools.partial(Arm, variant=_variant),
        f"Franka Panda arm: {_what}",
        Arm.backends,
    )


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """What ``goalax envs`` lists about a task, with its default settings."""

    name: str
    description: str
    state_dim: int
    goal_dim: int
    action_size: int
    goal_threshold: float
    episode_length: int
    backend: str
    #: When an episode ends early by default, e.g. ``"torso z outside (0.2, 1.0)"``, or ``"-"``.
    termination: str = "-"
    #: Default training budget (``--total-env-steps``) in env steps.
    env_steps: int = DEFAULT_ENV_STEPS


def names() -> list[str]:
    """All registered task names, sorted."""
    return sorted(_REGISTRY)


def mjx_base_names() -> list[str]:
    """Tasks with a backend on goalax's own MJX base (``backend="mjx"``), sorted."""
    return sorted(name for name, entry in _REGISTRY.items() if entry.mjx_base)


def _entry(name: str) -> _Entry:
    if name in _REGISTRY:
        return _REGISTRY[name]
    raise UnknownEnvError(
        f"unknown env {name!r}; closest: {closest(name, names())} (run 'goalax envs' for the full "
        "list)"
    )


def make(
    name: str,
    *,
    episode_length: int | None = None,
    backend: str | None = None,
    impl: str = "jax",
    dense_reward: bool = False,
    termination: bool = True,
    reference_model: bool = False,
    **task_options,
) -> GoalEnv:
    """Build task ``name``; ``None`` keeps the task's default episode length / backend.

    ``impl``: the MJX implementation of a task on goalax's MJX base (``mjx_base.IMPLS``); other
    physics refuse anything but the default ``jax``.
    ``termination=False`` keeps the ant and humanoid families running after the body becomes
    unhealthy (the torso leaves its height range); tasks that never terminate ignore it.
    ``reference_model=True`` builds the reference's (jaxgcrl 0.2.8) model where goalax's deviates
    on purpose: the ant family's lower legs pass through the floor (``lower_leg_contacts=False``),
    maze walls are one box per cell (``merged_walls=False``); a task without a deviation ignores
    it. ``task_options`` go to the task's constructor and win over those.
    """
    entry = _entry(name)
    if backend is not None and backend not in entry.backends:
        raise ValueError(
            f"env {name!r} does not support backend {backend!r}; "
            f"use one of: {', '.join(entry.backends)}"
        )
    if episode_length is not None and episode_length < 1:
        raise ValueError(f"episode_length must be at least 1, got {episode_length}")
    options = {"termination": termination} if entry.terminates else {}
    if impl != "jax":
        if not entry.mjx_base:
            raise ValueError(
                f"--impl {impl}: env {name!r} has no backend on goalax's MJX base yet "
                "(only the default --impl jax)"
            )
        options["impl"] = impl
    if reference_model:
        options.update(entry.reference_options)
    return entry.constructor(
        episode_length=episode_length,
        backend=backend,
        dense_reward=dense_reward,
        **{**options, **task_options},
    )


@functools.cache
def spec(name: str) -> EnvSpec:
    """The task's dimensions and defaults (builds the env once per name, then cached)."""
    entry = _entry(name)
    env = make(name)
    return EnvSpec(
        name=name,
        description=entry.description,
        state_dim=env.state_dim,
        goal_dim=env.goal_dim,
        action_size=env.action_size,
        goal_threshold=env.goal_threshold,
        episode_length=env.episode_length,
        backend=env.backend,
        termination=termination_rule(env),
        env_steps=entry.env_steps,
    )


def default_env_steps(name: str) -> int:
    """Task ``name``'s default training budget, without building it."""
    return _entry(name).env_steps


def termination_rule(env: GoalEnv) -> str:
    """How an episode of ``env`` ends early, in words (``"-"``: only at the time limit)."""
    z_range = getattr(env, "healthy_z_range", None)
    if z_range is None or not getattr(env, "termination", False):
        return "-"
    return f"torso z outside ({z_range[0]:.1f}, {z_range[1]:.1f})"
