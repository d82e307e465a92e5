"""The Franka Panda models of the arm tasks, in plain MuJoCo (no MJX compile): the physics and
drawing models agree, the start pose is the reference's, and a scripted pick through the task's
own action mapping lifts the cube (the cube tasks are solvable with this gripper)."""

import importlib.util
import os

import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from goalax.config import ConfigError
from goalax.envs import arm
from goalax.viz.render import drawing_model


@pytest.fixture(scope="module")
def env():
    return arm.Arm(variant="binpick_easy")


def at_home(model) -> mujoco.MjData:
    """The model at its rest state with the arm at the reset's pose."""
    data = mujoco.MjData(model)
    start = model.joint("joint1").qposadr[0]
    data.qpos[start : start + 7] = arm.HOME_ARM_Q
    mujoco.mj_forward(model, data)
    return data


@pytest.mark.parametrize("task", sorted(arm.TASKS))
def test_physics_model_has_no_meshes_and_draws_with_the_same_joints(task):
    physics, drawing = arm.physics_model(task), arm.render_model(task)
    assert physics.nmesh == 0 and drawing.nmesh == len(arm.arm_mjcf.MESHES)
    for size in ("nq", "nv", "nu", "nbody", "njnt", "npair", "neq"):
        assert getattr(physics, size) == getattr(drawing, size), size
    np.testing.assert_array_equal(physics.body_mass, drawing.body_mass)
    np.testing.assert_array_equal(physics.body_inertia, drawing.body_inertia)
    a, b = at_home(physics), at_home(drawing)
    np.testing.assert_allclose(a.xpos, b.xpos, atol=1e-12)


def test_render_uses_the_model_with_meshes(env):
    assert drawing_model(env).nmesh == len(arm.arm_mjcf.MESHES)
    assert env.sys.mj_model.nmesh == 0


def test_start_pose_is_the_references():
    """Link 7 (the observed end effector) 37 cm up, 68 cm ahead, the hand tilted 48 degrees
    forward from pointing down: the reference's reset pose, read on its own model."""
    data = at_home(arm.physics_model("push_easy"))
    link7 = data.body("link7")
    np.testing.assert_allclose(link7.xpos, (0.0, 0.678, 0.371), atol=1e-3)
    np.testing.assert_allclose(link7.xmat.reshape(3, 3)[:, 2], (0.0, 0.675, -0.738), atol=1e-3)


def test_missing_meshes_give_a_clear_error(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="gymnasium-robotics"):
        arm.render_model()


def _pad_centre(model, data) -> np.ndarray:
    left, right = model.geom("left_finger_geom").id, model.geom("right_finger_geom").id
    return (data.geom_xpos[left] + data.geom_xpos[right]) / 2


def settled_fraction(model) -> np.ndarray:
    """``[7]``: where each arm servo settles, as a fraction of its target. The reference's joints
    3-7 have a gain below their stiffness (2000 vs 3500, 1000 vs 2000), so they stop at 4/7 and
    1/2 of the target: the reachable poses are those."""
    return model.actuator_gainprm[:7, 0] / -model.actuator_biasprm[:7, 1]


def _ik(model, data, target) -> np.ndarray:
    """Settled angles of joints 1, 2, 4, 6 (the acted ones) that put the finger pads' centre at
    ``target`` (the hand then leans 25 degrees off pointing down: joint 6 is at its limit)."""
    start, acted = model.joint("joint1").qposadr[0], np.asarray(arm.ACTED_JOINTS)
    fraction = settled_fraction(model)
    bounds = np.sort([fraction * arm.TARGET_LOW, fraction * arm.TARGET_HIGH], axis=0)
    scratch = mujoco.MjData(model)
    scratch.qpos[:] = data.qpos
    scratch.qpos[start : start + 7] = fraction * np.asarray(arm.TARGET_LOW)  # the fixed joints
    q = np.clip(data.qpos[start + acted], *bounds[:, acted])
    left, right = model.geom("left_finger_geom").id, model.geom("right_finger_geom").id
    dofs = model.joint("joint1").dofadr[0] + acted
    for _ in range(300):
        scratch.qpos[start + acted] = q
        mujoco.mj_forward(model, scratch)
        jac_l, jac_r = np.zeros((3, model.nv)), np.zeros((3, model.nv))
        mujoco.mj_jacGeom(model, scratch, jac_l, None, left)
        mujoco.mj_jacGeom(model, scratch, jac_r, None, right)
        err = target - _pad_centre(model, scratch)
        jac = (jac_l + jac_r)[:, dofs] / 2
        step = jac.T @ np.linalg.solve(jac @ jac.T + 1e-4 * np.eye(3), err)
        q = np.clip(q + step, *bounds[:, acted])
    return q


def test_scripted_pick_lifts_the_cube(env):
    """Over the cube, down, close, up: through ``Arm.ctrl``, with the reference's model. The
    cube is turned to face the fingers (joint 7 is fixed, so the hand cannot turn to it), and
    lifted slowly: the reference's grip slips in fast moves."""
    model = env.sys.mj_model
    data = at_home(model)
    cube = np.array([-0.15, 0.6, arm.arm_mjcf.CUBE_HALF])
    data.qpos[:3] = cube
    acted = np.asarray(arm.ACTED_JOINTS)
    fraction = settled_fraction(model)[acted]
    low, high = (np.asarray(b)[acted] for b in (arm.TARGET_LOW, arm.TARGET_HIGH))
    grasp = mujoco.MjData(model)
    grasp.qpos[:] = data.qpos
    grasp.qpos[model.joint("joint1").qposadr[0] + acted] = _ik(model, data, cube)
    mujoco.mj_forward(model, grasp)
    closing = grasp.body("left_finger").xmat.reshape(3, 3)[:, 1]
    yaw = np.arctan2(closing[1], closing[0])
    data.qpos[3:7] = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
    waypoints = [  # (pad-centre height above the cube, gripper: +1 closed / -1 open, env steps)
        (0.15, -1.0, 40),
        (0.015, -1.0, 40),
        (0.015, 1.0, 20),
        (0.04, 1.0, 20),
        (0.08, 1.0, 20),
    ]
    for height, gripper, steps in waypoints:
        target = _ik(model, data, cube + (0.0, 0.0, height)) / fraction
        action = np.append(2 * (target - low) / (high - low) - 1, gripper)
        data.ctrl[:] = np.asarray(env.ctrl(jnp.asarray(action, jnp.float32)))
        for _ in range(steps * env._n_frames):
            mujoco.mj_step(model, data)
    assert data.qpos[2] > cube[2] + 0.02, data.qpos[:3]  # held 2 cm or more off the table
    gap = data.qpos[model.joint("finger_joint1").qposadr[0]] * 2
    assert abs(gap - 2 * arm.arm_mjcf.CUBE_HALF) < 0.005  # closed on the cube, not on each other


def test_xla_cpu_flag_is_added_unless_the_user_set_it(monkeypatch):
    import goalax

    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    goalax._set_xla_flags()
    assert goalax.CPU_XLA_FLAG in os.environ["XLA_FLAGS"]
    assert "device_count=4" in os.environ["XLA_FLAGS"]
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_fusion_emitters=true")
    goalax._set_xla_flags()
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_use_fusion_emitters=true"
