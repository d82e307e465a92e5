"""``reacher``: a 2-link planar arm moves its fingertip to a goal point.

The reference's task (JaxGCRL 0.2.8 ``reacher``) on brax's bundled ``reacher.xml``, the model the
reference loads. Its target body (two slide joints) is placed at the goal on every reset, with
zero velocity and nothing acting on it, so renders show the goal.

state_obs ``[10]``: ``cos q0, cos q1, sin q0, sin q1`` (shoulder, elbow), fingertip ``x, y, z``
(entries 4-6, the goal part) and the reference's fingertip velocity ``[3]``: the second link's
velocity carried to the point 0.11 along the world's x axis from its origin (the offset is not
turned with the link, so this is the fingertip's velocity only when the link points along +x).
The goal's distance from the shoulder axis is uniform in [0, 0.2] and its angle uniform (as the
reference draws them: denser near the centre than a uniform disc), at the fingertip's height.

Physics per backend: ``generalized`` (the default, the reference's) steps brax's bundled model
(timestep 0.01 s x 2, gear 200, joint armature and damping); ``mjx`` steps goalax's own MJCF of
the same arm (``assets/reacher.xml``) with MuJoCo XLA on goalax's own base (``MjxReacher``);
``spring`` and ``positional`` ignore armature and damping, so the arm is much lighter there and
runs at timestep 0.005 s x 4 with gear 25. On those two the elbow's ``±3 rad`` limit is soft and
the arm can fold through it, so angles are only observed through ``cos``/``sin``.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import brax
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from brax import math
from brax.io import mjcf

from goalax.envs import notices
from goalax.envs.base import State
from goalax.envs.brax_base import GoalPipelineEnv
from goalax.envs.mjx_base import MjxGoalEnv, point_velocity

GOAL_RADIUS = 0.2


class _Physics(NamedTuple):
    """Per-backend integration settings (env dt is ``timestep * n_frames`` = 0.02 s for all)."""

    timestep: float
    n_frames: int
    gear: float


_PHYSICS = {
    "spring": _Physics(timestep=0.005, n_frames=4, gear=25.0),
    "positional": _Physics(timestep=0.005, n_frames=4, gear=25.0),
    "generalized": _Physics(timestep=0.01, n_frames=2, gear=200.0),
}
#: The fingertip in the second link's frame; the reference's velocity offset uses it unrotated.
FINGERTIP_OFFSET = (0.11, 0.0, 0.0)


def _load_system(physics: _Physics) -> brax.System:
    path = os.path.join(os.path.dirname(brax.__file__), "envs", "assets", "reacher.xml")
    sys = notices.load_model(mjcf.load_mjmodel(path))
    sys = sys.tree_replace({"opt.timestep": physics.timestep})
    return sys.replace(actuator=sys.actuator.replace(gear=jnp.full(2, physics.gear)))


ASSET = os.path.join(os.path.dirname(__file__), "assets", "reacher.xml")
#: Backends, default first; ``mjx`` is goalax's own MJX base, the others brax's pipelines.
BACKENDS = ("generalized", "spring", "positional", "mjx")


class _ReacherTask:
    """The task whatever steps it: start and goal distributions, goal sets, observation layout.
    The physics base provides ``physics_at``, ``advance``, ``qpos`` and ``qvel``; the class
    ``fingertip`` and ``fingertip_velocity``."""

    def _set_task(self, episode_length: int | None, dense_reward: bool, height: float) -> None:
        self.state_dim = 10
        self.goal_indices = (4, 5, 6)
        self.goal_threshold = 0.05
        self.success_easy_threshold = 0.1
        self.episode_length = 50 if episode_length is None else episode_length
        self.dense_reward = dense_reward
        self._fingertip_height = height

    def reset(self, rng: jax.Array) -> State:
        key_q, key_qd, key_goal = jax.random.split(rng, 3)
        arm_q = jax.random.uniform(key_q, (2,), jnp.float32, -0.1, 0.1)
        arm_qd = jax.random.uniform(key_qd, (2,), jnp.float32, -0.005, 0.005)
        goal = self.sample_goal(key_goal)
        q = jnp.concatenate([arm_q, goal[:2]])
        qd = jnp.concatenate([arm_qd, jnp.zeros(2, jnp.float32)])
        return self.make_state(self.physics_at(q, qd), goal, info={"goal": goal})

    def step(self, state: State, action: jax.Array) -> State:
        physics = self.advance(state.pipeline_state, action)
        return self.make_state(physics, state.info["goal"], info=state.info)

    def with_goal(self, state: State, goal: jax.Array) -> State:
        """Swap the goal and move the target marker there (the arm is untouched)."""
        goal = jnp.asarray(goal, jnp.float32)
        physics = state.pipeline_state
        q = self.qpos(physics).at[2:].set(goal[:2])
        qd = self.qvel(physics).at[2:].set(0.0)
        return super().with_goal(state.replace(pipeline_state=self.physics_at(q, qd)), goal)

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        """``ring``: 8 goals every 45 degrees at radius 0.15, at the fingertip's height."""
        angles = np.deg2rad(np.arange(0.0, 360.0, 45.0))
        ring = np.stack(
            [0.15 * np.cos(angles), 0.15 * np.sin(angles), np.full(8, self._fingertip_height)],
            axis=-1,
        )
        return {"ring": ring.astype(np.float32)}

    def sample_goal(self, key: jax.Array) -> jax.Array:
        """``[3]``: radius uniform in [0, ``GOAL_RADIUS``], angle uniform, at fingertip height."""
        key_radius, key_angle = jax.random.split(key)
        radius = GOAL_RADIUS * jax.random.uniform(key_radius, (), jnp.float32)
        angle = jax.random.uniform(key_angle, (), jnp.float32, 0.0, 2 * jnp.pi)
        return jnp.stack(
            [radius * jnp.cos(angle), radius * jnp.sin(angle), jnp.float32(self._fingertip_height)]
        )

    def state_obs(self, physics: Any) -> jax.Array:
        """``[10]``: see the module docstring for the layout."""
        arm_q = self.qpos(physics)[:2]
        return jnp.concatenate(
            [
                jnp.cos(arm_q),
                jnp.sin(arm_q),
                self.fingertip(physics),
                self.fingertip_velocity(physics),
            ]
        ).astype(jnp.float32)


