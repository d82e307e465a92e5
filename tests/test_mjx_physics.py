"""Tasks on goalax's own MJX base step exactly as MuJoCo's C engine does.

For every task with an MJX-base backend: one env step from many reachable states (random
rollouts, plus states pressed against joint limits) equals ``n_substeps`` calls of
``mujoco.mj_step`` (float64) on the same model from the same ``qpos``/``qvel`` under the same
control, and the observation read from the stepped ``mjx.Data`` equals the one read from the C
engine's data; a trajectory of 50 steps from a reset stays on the C engine's. Tolerances are
float32's: MJX runs in single precision here, MuJoCo in double.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from mujoco import mjx

from goalax import envs
from goalax.envs.mjx_base import MjxGoalEnv, check_impl
from goalax.envs.pusher import MjxPusher
from goalax.errors import ConfigError

#: Tasks with a backend on goalax's MJX base (``envs.make(task, backend="mjx")``): the default
#: suite checks the cheapest (reacher, ~15 s of compiling on 2 cores); the others (cheetah:
#: ~45 s, each pusher: 3-6 min on 2 loaded cores) run under ``-m slow``.
DEFAULT_SUITE = ("reacher",)
MJX_BASE_TASKS = [
    pytest.param(name, marks=() if name in DEFAULT_SUITE else pytest.mark.slow)
    for name in envs.mjx_base_names()
]
#: |goalax - C| <= ATOL + RTOL * |C| for positions, velocities and observations after one step
#: (float32 against float64, through MuJoCo's iterative constraint solver).
ATOL, RTOL = 1e-4, 1e-4
TRAJECTORY_STEPS = 50
#: Batch size of every compiled program (one shape: each program compiles once per task).
NUM = 16


@functools.cache
def env_of(task: str) -> MjxGoalEnv:
    env = envs.make(task, backend="mjx")
    assert isinstance(env, MjxGoalEnv), type(env)
    return env


class Programs(NamedTuple):
    """Compiled once per task, every one batched over a leading axis."""

    reset: Callable
    step: Callable
    state_obs: Callable  # mjx.Data -> [state_dim]
    init: Callable  # (qpos, qvel) -> mjx.Data
    ctrl: Callable  # action -> ctrl


@functools.cache
def programs(task: str) -> Programs:
    env = env_of(task)
    return Programs(
        *(
            jax.jit(jax.vmap(f))
            for f in (env.reset, env.step, env.state_obs, env.physics_init, env.ctrl_of_action)
        )
    )


def c_step(env: MjxGoalEnv, qpos, qvel, ctrl) -> mujoco.MjData:
    """``n_substeps`` of ``mj_step`` from ``(qpos, qvel)`` under ``ctrl``, then ``mj_forward`` so
    that every derived quantity describes the stepped state."""
    m = env.mj_model
    d = mujoco.MjData(m)
    d.qpos[:], d.qvel[:], d.ctrl[:] = qpos, qvel, ctrl
    for _ in range(env.n_substeps):
        mujoco.mj_step(m, d)
    mujoco.mj_forward(m, d)
    return d


def c_state_obs(task: str, datas: list[mujoco.MjData]) -> np.ndarray:
    """goalax's observation function applied to the C engine's data (``mjx.put_data``)."""
    env = env_of(task)
    batched = jax.tree.map(
        lambda *xs: jnp.stack(xs), *[mjx.put_data(env.mj_model, d) for d in datas]
    )
    return np.asarray(programs(task).state_obs(batched))


def reachable_states(task: str, key: jax.Array, num: int = NUM, steps: int = 12):
    """``num`` states after ``steps`` random actions from fresh resets, stacked."""
    reset, step = programs(task).reset, programs(task).step
    env = env_of(task)
    reset_key, action_key = jax.random.split(key)
    state = reset(jax.random.split(reset_key, num))
    for k in jax.random.split(action_key, steps):
        state = step(state, jax.random.uniform(k, (num, env.action_size), minval=-1, maxval=1))
    return state


def assert_close(ours, theirs, what: str) -> None:
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    error = np.abs(ours - theirs) - (ATOL + RTOL * np.abs(theirs))
    worst = np.unravel_index(np.argmax(error), error.shape)
    assert (error <= 0).all(), (
        f"{what}: goalax {ours[worst]} vs MuJoCo {theirs[worst]} at {worst} "
        f"(|diff| {abs(ours[worst] - theirs[worst]):.3g})"
    )


#: A limit that would push a geom deeper than this (m) into another is out of reach: contacts
#: stop the body first (the pusher's shoulder at its lift limit puts the wrist 0.5 m into the
#: table, where float32 and float64 solvers part by 0.03 rad in one step). Deep enough to keep
#: the shallower presses of a cheetah's legs into the floor.
UNREACHABLE_DEPTH = 0.1


def deepest_contact(m: mujoco.MjModel, qpos: np.ndarray) -> float:
    """Penetration (m, >= 0) of the deepest contact at ``qpos``, by MuJoCo's C engine."""
    d = mujoco.MjData(m)
    d.qpos[:] = qpos
    mujoco.mj_forward(m, d)
    return max((-c.dist for c in d.contact[: d.ncon]), default=0.0)


