"""Arm tasks: ``arm_reach``, ``arm_grasp``, ``arm_push_{easy,hard}``, ``arm_binpick_{easy,hard}``.

A Franka Emika Panda (``assets/panda.xml``, written for goalax: the Panda's kinematics, joint
limits and link masses) with its parallel gripper on a table. Physics uses primitive geoms only
(capsules carry the link masses; the hand and the finger pads are boxes and are the only robot
parts that collide) because MJX's mesh collisions would multiply the CPU compile time of tasks
that are already the slowest to compile. For pictures the Panda's meshes are drawn from the
Franka assets that the ``gymnasium-robotics`` package ships (a dependency; no download at run
time). The table is the ``z = 0`` plane with a 5 cm cube and two open bins (A at ``y = -0.2``,
B at ``y = +0.2``, inner size 0.22 square, walls 6 cm high). Runs on MJX only.

Action ``[8]`` in [-1, 1]: position targets of the 7 arm joints (mapped linearly onto each
actuator's range, a part of the joint's range that covers the workspace above the table) and
one gripper target (-1 closed, +1 open, 8 cm) shared by both fingers.

state_obs ``[28]``: end effector (the tool centre point between the fingertips) ``x, y, z``
(0-2), cube ``x, y, z`` (3-5), cube quaternion (6-9), gap between the fingers (10), arm
``q [7]`` (11-17), arm ``qd [7]`` (18-24), cube linear velocity (25-27).

Goals (every reset also draws the cube's start and jitters the arm's home pose):
- ``arm_reach``: end effector to a point uniform in ``[0.3, 0.65] x [-0.3, 0.3] x [0.05, 0.4]``.
- ``arm_grasp``: end effector at the cube's start position and the finger gap equal to the cube's
  width (closed on it), with the cube still there: goal ``[cube xyz, eef xyz, gap]`` (7).
- ``arm_push_easy``: cube (starting around ``(0.45, 0)``) to a point in ``[0.55, 0.62] x
  [-0.06, 0.06]``; ``arm_push_hard``: anywhere in ``[0.3, 0.65] x [-0.3, 0.3]``.
- ``arm_binpick_easy``: cube from bin A to the centre of bin B (± 2 cm);
  ``arm_binpick_hard``: anywhere on bin B's floor (± 7 cm).
"""

from __future__ import annotations

import importlib.util
import os
import xml.etree.ElementTree as ET

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from goalax.envs import notices
from goalax.envs.base import GoalPipelineEnv, State
from goalax.errors import ConfigError

ASSET = os.path.join(os.path.dirname(__file__), "assets", "panda.xml")
#: Where gymnasium-robotics keeps the Franka visual meshes, inside its package.
MESH_SUBDIR = ("envs", "assets", "kitchen_franka", "franka_assets", "meshes", "visual")
#: Arm joints 1-7 with the end effector 25 cm above the table at (0.45, 0), gripper pointing down.
HOME_ARM_Q = (0.0, -0.185, 0.0, -2.497, 0.0, 2.312, 0.785)
HOME_GAP = 0.04  # each finger's opening at reset (fully open: 0.04)
CUBE_HALF = 0.025
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


def _scene(keep_meshes: bool) -> ET.Element:
    root = ET.parse(ASSET).getroot()
    if keep_meshes:
        root.find("compiler").set("meshdir", mesh_dir())
        return root
    for parent in root.iter():
        for child in [c for c in parent if c.get("class") == "visual"]:
            parent.remove(child)
    root.remove(root.find("asset"))
    return root


def physics_model() -> mujoco.MjModel:
    """The scene without the Panda's meshes: they only draw, and MJX would compile them."""
    return mujoco.MjModel.from_xml_string(ET.tostring(_scene(False), encoding="unicode"))


