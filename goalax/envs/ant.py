"""Ant tasks: ``ant``, ``ant_random_start``, ``ant_ball`` (Ant Soccer) and ``ant_push``.

Each is the reference's task (jaxgcrl 0.2.8) on goalax's own MJCF (``ant_mjcf``): its model, its
reset distribution, its state layout and its thresholds. The mazes built on these classes live in
``ant_maze.py``.

state_obs ``[29]`` (plain ant): ``q [15]`` (torso ``x, y, z``, torso quaternion, 8 leg angles)
then ``qd [14]``; the goal part is the torso ``x, y`` (entries 0, 1). Ant Soccer and ``ant_push``
append the ball's / block's ``x, y`` (31). Every ant task terminates, as the reference's do, when
the torso height leaves ``(0.2, 1.0)`` (an ant on its back or thrown up); ``termination=False``
turns that off (see ``GoalPipelineEnv``).

One deliberate deviation, on by default: the lower legs touch the floor
(``lower_leg_contacts=True``); ``lower_leg_contacts=False`` gives the reference's contact set.
"""

from __future__ import annotations

import brax
import jax
import jax.numpy as jnp
import numpy as np

from goalax.envs import notices
from goalax.envs.ant_mjcf import (
    PLAIN,
    PUSH,
    SOCCER,
    Contacts,
    ant_mjcf,
    ball_body,
    box_geom,
)
from goalax.envs.base import State
from goalax.envs.brax_base import GoalPipelineEnv, mjx_fast_solver

#: Leg angles of the ant's rest pose (radians: hips 0, ankles +-1).
ANT_LEGS_Q0 = (0.0, 1.0, 0.0, -1.0, 0.0, -1.0, 0.0, 1.0)
#: Half-width of the uniform noise on every entry of the ant's ``q`` at reset (torso position
#: and quaternion included; the quaternion is not renormalised, as in the reference) and the
#: standard deviation of the Gaussian noise on ``qd``.
RESET_NOISE = 0.1
#: The reference's healthy torso heights of the ant family (JaxGCRL's ``healthy_z_range``).
ANT_HEALTHY_Z = (0.2, 1.0)


def ant_system(xml: str, backend: str, mjx_solver: tuple[int, int]) -> tuple[brax.System, int]:
    """``(system, n_frames)`` for ``backend``: env dt 0.05 s (10 x 5 ms on ``spring`` and
    ``positional``, 5 x 10 ms elsewhere); ``mjx_solver`` is MJX's Newton ``(iterations,
    ls_iterations)``; ``positional`` uses gear 200, as the reference does."""
    sys = notices.load_mjcf(xml)
    if backend in ("spring", "positional"):
        sys = sys.tree_replace({"opt.timestep": 0.005})
        n_frames = 10
    else:
        n_frames = 5
    if backend == "mjx":
        sys = mjx_fast_solver(sys).tree_replace(
            {"opt.iterations": mjx_solver[0], "opt.ls_iterations": mjx_solver[1]}
        )
    if backend == "positional":
        sys = sys.replace(
            actuator=sys.actuator.replace(gear=200 * jnp.ones_like(sys.actuator.gear))
        )
    return sys, n_frames


def unit(angle: jax.Array) -> jax.Array:
    """``[] -> [2]``: the unit vector at ``angle``."""
    return jnp.stack([jnp.cos(angle), jnp.sin(angle)])


def uniform_angle(key: jax.Array) -> jax.Array:
    return jax.random.uniform(key, (), jnp.float32, 0.0, 2 * jnp.pi)


