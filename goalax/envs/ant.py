"""Ant tasks: ``ant``, ``ant_random_start``, ``ant_ball`` (Ant Soccer) and ``ant_push``.

Physics come from brax's bundled ``ant.xml`` (loaded as a string; extra bodies such as a ball, a
block or maze walls are appended to its world body). The mazes built on this class live in
``ant_maze.py``.

state_obs ``[29]`` (plain ant): ``q [15]`` (torso ``x, y, z``, torso quaternion, 8 leg angles)
then ``qd [14]``; the goal part is the torso ``x, y`` (entries 0, 1). Ant Soccer appends the
ball's ``x, y`` (goal part) and ``vx, vy``. Every ant task terminates, as the reference's do, when
the torso height leaves ``(0.2, 1.0)`` (an ant on its back or thrown up); ``termination=False``
turns that off (see ``GoalPipelineEnv``).

"""

from __future__ import annotations

import brax
import jax
import jax.numpy as jnp
import numpy as np

from goalax.envs import notices
from goalax.envs.base import GoalPipelineEnv, State, brax_asset, mjx_fast_solver

#: Leg angles of the ant's rest pose (from ``ant.xml``'s ``init_qpos``).
ANT_LEGS_Q0 = (0.0, 1.0, 0.0, -1.0, 0.0, -1.0, 0.0, 1.0)
ANT_TORSO_Z0 = 0.55
BALL_RADIUS = 0.35


def ant_mjcf(extra_bodies: str = "", torso_collides: bool = False) -> str:
    """``ant.xml`` with ``extra_bodies`` appended to the world body.

    ``torso_collides`` lets the torso touch balls, blocks and walls (in ``ant.xml`` only the feet
    collide, with the floor). The ``init_qpos`` numeric is dropped because extra free bodies change
    the length of ``q``; resets build ``q`` themselves.
    """
    xml = brax_asset("ant.xml")
    start = xml.index('<numeric data="0.0 0.0 0.55')
    xml = xml[:start] + xml[xml.index("\n", start) + 1 :]
    xml = _lower_legs_touch_floor(xml)
    if torso_collides:
        old = '<geom name="torso_geom" pos="0 0 0" size="0.25" type="sphere"/>'
        assert old in xml
        xml = xml.replace(old, old.replace("<geom ", '<geom contype="1" conaffinity="1" '))
    return xml.replace("</worldbody>", extra_bodies + "\n  </worldbody>")


#: Contact bit of the lower legs: they collide with the floor (``conaffinity`` 1 | 2) only.
LOWER_LEG_CONTYPE = 2
LOWER_LEGS = ("left_ankle_geom", "right_ankle_geom", "third_ankle_geom", "fourth_ankle_geom")


def _lower_legs_touch_floor(xml: str) -> str:
    """Give the four lower-leg capsules floor contacts.

    In brax's ``ant.xml`` only the foot spheres collide, so a knee (the lower leg's top end)
    sinks through the floor whenever the ant kneels: measured 18 cm below it over 32 envs x 1000
    random-action steps even with termination on. The capsules get contact bit 2 and the floor
    accepts bits 1 and 2, so they touch the floor and nothing else (not the torso, the ball, a
    block or walls, whose affinity is bit 1 only).
    """
    floor = '<geom conaffinity="1" condim="3" material="MatPlane" name="floor"'
    assert floor in xml
    xml = xml.replace(floor, floor.replace('conaffinity="1"', 'conaffinity="3"'))
    for name in LOWER_LEGS:
        geom = f'name="{name}"'
        assert geom in xml
        xml = xml.replace(geom, f'{geom} contype="{LOWER_LEG_CONTYPE}"')
    return xml


def ant_system(xml: str, backend: str) -> tuple[brax.System, int]:
    """``(system, n_frames)`` for ``backend`` (env dt 0.05 s on every backend)."""
    sys = notices.load_mjcf(xml)
    if backend in ("spring", "positional"):
        sys = sys.tree_replace({"opt.timestep": 0.005})
        n_frames = 10
    else:
        n_frames = 5
    if backend == "mjx":
        sys = mjx_fast_solver(sys)
    if backend == "positional":
        sys = sys.replace(
            actuator=sys.actuator.replace(gear=200 * jnp.ones_like(sys.actuator.gear))
        )
    return sys, n_frames