def mesh_dir() -> str:
    """Folder of the Franka Panda meshes inside the installed ``gymnasium-robotics``."""
    spec = importlib.util.find_spec("gymnasium_robotics")
    path = None if spec is None or spec.origin is None else os.path.dirname(spec.origin)
    path = path and os.path.join(path, *MESH_SUBDIR)
    if not path or not os.path.isdir(path):
        raise ConfigError(
            "drawing the Panda needs the Franka meshes of gymnasium-robotics 1.4 "
            '(pip install "gymnasium-robotics>=1.4.2,<1.5"); the arm tasks train without them'
        )
    return path


def render_model() -> mujoco.MjModel:
    """The scene with the Panda's meshes; same joints and bodies as :func:`physics_model`."""
    return mujoco.MjModel.from_xml_string(ET.tostring(_scene(True), encoding="unicode"))


class Arm(GoalPipelineEnv):
    """Franka Panda with a parallel gripper on a table; never terminates."""

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
        sys = notices.load_model(physics_model())
        super().__init__(sys=sys, backend=backend, n_frames=4)
        self.variant = variant
        self.state_dim = 28
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
        return 8  # 7 arm joints + one gripper target for both fingers

    def render_model(self) -> mujoco.MjModel:
        return render_model()

    def _uniform(self, key, low, high) -> jax.Array:
        return jax.random.uniform(
            key, (len(low),), jnp.float32, jnp.asarray(low), jnp.asarray(high)
        )

    def reset(self, rng: jax.Array) -> State:
        q, qd, goal = self.reset_inputs(rng)
        return self.make_state(self.pipeline_init(q, qd), goal, {"goal": goal})

    def reset_inputs(self, rng: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(q, qd, goal)`` of a fresh episode: everything a variant's reset draws. The physics
        (``pipeline_init``) is the same for all six variants, so tests run it once for all."""
        key_q, key_cube, key_goal = jax.random.split(rng, 3)
        arm_q = jnp.asarray(HOME_ARM_Q, jnp.float32) + jax.random.uniform(
            key_q, (7,), jnp.float32, -0.05, 0.05
        )
        if self.variant.startswith("binpick"):
            cube_xy = self._uniform(
                key_cube, (BIN_A[0] - 0.06, BIN_A[1] - 0.06), (BIN_A[0] + 0.06, BIN_A[1] + 0.06)
            )
        else:
            cube_xy = self._uniform(key_cube, (0.4, -0.05), (0.5, 0.05))
        cube = jnp.concatenate([cube_xy, jnp.array([CUBE_HALF], jnp.float32)])
        goal = self.sample_goal(key_goal, cube)
        # MuJoCo's order: the cube's free joint (written first in panda.xml), arm, fingers.
        q = jnp.concatenate(
            [
                cube,
                jnp.array([1.0, 0.0, 0.0, 0.0], jnp.float32),
                arm_q,
                jnp.full((2,), HOME_GAP, jnp.float32),
            ]
        )
        qd = jnp.zeros(self.sys.qd_size(), jnp.float32)
        return q, qd, goal

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

    def ctrl(self, action: jax.Array) -> jax.Array:
        """Actuator targets ``[9]`` for an action ``[8]``: both fingers follow the gripper value."""
        action = jnp.clip(action, -1.0, 1.0)
        targets = jnp.concatenate([action, action[-1:]])
        return self._ctrl_low + (targets + 1.0) / 2.0 * (self._ctrl_high - self._ctrl_low)

    def step(self, state: State, action: jax.Array) -> State:
        ctrl = self.ctrl(action)
        pipeline_state = self.pipeline_step(state.pipeline_state, ctrl)
        return self.make_state(pipeline_state, state.info["goal"], state.info)

    def state_obs(self, data) -> jax.Array:
        q, qd = data.qpos, data.qvel
        gap = q[14] + q[15]  # each finger's joint is its inner face's distance from the axis
        return jnp.concatenate(
            [data.site_xpos[0], q[0:3], q[3:7], gap[None], q[7:14], qd[6:13], qd[0:3]]
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
