"""``cheetah``: the planar half cheetah moves its torso to ``x = 5``.

The reference's task (JaxGCRL 0.2.8 ``cheetah``) on goalax's own ``assets/half_cheetah.xml``: the
cheetah, scaled to 14 kg together with a target marker on a slide joint, as the reference's model
is (see the file). state_obs ``[18]``: ``q [9]`` (root ``x, z``, pitch, 6 joint angles) and
``qd [9]`` of the cheetah; the goal part is the root ``x`` (entry 0). The goal is ``x = 5`` at
every reset, as the reference's. Never terminates (a flipped cheetah can still crawl).

Physics per backend, as the reference's: ``mjx`` (the default) steps the file's model, 0.01 s x 5,
on goalax's own MJX base (``MjxCheetah``; the reference stepped the same model through brax's MJX
pipeline); ``spring``, ``generalized`` and ``positional`` are brax's pipelines (``Cheetah``),
the maximal-coordinate ones at 0.003125 s x 16 with brax's gears for them.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import brax
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from brax.io import mjcf

from goalax.envs import notices
from goalax.envs.base import State
from goalax.envs.brax_base import GoalPipelineEnv
from goalax.envs.mjx_base import MjxGoalEnv

GOAL_X = 5.0
ASSET = os.path.join(os.path.dirname(__file__), "assets", "half_cheetah.xml")


class _Physics(NamedTuple):
    """Per-backend integration (env dt is ``timestep * n_frames`` = 0.05 s for all)."""

    timestep: float
    n_frames: int
    #: Motor gears; ``None``: the file's.
    gear: tuple[float, ...] | None = None


_FILE = _Physics(timestep=0.01, n_frames=5)
_MAXIMAL = _Physics(timestep=0.003125, n_frames=16, gear=(120.0, 90.0, 60.0, 120.0, 100.0, 100.0))
_PHYSICS = {"mjx": _FILE, "generalized": _FILE, "spring": _MAXIMAL, "positional": _MAXIMAL}
#: Backends, default first; ``mjx`` is goalax's own MJX base, the others brax's pipelines.
BACKENDS = ("mjx", "spring", "generalized", "positional")


def cheetah_system(backend: str) -> tuple[brax.System, int]:
    """The brax system of ``assets/half_cheetah.xml`` with ``backend``'s settings, and its
    substeps per env step. brax's own step of ``mjcf.loads`` (fusing jointless bodies) comes
    first, as there."""
    physics = _PHYSICS[backend]
    with open(ASSET) as f:
        model = mujoco.MjModel.from_xml_string(mjcf.fuse_bodies(f.read()))
    sys = notices.load_model(model).tree_replace({"opt.timestep": physics.timestep})
    if physics.gear is not None:
        sys = sys.replace(actuator=sys.actuator.replace(gear=jnp.asarray(physics.gear)))
    return sys, physics.n_frames


class _CheetahTask:
    """The task whatever steps it; the physics base provides ``physics_at``, ``advance``,
    ``qpos`` and ``qvel``."""

    def _set_task(self, episode_length: int | None, dense_reward: bool) -> None:
        self.state_dim = 18
        self.goal_indices = (0,)
        self.goal_threshold = 0.5
        self.success_easy_threshold = 2.0
        self.episode_length = 1000 if episode_length is None else episode_length
        self.dense_reward = dense_reward

    def reset(self, rng: jax.Array) -> State:
        key_q, key_qd = jax.random.split(rng)
        # q and qd hold the cheetah's 9 entries, then the target's slide joint.
        q = self._rest_q + jax.random.uniform(key_q, (10,), jnp.float32, -0.1, 0.1)
        qd = 0.1 * jax.random.normal(key_qd, (10,), jnp.float32)
        goal = jnp.full((1,), GOAL_X, jnp.float32)
        q, qd = q.at[9:].set(goal), qd.at[9:].set(0.0)
        return self.make_state(self.physics_at(q, qd), goal, {"goal": goal})

    def step(self, state: State, action: jax.Array) -> State:
        physics = self.advance(state.pipeline_state, action)
        return self.make_state(physics, state.info["goal"], state.info)

    def with_goal(self, state: State, goal: jax.Array) -> State:
        """Swap the goal and move the target marker there (the cheetah is untouched)."""
        goal = jnp.asarray(goal, jnp.float32)
        physics = state.pipeline_state
        q = self.qpos(physics).at[9:].set(goal)
        qd = self.qvel(physics).at[9:].set(0.0)
        return super().with_goal(state.replace(pipeline_state=self.physics_at(q, qd)), goal)

    def state_obs(self, physics: Any) -> jax.Array:
        return jnp.concatenate([self.qpos(physics)[:9], self.qvel(physics)[:9]])

    def goal_marker(self, goal) -> np.ndarray:
        """Render marker: the goal ``x`` at torso height."""
        return np.array([float(np.asarray(goal)[0]), 0.0, 0.7])

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        """``tasks``: the training goal (5) and four others between 3 and 7, where a policy that
        learned from its own reached states (CRL's relabelled goals) can also be asked to go."""
        return {"tasks": np.array([[3.0], [4.0], [5.0], [6.0], [7.0]], np.float32)}


class Cheetah(_CheetahTask, GoalPipelineEnv):
    """Torso ``x`` to 5 on brax's pipelines; never terminates."""

    backends = BACKENDS[1:]

    def __init__(
        self,
        *,
        episode_length: int | None = None,
        backend: str | None = None,
        dense_reward: bool = False,
    ):
        backend = backend or self.backends[0]
        sys, n_frames = cheetah_system(backend)
        GoalPipelineEnv.__init__(self, sys=sys, backend=backend, n_frames=n_frames)
        self._rest_q = sys.init_q
        self._set_task(episode_length, dense_reward)


class MjxCheetah(_CheetahTask, MjxGoalEnv):
    """The same task on goalax's own MJX base (``backend="mjx"``, the default)."""

    backends = BACKENDS[:1]
    observes_bodies = False  # the observation is qpos and qvel

    def __init__(
        self,
        *,
        episode_length: int | None = None,
        dense_reward: bool = False,
        impl: str = "jax",
    ):
        model = mujoco.MjModel.from_xml_path(ASSET)
        model.opt.timestep = _FILE.timestep
        MjxGoalEnv.__init__(self, model, n_substeps=_FILE.n_frames, impl=impl)
        self._rest_q = jnp.asarray(model.qpos0, jnp.float32)
        self._set_task(episode_length, dense_reward)
