"""Arm tasks: ``arm_reach``, ``arm_grasp``, ``arm_push_{easy,hard}``, ``arm_binpick_{easy,hard}``.

The reference's (jaxgcrl 0.2.8, the paper's) Franka Emika Panda tasks: its models
(``arm_mjcf``), resets, goals, observations, action mapping and success, on MJX only. The robot
stands at the origin facing +y; the cube (6 cm) starts on a blue region or bin and goes to a red
one. Per task (``TASKS``):

- ``arm_reach``: no gripper; end effector to a point uniform in ``[-0.2, 0.2] x [0.3, 0.7] x
  [0.1, 0.5]``. state_obs ``[13]``: arm ``q [7]`` (0-6), end effector (link 7's frame) position
  (7-9, the goal part) and velocity (10-12).
- ``arm_grasp``: cube at ``(0, 0.6)`` ± 0.3 in x and y; both fingertips 3.75 cm either side of the
  cube (along x) with the fingertips 7.5 cm apart. state_obs ``[24]``: cube ``x, y, z`` (0-2), arm
  ``q`` (3-9), end effector position and velocity (10-15), left and right fingertip positions
  (16-21) and their distance (22), gripper force (23). Goal ``[7]``: entries 16-22. The goal
  follows the cube: after every step its fingertip targets are moved next to the cube's position.
  Success, as the reference's: the fingertips' midpoint within 5 cm of the goal's (the cube) and
  their distance within 2 cm of the goal's (easy: 15 cm and 5 cm).
- ``arm_push_{easy,hard}``, ``arm_binpick_{easy,hard}``: cube from a uniform start around the blue
  region's centre (``± 0.1, 0.25, 0.07, 0.15``) to a goal on the table uniform around the red
  region's centre (``± 0.1, 0.25, 0.005, 0.15``). state_obs ``[18]``: cube ``x, y, z`` (0-2, the
  goal part), arm ``q`` (3-9), end effector position and velocity (10-15), the fingers' distance
  (16) and the reference's "gripper force" (17: a tenth of the mean actuator force over every
  degree of freedom but the two fingers, as its code computes it).

Action in [-1, 1]: targets of joints 1, 2, 4 and 6 mapped linearly onto the reference's ranges
(joints 3 and 5 held at 0, joint 7 at 1.4487) and, but for reach, the gripper (closed when
positive, open otherwise). Every reset starts the arm at the same pose with the fingers open
(the grasp task's as the reference's reset leaves them: ``HOME_FINGERS``). The physics model
has no meshes; ``render_model`` adds the Franka meshes of ``gymnasium-robotics`` for pictures.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from goalax.envs import arm_mjcf, notices
from goalax.envs.base import State
from goalax.envs.brax_base import GoalPipelineEnv
from goalax.errors import ConfigError

#: Where gymnasium-robotics keeps the Franka visual meshes, inside its package.
MESH_SUBDIR = ("envs", "assets", "kitchen_franka", "franka_assets", "meshes", "visual")
#: The arm's start pose (joints 1-7), the reference's.
HOME_ARM_Q = (1.571, 0.742, 0.0, -1.571, 0.0, 3.054, 1.449)
#: Joint targets of an action of -1 and +1 (joints 3, 5, 7 fixed), the reference's numbers.
TARGET_LOW = (0.3491, 0.0, 0.0, -3.0718, 0.0, 2.3562, 1.4487)
TARGET_HIGH = (2.7925, 1.48353, 0.0, -0.0698, 0.0, 3.7525, 1.4487)
#: The action entries that drive joints 1, 2, 4 and 6.
ACTED_JOINTS = (0, 1, 3, 5)
#: Gripper actuator controls (0-255 spans the fingers' travel).
GRIPPER_CLOSED, GRIPPER_OPEN = 0.0, 255.0
#: Grasp goal: fingertips this far either side of the cube's centre along x, and their distance.
FINGERTIP_OFFSET = 0.0375
GRASP_GAP = 0.075
#: The grasp success rules ``(midpoint distance, gap difference)``, success and success_easy.
GRASP_SUCCESS, GRASP_SUCCESS_EASY = (0.05, 0.02), (0.15, 0.05)


@dataclasses.dataclass(frozen=True)
class ArmTask:
    """What one arm task draws and observes (the reference's numbers)."""

    state_dim: int
    goal_indices: tuple[int, ...]
    episode_length: int
    #: Half widths of the uniform cube start around the model's rest position (x and y).
    cube_noise: float = 0.0
    #: Goal centre and half widths of the uniform goal around it.
    goal_centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
    goal_noise: tuple[float, float, float] = (0.0, 0.0, 0.0)


CUBE = (0, 1, 2)
TASKS = {
    "reach": ArmTask(13, (7, 8, 9), 100, goal_centre=(0.0, 0.5, 0.3), goal_noise=(0.2,) * 3),
    "grasp": ArmTask(24, tuple(range(16, 23)), 100, cube_noise=0.3),
    "push_easy": ArmTask(18, CUBE, 150, 0.1, (0.1, 0.6, 0.03), (0.1, 0.1, 0.0)),
    "push_hard": ArmTask(18, CUBE, 150, 0.25, (0.25, 0.65, 0.03), (0.25, 0.25, 0.0)),
    "binpick_easy": ArmTask(18, CUBE, 150, 0.07, (0.17, 0.6, 0.03), (0.005, 0.005, 0.0)),
    "binpick_hard": ArmTask(18, CUBE, 150, 0.15, (0.3, 0.6, 0.03), (0.15, 0.15, 0.0)),
}
#: Finger joints at reset after the arm's: open (0.04 each). The grasp model's order is
#: left finger, left fingertip, right finger, right fingertip, and the reference's reset writes
#: ``0.04, 0.04, 0, 0`` there: the left fingertip's hinge at 0.04 rad (past its 1e-4 limit) and
#: the right finger closed. goalax starts the same state (the servos open it within a step).
HOME_FINGERS = {"reach": (), "grasp": (0.04, 0.04, 0.0, 0.0)}
OPEN_FINGERS = (0.04, 0.04)


def physics_model(task: str = "reach") -> mujoco.MjModel:
    """``task``'s model without the Panda's meshes: they only draw, and MJX would compile them."""
    return mujoco.MjModel.from_xml_string(arm_mjcf.task_xml(task))


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


def render_model(task: str = "reach") -> mujoco.MjModel:
    """``task``'s model with the Panda's meshes; same joints and bodies as ``physics_model``."""
    return mujoco.MjModel.from_xml_string(arm_mjcf.task_xml(task, mesh_dir()))


def grasp_goal(cube: jax.Array) -> jax.Array:
    """``[7]``: fingertip targets either side of ``cube [3]`` (along x) and their distance."""
    offset = jnp.array([FINGERTIP_OFFSET, 0.0, 0.0], jnp.float32)
    return jnp.concatenate([cube + offset, cube - offset, jnp.array([GRASP_GAP], jnp.float32)])


def grasp_metrics(achieved: jax.Array, goal: jax.Array) -> dict[str, jax.Array]:
    """The reference's grasp success for ``[..., 7]`` fingertip states and goals: the
    fingertips' midpoint near the goal's (the cube) and their distance near the goal's."""
    midpoint = (achieved[..., 0:3] + achieved[..., 3:6]) / 2
    target = (goal[..., 0:3] + goal[..., 3:6]) / 2
    off = jnp.linalg.norm(midpoint - target, axis=-1)
    gap_error = jnp.abs(achieved[..., 6] - goal[..., 6])

    def rule(limits: tuple[float, float]) -> jax.Array:
        return ((off < limits[0]) & (gap_error < limits[1])).astype(jnp.float32)

    return {
        "dist": jnp.linalg.norm(achieved - goal, axis=-1),
        "success": rule(GRASP_SUCCESS),
        "success_easy": rule(GRASP_SUCCESS_EASY),
    }


class Arm(GoalPipelineEnv):
    """Franka Panda on a table, the reference's task ``variant``; never terminates."""

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
        model = physics_model(variant)
        sys = notices.load_model(model)
        # The reference steps 25 x 2 ms per env step.
        super().__init__(sys=sys, backend=backend, n_frames=25)
        self.variant = variant
        self.task = TASKS[variant]
        self.state_dim = self.task.state_dim
        self.goal_indices = self.task.goal_indices
        # grasp: see ``grasp_metrics``; a fingertip this far off its target (the midpoint half
        # as far) just fails, as the contract's threshold does for the other arms.
        self.goal_threshold = 0.1
        self.success_easy_threshold = 0.3
        self.episode_length = self.task.episode_length if episode_length is None else episode_length
        self.dense_reward = dense_reward
        self._init_q = np.asarray(model.qpos0, np.float32)
        self._has_cube = variant != "reach"
        # Body indices into brax's link arrays (``x``, ``xd``: the world body left out).
        self._eef = model.body("link7").id - 1
        # The fingers' positions the observation reads: grasp's fingertips, the others' fingers.
        fingers = ("left_fingertip", "right_fingertip") if variant == "grasp" else ()
        fingers = () if variant == "reach" else fingers or ("left_finger", "right_finger")
        self._fingers = tuple(model.body(name).id - 1 for name in fingers)
        marker = model.joint(model.body("goal_marker").jntadr[0])
        self._marker_q = int(marker.qposadr[0])
        self._arm_q = int(model.joint("joint1").qposadr[0])
        if variant == "grasp":
            self._finger_dofs = tuple(
                int(model.joint(f"finger_joint{k}").dofadr[0]) for k in (1, 2)
            )

    @property
    def action_size(self) -> int:
        return 4 if self.variant == "reach" else 5

    def render_model(self) -> mujoco.MjModel:
        return render_model(self.variant)

    def reset(self, rng: jax.Array) -> State:
        q, qd, goal = self.reset_inputs(rng)
        return self.make_state(self.pipeline_init(q, qd), goal, {"goal": goal})

    def reset_inputs(self, rng: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(q, qd, goal)`` of a fresh episode, the goal marker already at the goal. The keys
        are split as the reference splits them, so a key gives the reference's cube and goal."""
        rng, key_start = jax.random.split(rng)
        _, key_goal, _ = jax.random.split(rng, 3)
        q = jnp.asarray(self._init_q)
        arm_q = jnp.asarray(HOME_ARM_Q + HOME_FINGERS.get(self.variant, OPEN_FINGERS), jnp.float32)
        q = q.at[self._arm_q :].set(arm_q)
        if self._has_cube:
            key_cube = jax.random.split(key_start, 3)[1]
            noise = jax.random.uniform(key_cube, (2,), jnp.float32, -1.0, 1.0)
            q = q.at[:2].add(self.task.cube_noise * noise)
        if self.variant == "grasp":
            goal = grasp_goal(q[:3])
        else:
            if self.variant != "reach":
                key_goal = jax.random.split(key_goal)[1]
            noise = jax.random.uniform(key_goal, (3,), jnp.float32, -1.0, 1.0)
            goal = jnp.asarray(self.task.goal_centre, jnp.float32)
            goal = goal + jnp.asarray(self.task.goal_noise, jnp.float32) * noise
        q = q.at[self._marker_q : self._marker_q + 3].set(goal[:3])
        qd = jnp.zeros(self.sys.qd_size(), jnp.float32)
        return q, qd, goal

    def ctrl(self, action: jax.Array) -> jax.Array:
        """Actuator controls ``[7]`` (reach) or ``[9]`` for an action ``[4]`` or ``[5]``."""
        action = jnp.clip(action, -1.0, 1.0)
        low, high = jnp.asarray(TARGET_LOW), jnp.asarray(TARGET_HIGH)
        scaled = jnp.zeros(7, jnp.float32).at[jnp.asarray(ACTED_JOINTS)].set(action[:4])
        arm = (low + high) / 2 + scaled * (high - low) / 2
        if self.variant == "reach":
            return arm
        gripper = jnp.where(action[-1] > 0, GRIPPER_CLOSED, GRIPPER_OPEN)
        return jnp.concatenate([arm, jnp.full((2,), gripper, jnp.float32)])

    def step(self, state: State, action: jax.Array) -> State:
        pipeline_state = self.pipeline_step(state.pipeline_state, self.ctrl(action))
        return self.state_after(pipeline_state, state.info)

    def state_after(self, pipeline_state, info: dict) -> State:
        """The ``State`` after a physics step: grasp's goal moves next to the cube first."""
        goal = info["goal"]
        if self.variant == "grasp":
            goal = grasp_goal(pipeline_state.q[:3])
            pipeline_state = self._show_goal(pipeline_state, goal)
        return self.make_state(pipeline_state, goal, {**info, "goal": goal})

    def _show_goal(self, pipeline_state, goal: jax.Array):
        """Move the goal marker (a body on a free joint, touching nothing) to the goal."""
        at = slice(self._marker_q, self._marker_q + 3)
        q = pipeline_state.q.at[at].set(goal[:3])
        return pipeline_state.replace(q=q, qpos=pipeline_state.qpos.at[at].set(goal[:3]))

    def with_goal(self, state: State, goal: jax.Array) -> State:
        state = super().with_goal(state, goal)
        return state.replace(
            pipeline_state=self._show_goal(state.pipeline_state, state.info["goal"])
        )

    def goal_metrics(self, achieved: jax.Array, goal: jax.Array) -> dict[str, jax.Array]:
        if self.variant == "grasp":
            return grasp_metrics(achieved, goal)
        return super().goal_metrics(achieved, goal)

    def state_obs(self, data) -> jax.Array:
        q, x, xd = data.q, data.x.pos, data.xd.vel
        arm = q[self._arm_q : self._arm_q + 7]
        eef = [x[self._eef], xd[self._eef]]
        if self.variant == "reach":
            return jnp.concatenate([arm] + eef)
        left, right = (x[i] for i in self._fingers)
        distance = jnp.linalg.norm(right - left)[None]
        if self.variant == "grasp":
            force = data.qfrc_actuator[jnp.asarray(self._finger_dofs)].mean(keepdims=True)
            parts = [q[:3], arm] + eef + [left, right, distance, 0.1 * force]
        else:
            # The reference's reading: every degree of freedom but the two fingers'.
            force = data.qfrc_actuator[:-2].mean(keepdims=True)
            parts = [q[:3], arm] + eef + [distance, 0.1 * force]
        return jnp.concatenate(parts)

    def goal_marker(self, goal) -> np.ndarray:
        """Render marker: the goal's first position (end effector, cube or left fingertip)."""
        return np.asarray(goal, np.float64)[:3]

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        if self.variant == "grasp":
            cubes = [(0.0, 0.6), (0.15, 0.6), (-0.15, 0.6), (0.0, 0.75), (0.0, 0.45)]
            goals = [np.asarray(grasp_goal(jnp.array([x, y, 0.03]))) for x, y in cubes]
            return {"tasks": np.asarray(goals, np.float32)}
        centre, noise = np.asarray(self.task.goal_centre), np.asarray(self.task.goal_noise)
        offsets = [(0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0)]
        if self.variant == "reach":
            offsets = [(0, 0, 0), (1, 0, -1), (-1, 0, 1), (0, 1, 1), (0, -1, -1)]
        goals = [centre + 0.75 * noise * np.asarray(o) for o in offsets]
        return {"tasks": np.asarray(goals, np.float32)}