class Reacher(_ReacherTask, GoalPipelineEnv):
    """Fingertip to a point within 0.2 of the shoulder on brax's pipelines; never terminates."""

    backends = BACKENDS[:3]

    def __init__(
        self,
        *,
        episode_length: int | None = None,
        backend: str | None = None,
        dense_reward: bool = False,
    ):
        backend = backend or self.backends[0]
        physics = _PHYSICS[backend]
        GoalPipelineEnv.__init__(
            self, sys=_load_system(physics), backend=backend, n_frames=physics.n_frames
        )
        self._arm_link = int(self.sys.mj_model.geom("fingertip").bodyid[0]) - 1  # skip the world
        height = float(self.sys.mj_model.body("body0").pos[2])
        self._set_task(episode_length, dense_reward, height)

    def fingertip(self, pipeline_state) -> jax.Array:
        """``[3]``: world position of the fingertip (a point fixed in the second link)."""
        arm = pipeline_state.x.take(self._arm_link)
        return arm.pos + math.rotate(jnp.asarray(FINGERTIP_OFFSET), arm.rot)

    def fingertip_velocity(self, pipeline_state) -> jax.Array:
        """``[3]``: the reference's fingertip velocity (see the module docstring)."""
        arm = pipeline_state.xd.take(self._arm_link)
        return arm.vel + jnp.cross(arm.ang, jnp.asarray(FINGERTIP_OFFSET))


class MjxReacher(_ReacherTask, MjxGoalEnv):
    """The same task on goalax's own MJX base and MJCF (``backend="mjx"``)."""

    backends = BACKENDS[3:]

    def __init__(
        self,
        *,
        episode_length: int | None = None,
        dense_reward: bool = False,
        impl: str = "jax",
    ):
        MjxGoalEnv.__init__(self, mujoco.MjModel.from_xml_path(ASSET), n_substeps=2, impl=impl)
        self._link1 = int(self.mj_model.body("body1").id)
        self._fingertip = int(self.mj_model.site("fingertip").id)
        self._set_task(episode_length, dense_reward, float(self.mj_model.body("body0").pos[2]))

    def fingertip(self, data) -> jax.Array:
        """``[3]``: the fingertip site's world position."""
        return data.site_xpos[self._fingertip]

    def fingertip_velocity(self, data) -> jax.Array:
        """``[3]``: the reference's fingertip velocity: the second link's velocity at its origin
        plus its angular velocity crossed with the unrotated fingertip offset."""
        velocity = point_velocity(self.mj_model, data, self._link1, data.xpos[self._link1])
        return velocity[3:] + jnp.cross(velocity[:3], jnp.asarray(FINGERTIP_OFFSET))