def ball_body(name: str = "ball", pos: tuple[float, float] = (2.0, 0.0)) -> str:
    return (
        f'<body name="{name}" pos="{pos[0]} {pos[1]} {BALL_RADIUS}">'
        f'<joint name="{name}_free" type="free" limited="false" armature="0" damping="0"/>'
        f'<geom name="{name}_geom" type="sphere" size="{BALL_RADIUS}" mass="1" contype="1" '
        'conaffinity="1" rgba="0.95 0.85 0.2 1"/></body>'
    )


#: The reference's healthy torso heights of the ant family (JaxGCRL's ``healthy_z_range``).
ANT_HEALTHY_Z = (0.2, 1.0)


class Ant(GoalPipelineEnv):
    """Torso ``x, y`` to a goal on the circle of radius 10 around the start."""

    backends = ("spring", "mjx", "positional")
    goal_radius = 10.0
    healthy_z_range = ANT_HEALTHY_Z

    def __init__(
        self,
        *,
        episode_length: int | None = None,
        backend: str | None = None,
        dense_reward: bool = False,
        termination: bool = True,
        random_start: bool = False,
        start_range: float = 5.0,
    ):
        backend = backend or self.backends[0]
        sys, n_frames = ant_system(self.mjcf(), backend)
        super().__init__(sys=sys, backend=backend, n_frames=n_frames)
        self.termination = termination
        self.state_dim = 29
        self.goal_indices = (0, 1)
        self.goal_threshold = 0.5
        self.success_easy_threshold = 2.0
        self.episode_length = 1000 if episode_length is None else episode_length
        self.dense_reward = dense_reward
        self.random_start = random_start
        self.start_range = start_range

    def mjcf(self) -> str:
        return ant_mjcf()

    def ant_q(self, key: jax.Array, xy: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(q [15], qd [14])``: rest pose at ``xy`` with brax's usual small random noise."""
        key_q, key_qd = jax.random.split(key)
        q0 = jnp.concatenate(
            [xy, jnp.array((ANT_TORSO_Z0, 1.0, 0.0, 0.0, 0.0) + ANT_LEGS_Q0, jnp.float32)]
        )
        q = q0 + jnp.concatenate(
            [jnp.zeros(7), jax.random.uniform(key_q, (8,), jnp.float32, -0.1, 0.1)]
        )
        qd = 0.1 * jax.random.normal(key_qd, (14,), jnp.float32)
        return q, qd

    def reset(self, rng: jax.Array) -> State:
        key_ant, key_start, key_goal = jax.random.split(rng, 3)
        start = jnp.where(
            self.random_start,
            jax.random.uniform(key_start, (2,), jnp.float32, -self.start_range, self.start_range),
            jnp.zeros(2, jnp.float32),
        )
        angle = jax.random.uniform(key_goal, (), jnp.float32, -jnp.pi, jnp.pi)
        goal = start + self.goal_radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)])
        q, qd = self.ant_q(key_ant, start)
        return self.make_state(self.pipeline_init(q, qd), goal, {"goal": goal})

    def state_obs(self, pipeline_state) -> jax.Array:
        return jnp.concatenate([pipeline_state.q[:15], pipeline_state.qd[:14]])

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        """Five goals on the goal circle around the default start (the origin)."""
        angles = np.deg2rad([0.0, 72.0, 144.0, 216.0, 288.0])
        tasks = self.goal_radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
        return {"tasks": tasks.astype(np.float32)}


