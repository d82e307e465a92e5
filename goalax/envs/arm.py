"""Arm tasks: ``arm_reach``, ``arm_grasp``, ``arm_push_{easy,hard}``, ``arm_binpick_{easy,hard}``.

A simplified arm written for goalax (``assets/arm.xml``), not the Franka Panda: 5 revolute joints
(base yaw, shoulder, elbow, wrist pitch, wrist roll) and a two-finger parallel gripper, all
position-servoed, with primitive geoms (capsules, boxes) so that MJX compiles and steps it quickly
on CPU. The table is the ``z = 0`` plane with a 5 cm cube and two open bins (A at ``y = -0.2``,
B at ``y = +0.2``, inner size 0.22 square, walls 6 cm high). Runs on MJX only.

Action ``[6]`` in [-1, 1]: joint position targets of the 5 arm joints (mapped linearly onto each
joint's range) and one gripper target (-1 closed, +1 open) shared by both fingers.

state_obs ``[24]``: end-effector (between the fingertips) ``x, y, z`` (0-2), cube ``x, y, z``
(3-5), cube quaternion (6-9), gap between the fingers (10), arm ``q [5]`` (11-15), arm ``qd [5]``
(16-20), cube linear velocity (21-23).

Goals (every reset also draws the cube's start):
- ``arm_reach``: end effector to a point uniform in ``[0.3, 0.65] x [-0.3, 0.3] x [0.05, 0.4]``.
- ``arm_grasp``: end effector at the cube's start position and the finger gap equal to the cube's
  width (closed on it), with the cube still there: goal ``[cube xyz, eef xyz, gap]`` (7).
- ``arm_push_easy``: cube (starting around ``(0.45, 0)``) to a point in ``[0.55, 0.62] x
  [-0.06, 0.06]``; ``arm_push_hard``: anywhere in ``[0.3, 0.65] x [-0.3, 0.3]``.
- ``arm_binpick_easy``: cube from bin A to the centre of bin B (± 2 cm);
  ``arm_binpick_hard``: anywhere on bin B's floor (± 7 cm).
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from brax.io import mjcf

from goalax.envs.ant import GoalPipelineEnv, State

ASSET = os.path.join(os.path.dirname(__file__), "assets", "arm.xml")
HOME_Q = (0.0, 0.9, 1.6, 1.2, 0.0, 0.02, 0.02)
CUBE_HALF = 0.025
FINGER_INNER = 0.024  # finger inner face offset from the hand axis at joint position 0
BIN_A, BIN_B = (0.45, -0.2), (0.45, 0.2)

#: variant -> goal indices.
GOAL_INDICES = {
    "reach": (0, 1, 2),
    "grasp": (3, 4, 5, 0, 1, 2, 10),
    "push_easy": (3, 4, 5),
    "push_hard": (3, 4, 5),
    "binpick_easy": (3, 4, 5),
    "binpick_hard": (3, 4, 5),
}


class Arm(GoalPipelineEnv):
    """Simplified 5-DoF arm with a gripper on a table; never terminates."""

    backends = ("mjx",)

    def __init__(
        self,
        *,
        episode_length: int | None = None,
        backend: str | None = None,
        dense_reward: bool = False,
        variant: str = "reach",
    ):
        backend = backend or self.backends[0]
        sys = mjcf.load(ASSET)
        super().__init__(sys=sys, backend=backend, n_frames=4)
        self.variant = variant
        self.state_dim = 24
        self.goal_indices = GOAL_INDICES[variant]
        self.goal_threshold = 0.1
        self.success_easy_threshold = 2 * self.goal_threshold
        self.episode_length = 1000 if episode_length is None else episode_length
        self.dense_reward = dense_reward
        ctrl_range = np.asarray(sys.mj_model.actuator_ctrlrange, np.float32)
        self._ctrl_low = jnp.asarray(ctrl_range[:, 0])
        self._ctrl_high = jnp.asarray(ctrl_range[:, 1])

    @property
    def action_size(self) -> int:
        return 6  # 5 arm joints + one gripper target for both fingers

    def _uniform(self, key, low, high) -> jax.Array:
        return jax.random.uniform(
            key, (len(low),), jnp.float32, jnp.asarray(low), jnp.asarray(high)
        )

    def reset(self, rng: jax.Array) -> State:
        key_q, key_cube, key_goal = jax.random.split(rng, 3)
        arm_q = jnp.asarray(HOME_Q, jnp.float32) + jnp.concatenate(
            [jax.random.uniform(key_q, (5,), jnp.float32, -0.05, 0.05), jnp.zeros(2)]
        )
        if self.variant.startswith("binpick"):
            cube_xy = self._uniform(
                key_cube, (BIN_A[0] - 0.06, BIN_A[1] - 0.06), (BIN_A[0] + 0.06, BIN_A[1] + 0.06)
            )
        else:
            cube_xy = self._uniform(key_cube, (0.4, -0.05), (0.5, 0.05))
        cube = jnp.concatenate([cube_xy, jnp.array([CUBE_HALF], jnp.float32)])
        goal = self.sample_goal(key_goal, cube)
        # MuJoCo's order: the cube's free joint (written first in arm.xml), then the arm.
        q = jnp.concatenate([cube, jnp.array([1.0, 0.0, 0.0, 0.0], jnp.float32), arm_q])
        qd = jnp.zeros(self.sys.qd_size(), jnp.float32)
        return self.make_state(self.pipeline_init(q, qd), goal, {"goal": goal})

    def sample_goal(self, key: jax.Array, cube: jax.Array) -> jax.Array:
        z = jnp.array([CUBE_HALF], jnp.float32)
        if self.variant == "reach":
            return self._uniform(key, (0.3, -0.3, 0.05), (0.65, 0.3, 0.4))
        if self.variant == "grasp":
            return jnp.concatenate([cube, cube, jnp.array([2 * CUBE_HALF], jnp.float32)])
        low, high = {
            "push_easy": ((0.55, -0.06), (0.62, 0.06)),
            "push_hard": ((0.3, -0.3), (0.65, 0.3)),
            "binpick_easy": (
                (BIN_B[0] - 0.02, BIN_B[1] - 0.02),
                (BIN_B[0] + 0.02, BIN_B[1] + 0.02),
            ),
            "binpick_hard": (
                (BIN_B[0] - 0.07, BIN_B[1] - 0.07),
                (BIN_B[0] + 0.07, BIN_B[1] + 0.07),
            ),
        }[self.variant]
        return jnp.concatenate([self._uniform(key, low, high), z])

    def step(self, state: State, action: jax.Array) -> State:
        action = jnp.clip(action, -1.0, 1.0)
        targets = jnp.concatenate([action, action[-1:]])  # both fingers follow the gripper target
        ctrl = self._ctrl_low + (targets + 1.0) / 2.0 * (self._ctrl_high - self._ctrl_low)
        pipeline_state = self.pipeline_step(state.pipeline_state, ctrl)
        return self.make_state(pipeline_state, state.info["goal"], state.info)

    def state_obs(self, data) -> jax.Array:
        q, qd = data.qpos, data.qvel
        gap = 2 * FINGER_INNER + q[12] + q[13]
        return jnp.concatenate(
            [data.site_xpos[0], q[0:3], q[3:7], gap[None], q[7:12], qd[6:11], qd[0:3]]
        )

    def goal_marker(self, goal) -> np.ndarray:
        """Render marker: the goal's first position (end effector or cube)."""
        return np.asarray(goal, np.float64)[:3]

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        z = CUBE_HALF
        if self.variant == "reach":
            tasks = [
                (0.4, 0.0, 0.2),
                (0.5, 0.2, 0.1),
                (0.5, -0.2, 0.3),
                (0.6, 0.0, 0.1),
                (0.35, 0.25, 0.35),
            ]
        elif self.variant == "grasp":
            cubes = [(0.45, 0.0), (0.42, 0.03), (0.48, -0.03), (0.42, -0.04), (0.48, 0.04)]
            tasks = [(x, y, z, x, y, z, 2 * CUBE_HALF) for x, y in cubes]
        else:
            centre = {"push_easy": (0.585, 0.0), "push_hard": (0.475, 0.0)}.get(self.variant, BIN_B)
            spread = {"push_easy": 0.03, "push_hard": 0.15, "binpick_easy": 0.015}.get(
                self.variant, 0.06
            )
            offsets = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]
            tasks = [(centre[0] + spread * a, centre[1] + spread * b, z) for a, b in offsets]
        return {"tasks": np.asarray(tasks, np.float32)}