class Ant(GoalPipelineEnv):
    """Torso ``x, y`` to a goal on the circle of radius 10 around the origin.

    ``random_start``: the start is on the circle of radius 10 around the goal (up to 20 from
    the origin), as the reference's ``ant_random_start``. ``lower_leg_contacts``: the lower legs
    touch the floor (goalax's default; ``False``: only the feet, as in the reference, whose
    kneeling ant's knees sink through the floor).
    """

    backends = ("spring", "mjx", "positional")
    goal_radius = 10.0
    healthy_z_range = ANT_HEALTHY_Z
    #: The reference's contact bits of this task's model.
    contacts: Contacts = PLAIN
    #: Torso height of the rest pose before noise.
    torso_z0 = 0.55
    #: MJX's Newton ``(iterations, ls_iterations)``.
    mjx_solver = (1, 4)

    def __init__(
        self,
        *,
        episode_length: int | None = None,
        backend: str | None = None,
        dense_reward: bool = False,
        termination: bool = True,
        random_start: bool = False,
        lower_leg_contacts: bool = True,
    ):
        self.lower_leg_contacts = lower_leg_contacts
        backend = backend or self.backends[0]
        sys, n_frames = ant_system(self.mjcf(), backend, self.mjx_solver)
        super().__init__(sys=sys, backend=backend, n_frames=n_frames)
        self.termination = termination
        self.state_dim = 29
        self.goal_indices = (0, 1)
        self.goal_threshold = 0.5
        self.success_easy_threshold = 2.0
        self.episode_length = 1000 if episode_length is None else episode_length
        self.dense_reward = dense_reward
        self.random_start = random_start

    def ant_world(self, world: str = "", **physics) -> str:
        """The MJCF of this task's contacts and leg contacts with ``world`` appended."""
        return ant_mjcf(
            self.contacts, lower_leg_contacts=self.lower_leg_contacts, world=world, **physics
        )

    def mjcf(self) -> str:
        return self.ant_world()

    def ant_q(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(q [15], qd [14])``: the rest pose at the origin with the reference's noise on
        every entry (``RESET_NOISE``)."""
        key_q, key_qd = jax.random.split(key)
        q0 = jnp.array((0.0, 0.0, self.torso_z0, 1.0, 0.0, 0.0, 0.0) + ANT_LEGS_Q0, jnp.float32)
        q = q0 + jax.random.uniform(key_q, (15,), jnp.float32, -RESET_NOISE, RESET_NOISE)
        qd = RESET_NOISE * jax.random.normal(key_qd, (14,), jnp.float32)
        return q, qd

    def reset(self, rng: jax.Array) -> State:
        q, qd, goal = self.initial_state(rng)
        return self.make_state(self.pipeline_init(q, qd), goal, {"goal": goal})

    def initial_state(self, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """A reset's draw ``(q, qd, goal)``, before any physics (cheap to sample in bulk)."""
        key_ant, key_goal, key_start = jax.random.split(key, 3)
        q, qd = self.ant_q(key_ant)
        goal = self.goal_radius * unit(uniform_angle(key_goal))
        if self.random_start:
            q = q.at[:2].set(goal + self.goal_radius * unit(uniform_angle(key_start)))
        return q, qd, goal

    def state_obs(self, pipeline_state) -> jax.Array:
        return jnp.concatenate([pipeline_state.q[:15], pipeline_state.qd[:14]])

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        """Five goals on the goal circle around the origin."""
        angles = np.deg2rad([0.0, 72.0, 144.0, 216.0, 288.0])
        tasks = self.goal_radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
        return {"tasks": tasks.astype(np.float32)}


class AntBall(Ant):
    """Ant Soccer: push the ball's ``x, y`` to a goal on the circle of radius 5.

    The ball (radius 0.5, 0.576 kg) slides on x and y. It starts at a fifth of the way to the
    goal plus an offset whose x is the cosine of an angle of its own and whose y is the sine of
    the goal's angle, as the reference draws it: 2.8-5.0 from the goal, 0-2.4 from the ant.
    """

    goal_radius = 5.0
    contacts = SOCCER

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.state_dim = 31
        self.goal_indices = (29, 30)

    def mjcf(self) -> str:
        return self.ant_world(ball_body())

    def initial_state(self, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        key_ant, key_goal, key_ball = jax.random.split(key, 3)
        goal_angle = uniform_angle(key_goal)
        goal = self.goal_radius * unit(goal_angle)
        offset = jnp.stack([jnp.cos(uniform_angle(key_ball)), jnp.sin(goal_angle)])
        q, qd = self.with_ball(key_ant, 0.2 * goal + offset)
        return q, qd, goal

    def with_ball(self, key: jax.Array, ball_xy: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(q [17], qd [16])``: the ant's noisy rest pose, the ball still at ``ball_xy``."""
        ant_q, ant_qd = self.ant_q(key)
        return jnp.concatenate([ant_q, ball_xy]), jnp.concatenate([ant_qd, jnp.zeros(2)])

    def state_obs(self, pipeline_state) -> jax.Array:
        q, qd = pipeline_state.q, pipeline_state.qd
        return jnp.concatenate([q[:15], qd[:14], q[15:17]])


#: ``ant_push``'s fixed walls, 4 high: ``(x, y)`` centre and ``(x, y)`` half-size. With the
#: block in the middle they leave a passage from the start (0, 0) to the two goal regions that
#: only pushing the block clears.
PUSH_WALLS = (
    ((-4.0, 20.0), (8.0, 8.0)),
    ((8.0, 24.0), (4.0, 4.0)),
    ((20.0, 20.0), (8.0, 8.0)),
    ((-8.0, 4.0), (4.0, 8.0)),
    ((24.0, 8.0), (4.0, 4.0)),
    ((20.0, -4.0), (8.0, 8.0)),
    ((0.0, -8.0), (12.0, 4.0)),
)
PUSH_WALL_HALF_HEIGHT = 2.0
#: The block: a 7.2 x 7.2 x 3.6 box of 0.2 g (next to nothing against the ant's 7.3 kg) centred
#: at (8, 8, 2), sliding on x, y and z.
PUSH_BLOCK_XYZ = (8.0, 8.0, 2.0)
PUSH_BLOCK_HALF = (3.6, 3.6, 1.8)
PUSH_BLOCK_MASS = 0.0002
#: Goals: (16, 8) or (8, 16) plus uniform noise in [0, 2)^2.
PUSH_GOAL = (16.0, 8.0)
PUSH_GOAL_NOISE = 2.0


def push_world() -> str:
    """Walls ``block_A``-``block_G`` and the ``movable`` block, named as the reference's."""
    walls = "".join(
        box_geom(f"block_{c}", (*xy, PUSH_WALL_HALF_HEIGHT), (*half, PUSH_WALL_HALF_HEIGHT), (0, 1))
        for c, (xy, half) in zip("ABCDEFG", PUSH_WALLS, strict=True)
    )
    slides = "".join(
        f'<joint name="movable_{axis}_2_2" type="slide" pos="0 0 0" axis="{vector}" '
        'armature="0" damping="0" limited="false" margin="0.01"/>'
        for axis, vector in (("x", "1 0 0"), ("y", "0 1 0"), ("z", "0 0 1"))
    )
    x, y, z = PUSH_BLOCK_XYZ
    hx, hy, hz = PUSH_BLOCK_HALF
    block = (
        f'<body name="movable" pos="{x:g} {y:g} {z:g}">{slides}'
        f'<geom name="block_M" type="box" size="{hx:g} {hy:g} {hz:g}" '
        f'mass="{PUSH_BLOCK_MASS:g}" contype="1" conaffinity="1" rgba="0.9 0.1 0.1 1"/></body>'
    )
    return walls + block


class AntPush(Ant):
    """Push the block out of the way to reach a goal near (16, 8) or (8, 16).

    The reference's ``ant_push``: its ant is 8x heavier (geom density 40, stiffer contacts) and
    starts 0.75 high, its torso touches the floor, and it runs on MJX only (Newton, 4 iterations).
    State ``[29 + 2]``: the ant, then the block's ``x, y``.
    """

    backends = ("mjx",)
    contacts = PUSH
    torso_z0 = 0.75
    mjx_solver = (4, 8)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.state_dim = 31

    def mjcf(self) -> str:
        return self.ant_world(push_world(), density=40.0, solimp=".995 .995 .01")

    def initial_state(self, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        key_ant, key_order, key_noise, key_block = jax.random.split(key, 4)
        goal = jax.random.permutation(key_order, jnp.asarray(PUSH_GOAL)) + jax.random.uniform(
            key_noise, (2,), jnp.float32, 0.0, PUSH_GOAL_NOISE
        )
        ant_q, ant_qd = self.ant_q(key_ant)
        key_block_q, key_block_qd = jax.random.split(key_block)
        # The reference's noise reaches the block too: its slide offsets, and its x velocity
        # (its reset zeroes the last four velocities, which leaves that one).
        block_q = jax.random.uniform(key_block_q, (3,), jnp.float32, -RESET_NOISE, RESET_NOISE)
        block_vx = RESET_NOISE * jax.random.normal(key_block_qd, (1,), jnp.float32)
        q = jnp.concatenate([ant_q, block_q])
        qd = jnp.concatenate([ant_qd, block_vx, jnp.zeros(2)])
        return q, qd, goal

    def state_obs(self, pipeline_state) -> jax.Array:
        q, qd = pipeline_state.q, pipeline_state.qd
        block_xy = jnp.asarray(PUSH_BLOCK_XYZ[:2]) + q[15:17]
        return jnp.concatenate([q[:15], qd[:14], block_xy])

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        """Corners and centres of the two goal regions."""
        tasks = [(16.0, 8.0), (17.0, 9.0), (18.0, 10.0), (8.0, 16.0), (9.0, 17.0)]
        return {"tasks": np.asarray(tasks, np.float32)}