class AntBall(Ant):
    """Ant Soccer: push the ball's ``x, y`` to a goal on the circle of radius 5."""

    goal_radius = 5.0

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.state_dim = 33
        self.goal_indices = (29, 30)

    def mjcf(self) -> str:
        return ant_mjcf(ball_body(), torso_collides=True)

    def reset(self, rng: jax.Array) -> State:
        key_ant, key_goal, key_ball = jax.random.split(rng, 3)
        angle = jax.random.uniform(key_goal, (), jnp.float32, -jnp.pi, jnp.pi)
        direction = jnp.stack([jnp.cos(angle), jnp.sin(angle)])
        goal = self.goal_radius * direction
        # The ball starts on the way, 30-70 % of the distance to the goal (clear of the ant's legs).
        fraction = jax.random.uniform(key_ball, (), jnp.float32, 0.3, 0.7)
        return self.reset_with(key_ant, jnp.zeros(2), fraction * goal, goal)

    def reset_with(self, key: jax.Array, ant_xy: jax.Array, ball_xy: jax.Array, goal) -> State:
        ant_q, ant_qd = self.ant_q(key, ant_xy)
        ball_q = jnp.concatenate([ball_xy, jnp.array([BALL_RADIUS, 1.0, 0.0, 0.0, 0.0])])
        q = jnp.concatenate([ant_q, ball_q])
        qd = jnp.concatenate([ant_qd, jnp.zeros(6)])
        return self.make_state(self.pipeline_init(q, qd), goal, {"goal": goal})

    def state_obs(self, pipeline_state) -> jax.Array:
        q, qd = pipeline_state.q, pipeline_state.qd
        return jnp.concatenate([q[:15], qd[:14], q[15:17], qd[14:16]])


def _box(name: str, centre, half, rgba: str = "0.55 0.5 0.45 1") -> str:
    return (
        f'<geom name="{name}" type="box" pos="{centre[0]} {centre[1]} {half[2]}" '
        f'size="{half[0]} {half[1]} {half[2]}" contype="1" conaffinity="1" rgba="{rgba}"/>'
    )


#: AntPush room: walls around [-6, 6]^2 with the top-right corner open and plugged by a block.
PUSH_ROOM = 6.0
PUSH_DOOR = 3.0
PUSH_BLOCK_HALF = 1.6
PUSH_GOALS = ((16.0, 8.0), (8.0, 16.0))


class AntPush(Ant):
    """Leave a walled room through its corner door by pushing the block away, then reach a goal
    near (16, 8) or (8, 16). State ``[29 + 6]``: the ant, then the block's ``x, y, z, vx, vy, vz``.
    """

    backends = ("mjx", "spring")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.state_dim = 35

    def mjcf(self) -> str:
        r, d, t, h = PUSH_ROOM, PUSH_DOOR, 0.5, 1.0
        walls = [
            _box("wall_bottom", (0.0, -r - t), (r + 2 * t, t, h)),
            _box("wall_left", (-r - t, 0.0), (t, r + 2 * t, h)),
            _box("wall_top", ((-r - t + d) / 2, r + t), ((r + t + d) / 2, t, h)),
            _box("wall_right", (r + t, (-r - t + d) / 2), (t, (r + t + d) / 2, h)),
        ]
        b = PUSH_BLOCK_HALF
        block = (
            f'<body name="block" pos="{r - b + 0.5} {r - b + 0.5} {b}">'
            '<joint name="block_free" type="free" limited="false" armature="0" damping="0"/>'
            f'<geom name="block_geom" type="box" size="{b} {b} {b}" mass="10" contype="1" '
            'conaffinity="1" rgba="0.3 0.6 0.3 1"/></body>'
        )
        return ant_mjcf("".join(walls) + block, torso_collides=True)

    def reset(self, rng: jax.Array) -> State:
        key_ant, key_choice, key_noise = jax.random.split(rng, 3)
        centres = jnp.asarray(PUSH_GOALS, jnp.float32)
        goal = centres[jax.random.randint(key_choice, (), 0, 2)] + jax.random.uniform(
            key_noise, (2,), jnp.float32, -1.0, 1.0
        )
        ant_q, ant_qd = self.ant_q(key_ant, jnp.zeros(2))
        q = jnp.concatenate([ant_q, self.sys.init_q[15:]])
        qd = jnp.concatenate([ant_qd, jnp.zeros(6)])
        return self.make_state(self.pipeline_init(q, qd), goal, {"goal": goal})

    def state_obs(self, pipeline_state) -> jax.Array:
        q, qd = pipeline_state.q, pipeline_state.qd
        return jnp.concatenate([q[:15], qd[:14], q[15:18], qd[14:17]])

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        tasks = [(16.0, 8.0), (8.0, 16.0), (17.0, 9.0), (9.0, 17.0), (15.0, 7.0)]
        return {"tasks": np.asarray(tasks, np.float32)}
