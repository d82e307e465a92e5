"""The Franka Panda model of the arm tasks, in plain MuJoCo (no MJX compile): the physics and
drawing models agree, the home pose is where the docs say, and a scripted pick through the task's
own action mapping lifts the cube (the grasp and bin tasks are solvable with this gripper)."""

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
    return arm.Arm(variant="grasp")


def forward(model, arm_q, gap=0.04):
    data = mujoco.MjData(model)
    data.qpos[0:3] = (0.45, 0.0, arm.CUBE_HALF)
    data.qpos[3] = 1.0
    data.qpos[7:14] = arm_q
    data.qpos[14:16] = gap
    mujoco.mj_forward(model, data)
    return data


def test_physics_model_has_no_meshes_and_draws_with_the_same_joints():
    physics, drawing = arm.physics_model(), arm.render_model()
    assert physics.nmesh == 0 and drawing.nmesh == 10
    for size in ("nq", "nv", "nu", "nbody", "njnt", "nsite"):
        assert getattr(physics, size) == getattr(drawing, size), size
    assert np.allclose(physics.body_mass, drawing.body_mass)
    q = np.random.default_rng(0).uniform(-0.5, 0.5, 7) + np.asarray(arm.HOME_ARM_Q)
    a, b = forward(physics, q), forward(drawing, q)
    assert np.allclose(a.xpos, b.xpos, atol=1e-9) and np.allclose(a.site_xpos, b.site_xpos)


def test_render_uses_the_model_with_meshes(env):
    assert drawing_model(env).nmesh == 10
    assert env.sys.mj_model.nmesh == 0


def test_home_pose_puts_the_gripper_above_the_cube_pointing_down():
    data = forward(arm.physics_model(), arm.HOME_ARM_Q)
    assert np.allclose(data.site_xpos[0], (0.45, 0.0, 0.25), atol=1e-3)
    hand = arm.physics_model().body("hand").id
    assert np.allclose(data.xmat[hand].reshape(3, 3)[:, 2], (0.0, 0.0, -1.0), atol=1e-3)


def test_missing_meshes_give_a_clear_error(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="gymnasium-robotics"):
        arm.render_model()


def _ik(model, data, target):
    """Arm joints that put the end effector at ``target`` with the gripper pointing down."""
    scratch = mujoco.MjData(model)
    scratch.qpos[:] = data.qpos
    hand = model.body("hand").id
    q = data.qpos[7:14].copy()
    low, high = model.actuator_ctrlrange[:7].T
    for _ in range(200):
        scratch.qpos[7:14] = q
        mujoco.mj_forward(model, scratch)
        jac_p, jac_r = np.zeros((3, model.nv)), np.zeros((3, model.nv))
        mujoco.mj_jacSite(model, scratch, jac_p, None, 0)
        mujoco.mj_jacBody(model, scratch, None, jac_r, hand)
        down = np.cross(scratch.xmat[hand].reshape(3, 3)[:, 2], (0.0, 0.0, -1.0))
        err = np.concatenate([target - scratch.site_xpos[0], down])
        jac = np.vstack([jac_p[:, 6:13], jac_r[:, 6:13]])
        q = np.clip(q + jac.T @ np.linalg.solve(jac @ jac.T + 1e-3 * np.eye(6), err), low, high)
    return q


def test_scripted_pick_lifts_the_cube(env):
    model = env.sys.mj_model
    data = forward(model, arm.HOME_ARM_Q)
    low, high = model.actuator_ctrlrange[:7].T
    cube = (0.45, 0.0, arm.CUBE_HALF)
    waypoints = [  # (end-effector target, gripper: +1 open / -1 closed, env steps)
        ((0.45, 0.0, 0.15), 1.0, 50),
        ((0.45, 0.0, 0.02), 1.0, 50),
        ((0.45, 0.0, 0.02), -1.0, 30),
        ((0.45, 0.0, 0.25), -1.0, 60),
    ]
    for target, gripper, steps in waypoints:
        q = _ik(model, data, np.asarray(target))
        action = np.append(2 * (q - low) / (high - low) - 1, gripper)
        data.ctrl[:] = np.asarray(env.ctrl(jnp.asarray(action, jnp.float32)))
        for _ in range(steps * round(float(env.dt) / model.opt.timestep)):
            mujoco.mj_step(model, data)
    assert data.qpos[2] > cube[2] + 0.15, data.qpos[:3]  # lifted 15 cm or more
    gap = data.qpos[14] + data.qpos[15]
    assert abs(gap - 2 * arm.CUBE_HALF) < 0.01  # fingers closed on the cube, not on each other


def test_xla_cpu_flag_is_added_unless_the_user_set_it(monkeypatch):
    import goalax

    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    goalax._set_xla_flags()
    assert goalax.CPU_XLA_FLAG in os.environ["XLA_FLAGS"]
    assert "device_count=4" in os.environ["XLA_FLAGS"]
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_fusion_emitters=true")
    goalax._set_xla_flags()
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_use_fusion_emitters=true"