def with_joint_limits(env: MjxGoalEnv, state):
    """The same states with each limited hinge/slide joint of the first envs at its limit and
    moving into it (the limit constraint acts during the step), where contacts let it get there
    (``UNREACHABLE_DEPTH``)."""
    m = env.mj_model
    qpos, qvel = np.array(state.pipeline_state.qpos), np.array(state.pipeline_state.qvel)
    row = 0
    for j in range(m.njnt):
        if not m.jnt_limited[j] or m.jnt_type[j] not in (2, 3):  # slide, hinge
            continue
        low, high = m.jnt_range[j]
        for side, value, speed in ((0, low, -3.0), (1, high, 3.0)):
            i = (row + side) % qpos.shape[0]
            pressed = qpos[i].copy()
            pressed[m.jnt_qposadr[j]] = value - 0.01 * np.sign(speed)
            if deepest_contact(m, pressed) > max(UNREACHABLE_DEPTH, deepest_contact(m, qpos[i])):
                continue
            qpos[i] = pressed
            qvel[i, m.jnt_dofadr[j]] = speed
        row += 2
    return qpos, qvel


#: Rows of the one-step batch whose first puck touches the pusher arm's wrist (the last ones:
#: their joint-limit cases are the pucks' slides, which hold the pucks metres away).
PUCK_CONTACT_ROWS = 2
#: The wrist's crossbar this far above the puck's centre, still level with its side: lower, the
#: tilted wrist's fingers dig into the table.
CROSSBAR_ABOVE_PUCK = 0.03


def with_puck_contact(env: MjxPusher, qpos: np.ndarray) -> None:
    """Pushers: the last ``PUCK_CONTACT_ROWS`` states with the arm lowered by its shoulder to the
    puck's side and the first puck 5 mm into the wrist's crossbar from in front (the contact
    acts during the step); asserts MuJoCo finds that contact."""
    m = env.mj_model
    suffix = "1" if env.n_pucks == 2 else ""
    puck, bar = m.body(f"object{suffix}").id, m.geom("r_wrist_roll1").id
    lift = m.joint("r_shoulder_lift_joint").qposadr[0]
    slides = [m.joint(f"obj{suffix}_slide{axis}").qposadr[0] for axis in ("x", "y")]
    d = mujoco.MjData(m)
    for i in range(qpos.shape[0] - PUCK_CONTACT_ROWS, qpos.shape[0]):
        d.qpos[:] = qpos[i]
        d.qpos[:7] = 0.0
        heights = []
        for angle in np.linspace(0.0, 1.3, 53):
            d.qpos[lift] = angle
            mujoco.mj_kinematics(m, d)
            heights.append(abs(d.geom_xpos[bar, 2] - m.body_pos[puck, 2] - CROSSBAR_ABOVE_PUCK))
        d.qpos[lift] = np.linspace(0.0, 1.3, 53)[int(np.argmin(heights))]
        mujoco.mj_kinematics(m, d)
        reach = m.geom_size[bar, 0] + 0.05 - 0.005  # the radii of crossbar and puck, less 5 mm
        target = d.geom_xpos[bar, :2] + np.array([reach, 0.0])
        d.qpos[slides] = target - m.body_pos[puck, :2]
        mujoco.mj_forward(m, d)
        touching = [
            c for c in d.contact[: d.ncon] if bar in c.geom and puck in m.geom_bodyid[c.geom]
        ]
        assert touching, f"row {i}: the puck does not touch the wrist"
        qpos[i] = d.qpos


@pytest.mark.parametrize("task", MJX_BASE_TASKS)
def test_one_step_equals_mujoco_c_engine(task):
    env, run = env_of(task), programs(task)
    state = reachable_states(task, jax.random.PRNGKey(7))
    qpos, qvel = with_joint_limits(env, state)
    if isinstance(env, MjxPusher):
        with_puck_contact(env, qpos)
    physics = run.init(jnp.asarray(qpos), jnp.asarray(qvel))
    state = state.replace(pipeline_state=physics)
    rng = np.random.default_rng(3)
    # Beyond [-1, 1] too: the env clips, then maps onto the control range.
    actions = rng.uniform(-1.5, 1.5, (qpos.shape[0], env.action_size)).astype(np.float32)
    stepped = run.step(state, jnp.asarray(actions))
    ctrls = np.asarray(run.ctrl(jnp.asarray(actions)))
    datas = [c_step(env, qpos[i], qvel[i], ctrls[i]) for i in range(qpos.shape[0])]
    assert_close(stepped.pipeline_state.qpos, np.stack([d.qpos for d in datas]), f"{task} qpos")
    assert_close(stepped.pipeline_state.qvel, np.stack([d.qvel for d in datas]), f"{task} qvel")
    state_obs = np.asarray(stepped.obs[:, : env.state_dim])
    assert_close(state_obs, c_state_obs(task, datas), f"{task} observation")


