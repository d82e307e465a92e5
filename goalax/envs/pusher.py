"""Pusher tasks: ``pusher_easy``, ``pusher_hard``, ``pusher_reacher`` and ``pusher2``.

Physics come from brax's bundled ``pusher.xml`` (a 7-joint arm over a table, no gravity, a puck
on two slide joints). Its ``goal`` body is removed (the goal is drawn as a render marker); the
reacher variant also removes the puck, ``pusher2`` adds a second puck (the pucks do not collide
with each other: ``pusher.xml``'s puck geoms only collide with the arm).

state_obs: arm ``q [7]``, fingertip ``x, y, z [3]``, then each puck's ``x, y, z [3]``, then arm
``qd [7]`` (20 for one puck, 23 for two, 17 without: the reacher puts the fingertip last so the
goal part is entries 14-16). Goal parts: the puck (10-12), both pucks (10-15), the fingertip.

Goal distributions (offsets from the puck's home ``(0.45, -0.05)`` on the table plane):
- ``pusher_hard``: goal uniform in ``[-0.3, 0.3]^2``; puck as in brax's Pusher (offset ``x`` in
  [-0.2, 0.2], ``y`` in [-0.3, 0]).
- ``pusher_easy``: the same puck; the goal 0.12-0.25 from the puck at a random angle.
- ``pusher_reacher``: fingertip to a ``pusher_hard`` goal (at puck height).
- ``pusher2``: pucks start near ``y = -0.15`` and ``y = +0.15``; goal 1 in the region ``x`` in
  [-0.3, -0.15], ``y`` in [-0.3, 0]; goal 2 in ``x`` in [0.15, 0.3], ``y`` in [0, 0.3]. ``dist``
  is the larger of the two puck distances, so ``success`` means each puck within 0.1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from brax import math

from goalax.envs import notices
from goalax.envs.base import GoalPipelineEnv, State, brax_asset, goal_metrics, mjx_fast_solver

PUCK_HOME = (0.45, -0.05, -0.275)


def pusher_mjcf(n_pucks: int) -> str:
    xml = brax_asset("pusher.xml").replace(
        '<!--<body name="object" pos="0.55 -0.3 -0.275" >-->', ""
    )
    start = xml.index('<body name="goal"')
    xml = xml[:start] + xml[xml.index("</body>", start) + len("</body>") :]
    start = xml.index('<body name="object"')
    end = xml.index("</body>", start) + len("</body>")
    puck = xml[start:end]
    if n_pucks == 0:
        return xml[:start] + xml[end:]
    if n_pucks == 2:
        second = (
            puck.replace('name="object"', 'name="object2"')
            .replace('name="object_geom" rgba="1 1 1 1"', 'name="object2_geom" rgba="0.2 0.5 1 1"')
            .replace('name="obj_slide', 'name="obj2_slide')
        )
        xml = xml[:end] + second + xml[end:]
    return xml


class Pusher(GoalPipelineEnv):
    """Arm pushes pucks (or reaches) to goals on the table; never terminates."""

    backends = ("generalized", "mjx")

    def __init__(
        self,
        *,
        episode_length: int | None = None,
        backend: str | None = None,
        dense_reward: bool = False,
        variant: str = "hard",
    ):
        backend = backend or self.backends[0]
        self.variant = variant
        self.n_pucks = {"easy": 1, "hard": 1, "reacher": 0, "two": 2}[variant]
        sys = notices.load_mjcf(pusher_mjcf(self.n_pucks))
        if backend == "mjx":
            sys = mjx_fast_solver(sys)
        super().__init__(sys=sys, backend=backend, n_frames=5)
        model = sys.mj_model
        # ``tips_arm`` has no joint and is fused into the wrist link: the fingertip is the midpoint
        # of its two tip spheres, 0.1 ahead of the wrist roll axis.
        self._tip_link = model.body("r_wrist_roll_link").id - 1
        names = ("object", "object2")[: self.n_pucks]
        self._puck_links = jnp.asarray([model.body(n).id - 1 for n in names], jnp.int32)
        self.state_dim = 17 + 3 * self.n_pucks
        self.goal_indices = {
            "easy": (10, 11, 12),
            "hard": (10, 11, 12),
            "reacher": (14, 15, 16),
            "two": tuple(range(10, 16)),
        }[variant]
        self.goal_threshold = 0.1
        self.success_easy_threshold = 0.2
        self.episode_length = 1000 if episode_length is None else episode_length
        self.dense_reward = dense_reward

    def _on_table(self, offset_xy: jax.Array) -> jax.Array:
        """``[..., 2]`` offsets from the puck's home to world ``[..., 3]`` at puck height."""
        home = jnp.asarray(PUCK_HOME, jnp.float32)
        return jnp.concatenate(
            [home[:2] + offset_xy, jnp.broadcast_to(home[2:], offset_xy.shape[:-1] + (1,))], -1
        )

    def reset(self, rng: jax.Array) -> State:
        key_q, key_qd, key_puck, key_goal, key_extra = jax.random.split(rng, 5)
        arm_q = self.sys.init_q[:7] + jax.random.uniform(key_q, (7,), jnp.float32, -0.005, 0.005)
        arm_qd = jax.random.uniform(key_qd, (7,), jnp.float32, -0.005, 0.005)
        uniform = lambda key, low, high: jax.random.uniform(  # noqa: E731
            key, (2,), jnp.float32, jnp.asarray(low), jnp.asarray(high)
        )
        hard_goal = uniform(key_goal, (-0.3, -0.3), (0.3, 0.3))
        if self.variant == "two":
            key_p1, key_p2 = jax.random.split(key_puck)
            key_g1, key_g2 = jax.random.split(key_goal)
            pucks = jnp.stack(
                [
                    uniform(key_p1, (-0.1, -0.2), (0.1, -0.1)),
                    uniform(key_p2, (-0.1, 0.1), (0.1, 0.2)),
                ]
            )
            goal_offsets = jnp.stack(
                [
                    uniform(key_g1, (-0.3, -0.3), (-0.15, 0.0)),
                    uniform(key_g2, (0.15, 0.0), (0.3, 0.3)),
                ]
            )
            goal = self._on_table(goal_offsets).ravel()
        else:
            pucks = uniform(key_puck, (-0.2, -0.3), (0.2, 0.0))[None][: self.n_pucks]
            if self.variant == "easy":
                key_r, key_a = jax.random.split(key_extra)
                radius = jax.random.uniform(key_r, (), jnp.float32, 0.12, 0.25)
                angle = jax.random.uniform(key_a, (), jnp.float32, -jnp.pi, jnp.pi)
                offset = pucks[0] + radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)])
            else:
                offset = hard_goal
            goal = self._on_table(offset)
        # The puck's slide joints are ordered (y, x).
        q = jnp.concatenate([arm_q, pucks[:, ::-1].ravel()])
        qd = jnp.concatenate([arm_qd, jnp.zeros(2 * self.n_pucks)])
        return self.make_state(self.pipeline_init(q, qd), goal, {"goal": goal})

    def state_obs(self, pipeline_state) -> jax.Array:
        q, qd, pos = pipeline_state.q, pipeline_state.qd, pipeline_state.x.pos
        wrist = pipeline_state.x.take(self._tip_link)
        tip = wrist.pos + math.rotate(jnp.array([0.1, 0.0, 0.0]), wrist.rot)
        pucks = pos[self._puck_links].ravel()
        if self.variant == "reacher":
            return jnp.concatenate([q[:7], qd[:7], tip])
        return jnp.concatenate([q[:7], tip, pucks, qd[:7]])

    def goal_metrics(self, achieved, goal):
        """``pusher2``: ``dist`` is the larger puck distance, so success needs every puck."""
        if self.variant != "two":
            return super().goal_metrics(achieved, goal)
        pairs = achieved.shape[:-1] + (2, 3)
        per_puck = jnp.linalg.norm(achieved.reshape(pairs) - goal.reshape(pairs), axis=-1)
        dist = per_puck.max(axis=-1, keepdims=True)
        return goal_metrics(
            dist, jnp.zeros_like(dist), self.goal_threshold, self.success_easy_threshold
        )

    def goal_marker(self, goal) -> np.ndarray:
        """Render marker: the (first) puck's goal."""
        return np.asarray(goal, np.float64)[:3]

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        if self.variant == "two":
            first = [(-0.25, -0.25), (-0.2, -0.1), (-0.3, 0.0), (-0.15, -0.2), (-0.25, -0.05)]
            second = [(0.25, 0.25), (0.2, 0.1), (0.3, 0.0), (0.15, 0.2), (0.25, 0.05)]
            tasks = np.concatenate(
                [np.asarray(self._on_table(jnp.asarray(o, jnp.float32))) for o in (first, second)],
                axis=-1,
            )
        else:
            # Inside both the hard region and (for a puck near its home) the easy annulus.
            offsets = [(0.0, 0.2), (0.2, 0.0), (-0.2, 0.0), (0.15, 0.15), (-0.15, 0.15)]
            tasks = np.asarray(self._on_table(jnp.asarray(offsets, jnp.float32)))
        return {"tasks": tasks.astype(np.float32)}
