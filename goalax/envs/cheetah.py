"""``cheetah``: the planar half cheetah moves its torso to a goal ``x``.

Physics come from brax's bundled ``half_cheetah.xml`` with brax's per-backend settings; its
deprecated ``settotalmass`` compiler attribute is applied by hand (``cheetah_system``).
state_obs ``[18]``: ``q [9]`` (root ``x, z``, pitch, 6 joint angles) and ``qd [9]``; the goal part
is the root ``x`` (entry 0). The predecessor's goal was always ``x = 5``; here every reset draws
``x`` uniformly in [3, 7] (same mean), so goals differ between resets and the goal is a real input.
Never terminates (a flipped cheetah can still crawl).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import brax
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from brax.io import mjcf

from goalax.envs import notices
from goalax.envs.base import GoalPipelineEnv, State, brax_asset

GOAL_RANGE = (3.0, 7.0)
SPRING_GEAR = (120.0, 90.0, 60.0, 120.0, 100.0, 100.0)


def cheetah_system() -> brax.System:
    """The brax system of brax's bundled ``half_cheetah.xml``.

    The file scales its masses with ``<compiler settotalmass="14">``, which MuJoCo compiles with
    a "deprecated" warning on stderr (and a MUJOCO_LOG.TXT in the working directory). As the
    warning advises, the attribute is dropped and its effect applied to the compiled model:
    ``mj_setTotalmass`` scales every body's mass and inertia to the same total, ``mj_setConst``
    recomputes the constants that depend on them, and the two statistics the compiler derives
    from them (mean body mass, mean diagonal inertia), which ``mj_setConst`` leaves alone, are
    set as the compiler sets them: the system equals the old compile's (tested). brax's own step
    of ``mjcf.loads`` (fusing jointless bodies) comes first, as there.
    """
    root = ET.fromstring(brax_asset("half_cheetah.xml"))
    total_mass = None
    for compiler in root.iter("compiler"):
        total_mass = compiler.attrib.pop("settotalmass", total_mass)
    model = mujoco.MjModel.from_xml_string(mjcf.fuse_bodies(ET.tostring(root, encoding="unicode")))
    if total_mass is not None:
        mujoco.mj_setTotalmass(model, float(total_mass))
        mujoco.mj_setConst(model, mujoco.MjData(model))
        model.stat.meanmass = float(np.mean(model.body_mass[1:]))  # the world body excluded
        model.stat.meaninertia = float(np.mean(model.dof_M0))  # diagonal of M at qpos0
    return notices.load_model(model)


class Cheetah(GoalPipelineEnv):
    """Torso ``x`` to a goal in [3, 7]; never terminates."""

    backends = ("spring", "mjx", "generalized", "positional")

    def __init__(
        self,
        *,
        episode_length: int | None = None,
        backend: str | None = None,
        dense_reward: bool = False,
    ):
        backend = backend or self.backends[0]
        sys = cheetah_system()
        n_frames = 5
        if backend in ("spring", "positional"):
            sys = sys.tree_replace({"opt.timestep": 0.003125})
            sys = sys.replace(actuator=sys.actuator.replace(gear=jnp.asarray(SPRING_GEAR)))
            n_frames = 16
        super().__init__(sys=sys, backend=backend, n_frames=n_frames)
        self.state_dim = 18
        self.goal_indices = (0,)
        self.goal_threshold = 0.5
        self.success_easy_threshold = 2.0
        self.episode_length = 1000 if episode_length is None else episode_length
        self.dense_reward = dense_reward

    def reset(self, rng: jax.Array) -> State:
        key_q, key_qd, key_goal = jax.random.split(rng, 3)
        q = self.sys.init_q + jax.random.uniform(key_q, (9,), jnp.float32, -0.1, 0.1)
        qd = 0.1 * jax.random.normal(key_qd, (9,), jnp.float32)
        goal = jax.random.uniform(key_goal, (1,), jnp.float32, *GOAL_RANGE)
        return self.make_state(self.pipeline_init(q, qd), goal, {"goal": goal})

    def state_obs(self, pipeline_state) -> jax.Array:
        return jnp.concatenate([pipeline_state.q, pipeline_state.qd])

    def goal_marker(self, goal) -> np.ndarray:
        """Render marker: the goal ``x`` at torso height."""
        return np.array([float(np.asarray(goal)[0]), 0.0, 0.7])

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        return {"tasks": np.array([[3.0], [4.0], [5.0], [6.0], [7.0]], np.float32)}