def c_trajectory(env: MjxGoalEnv, qpos, qvel, ctrls) -> np.ndarray:
    """``[T, nq]`` positions after each env step of the C engine under controls ``[T, nu]``."""
    m = env.mj_model
    d = mujoco.MjData(m)
    d.qpos[:], d.qvel[:] = qpos, qvel
    out = []
    for ctrl in ctrls:
        d.ctrl[:] = ctrl
        for _ in range(env.n_substeps):
            mujoco.mj_step(m, d)
        out.append(d.qpos.copy())
    return np.stack(out)


@pytest.mark.parametrize("task", MJX_BASE_TASKS)
def test_trajectory_equals_mujoco_c_engine(task):
    """50 steps from a reset: goalax (float32) stays within what float noise alone makes of the
    C engine's own trajectory (runs from starts 1e-6 apart; contacts amplify such noise, so a
    fixed tolerance would fail a correct cheetah and pass a wrong reacher)."""
    env, run = env_of(task), programs(task)
    state = run.reset(jax.random.split(jax.random.PRNGKey(11), NUM))
    qpos = np.asarray(state.pipeline_state.qpos[0], np.float64)
    qvel = np.asarray(state.pipeline_state.qvel[0], np.float64)
    actions = np.random.default_rng(5).uniform(-1, 1, (TRAJECTORY_STEPS, NUM, env.action_size))
    actions = jnp.asarray(actions, jnp.float32)
    ours, ctrls = [], []
    for t in range(TRAJECTORY_STEPS):
        state = run.step(state, actions[t])
        ours.append(np.asarray(state.pipeline_state.qpos[0]))
        ctrls.append(np.asarray(run.ctrl(actions[t]))[0])
    theirs = c_trajectory(env, qpos, qvel, ctrls)
    rng = np.random.default_rng(0)
    noisy = [
        c_trajectory(env, qpos + 1e-6 * rng.standard_normal(qpos.shape), qvel, ctrls)
        for _ in range(4)
    ]
    envelope = np.maximum.accumulate(np.max([np.abs(n - theirs).max(axis=1) for n in noisy], 0))
    error = np.abs(np.stack(ours) - theirs).max(axis=1)
    allowed = 10 * (ATOL + RTOL * np.abs(theirs).max()) + 3 * envelope
    first = int(np.argmax(error > allowed))
    assert (error <= allowed).all(), (
        f"{task}: off the C engine's trajectory at step {first + 1}: |diff| {error[first]:.3g} > "
        f"allowed {allowed[first]:.3g}"
    )


def test_reacher_fingertip_is_mujocos_own_site_and_velocity():
    """The observation's fingertip position is the fingertip's place in MuJoCo, and its velocity
    is the reference's: the second link's frame velocity (``mj_objectVelocity`` of the body's
    frame) carried along the unrotated offset (0.11, 0, 0)."""
    env = env_of("reacher")
    state = reachable_states("reacher", jax.random.PRNGKey(2))
    m = env.mj_model
    for i in range(4):
        d = mujoco.MjData(m)
        d.qpos[:] = np.asarray(state.pipeline_state.qpos[i])
        d.qvel[:] = np.asarray(state.pipeline_state.qvel[i])
        mujoco.mj_forward(m, d)
        velocity = np.zeros(6)
        link = m.body("body1").id
        mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_XBODY, link, velocity, 0)
        tip_velocity = velocity[3:] + np.cross(velocity[:3], [0.11, 0.0, 0.0])
        tip = d.xpos[link] + d.xmat[link].reshape(3, 3) @ np.array([0.11, 0.0, 0.0])
        obs = np.asarray(state.obs[i])
        assert_close(obs[4:7], tip, "fingertip position")
        assert_close(obs[7:10], tip_velocity, "fingertip velocity")


@pytest.mark.parametrize("task", MJX_BASE_TASKS)
def test_goal_contract_on_the_mjx_base(task):
    env, run = env_of(task), programs(task)
    state = run.reset(jax.random.split(jax.random.PRNGKey(0), NUM))
    assert state.obs.shape == (NUM, env.observation_size)
    # Within float32 rounding: at the suite's low XLA optimisation (conftest.py) the reset's
    # goal is computed in two fusions (observation, info) that round apart by up to 1 ulp
    # (pusher_reacher); the default compile gives equal values.
    np.testing.assert_allclose(state.obs[:, env.state_dim :], state.info["goal"], rtol=1e-6)
    achieved = env.achieved_goal(state.obs[:, : env.state_dim])
    expected = env.goal_metrics(achieved, state.info["goal"])  # pusher2: the farther puck's
    np.testing.assert_allclose(state.metrics["dist"], expected["dist"], rtol=1e-6)
    assert set(state.metrics) >= {"dist", "success", "success_easy"}
    assert env.qpos(state.pipeline_state).shape == (NUM, env.mj_model.nq)
    nxt = run.step(state, jnp.zeros((NUM, env.action_size)))
    assert np.isfinite(np.asarray(nxt.obs)).all() and (np.asarray(nxt.done) == 0).all()


def test_an_impl_that_cannot_run_here_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="--impl must be one of jax, warp"):
        check_impl("cuda")
    if jax.default_backend() != "gpu":
        with pytest.raises(ConfigError, match="NVIDIA GPUs only"):
            check_impl("warp")
    check_impl("jax")
