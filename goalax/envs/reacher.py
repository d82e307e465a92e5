"""``reacher``: a 2-link planar arm moves its fingertip to a goal point.

Physics come from brax's bundled ``reacher.xml``. Its target body (two slide joints) is placed at
the goal on every reset, with zero velocity and nothing acting on it, so renders show the goal.

state_obs ``[10]``: ``cos q0, cos q1, sin q0, sin q1`` (shoulder, elbow), fingertip ``x, y, z``
(entries 4-6, the goal part), joint velocities ``qd0, qd1`` and the arm's extension (fingertip
distance from the shoulder axis, 0.018-0.21), which is linear in the quantity a reaching policy
must match (the goal's radius). The goal is uniform in the disc of radius 0.2 around the shoulder,
at the fingertip's height. On spring/positional the elbow's ``±3 rad`` limit is soft and the arm
can fold through it, so angles are only observed through ``cos``/``sin``.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import brax
import jax
import jax.numpy as jnp
import numpy as np
from brax import math
from brax.envs.base import PipelineEnv
from brax.io import mjcf

from goalax.envs import notices
from goalax.envs.base import GoalEnv, State

GOAL_RADIUS = 0.2


class _Physics(NamedTuple):
    """Per-backend integration settings (env dt is ``timestep * n_frames`` = 0.02 s for all)."""

    timestep: float
    n_frames: int
    gear: float
    #: Angular velocity decay rate (1/s) of every body; only the spring/positional backends use it.
    ang_damping: float = 0.0


# The maximal-coordinate backends ignore joint armature and damping, so the arm is ~10x lighter
# there and needs a smaller gear and timestep; a global angular damping stands in for the joint
# damping (velocity decay ~1/s, as for the generalized model with its armature).
_PHYSICS = {
    "spring": _Physics(timestep=0.005, n_frames=4, gear=25.0, ang_damping=-1.0),
    "positional": _Physics(timestep=0.005, n_frames=4, gear=25.0, ang_damping=-1.0),
    "generalized": _Physics(timestep=0.01, n_frames=2, gear=200.0),
    "mjx": _Physics(timestep=0.01, n_frames=2, gear=200.0),
}


def _load_system(physics: _Physics) -> brax.System:
    path = os.path.join(os.path.dirname(brax.__file__), "envs", "assets", "reacher.xml")
    sys = notices.load_model(mjcf.load_mjmodel(path))
    # The arm moves in the horizontal plane, so gravity only makes the spring constraints sag.
    sys = sys.tree_replace(
        {
            "opt.timestep": physics.timestep,
            "gravity": jnp.zeros(3),
            "ang_damping": physics.ang_damping,
        }
    )
    return sys.replace(actuator=sys.actuator.replace(gear=jnp.full(2, physics.gear)))


class Reacher(GoalEnv, PipelineEnv):
    """Fingertip to a point in the disc of radius 0.2; never terminates."""

    backends = ("spring", "generalized", "positional", "mjx")

    def __init__(
        self,
        *,
        episode_length: int | None = None,
        backend: str | None = None,
        dense_reward: bool = False,
    ):
        backend = backend or "spring"
        physics = _PHYSICS[backend]
        super().__init__(sys=_load_system(physics), backend=backend, n_frames=physics.n_frames)
        self.state_dim = 10
        self.goal_indices = (4, 5, 6)
        self.goal_threshold = 0.05
        self.success_easy_threshold = 0.1
        self.episode_length = 50 if episode_length is None else episode_length
        self.dense_reward = dense_reward
        fingertip_geom = self.sys.mj_model.geom("fingertip")
        self._arm_link = int(fingertip_geom.bodyid[0]) - 1  # link indices skip the world body
        self._fingertip_offset = jnp.asarray(fingertip_geom.pos, jnp.float32)
        self._fingertip_height = float(self.sys.mj_model.body("body0").pos[2])

    def reset(self, rng: jax.Array) -> State:
        key_q, key_qd, key_goal = jax.random.split(rng, 3)
        arm_q = jax.random.uniform(key_q, (2,), jnp.float32, -0.1, 0.1)
        arm_qd = jax.random.uniform(key_qd, (2,), jnp.float32, -0.005, 0.005)
        goal = self.sample_goal(key_goal)
        q = jnp.concatenate([arm_q, goal[:2]])
        qd = jnp.concatenate([arm_qd, jnp.zeros(2, jnp.float32)])
        pipeline_state = self.pipeline_init(q, qd)
        return self.make_state(pipeline_state, goal, info={"goal": goal})

    def step(self, state: State, action: jax.Array) -> State:
        pipeline_state = self.pipeline_step(state.pipeline_state, action)
        return self.make_state(pipeline_state, state.info["goal"], info=state.info)

    def with_goal(self, state: State, goal: jax.Array) -> State:
        """Swap the goal and move the target marker there (the arm is untouched)."""
        goal = jnp.asarray(goal, jnp.float32)
        physics = state.pipeline_state
        q = physics.q.at[2:].set(goal[:2])
        qd = physics.qd.at[2:].set(0.0)
        return super().with_goal(state.replace(pipeline_state=self.pipeline_init(q, qd)), goal)

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        """``ring``: 8 goals every 45 degrees at radius 0.15, at the fingertip's height."""
        angles = np.deg2rad(np.arange(0.0, 360.0, 45.0))
        ring = np.stack(
            [0.15 * np.cos(angles), 0.15 * np.sin(angles), np.full(8, self._fingertip_height)],
            axis=-1,
        )
        return {"ring": ring.astype(np.float32)}

    def sample_goal(self, key: jax.Array) -> jax.Array:
        """``[3]``: uniform in the disc of radius ``GOAL_RADIUS``, at the fingertip's height."""
        key_radius, key_angle = jax.random.split(key)
        radius = GOAL_RADIUS * jnp.sqrt(jax.random.uniform(key_radius, (), jnp.float32))
        angle = jax.random.uniform(key_angle, (), jnp.float32, -jnp.pi, jnp.pi)
        return jnp.stack(
            [radius * jnp.cos(angle), radius * jnp.sin(angle), jnp.float32(self._fingertip_height)]
        )

    def fingertip(self, pipeline_state) -> jax.Array:
        """``[3]``: world position of the fingertip (a point fixed in the second link)."""
        arm = pipeline_state.x.take(self._arm_link)
        return arm.pos + math.rotate(self._fingertip_offset, arm.rot)

    def state_obs(self, pipeline_state) -> jax.Array:
        """``[10]``: see the module docstring for the layout."""
        arm_q, arm_qd = pipeline_state.q[:2], pipeline_state.qd[:2]
        fingertip = self.fingertip(pipeline_state)
        extension = jnp.linalg.norm(fingertip[:2], keepdims=True)
        return jnp.concatenate(
            [jnp.cos(arm_q), jnp.sin(arm_q), fingertip, arm_qd, extension]
        ).astype(jnp.float32)
