"""``cheetah``: the planar half cheetah moves its torso to ``x = 5``.

The reference's task (JaxGCRL 0.2.8 ``cheetah``) on goalax's own ``assets/half_cheetah.xml``: the
cheetah, scaled to 14 kg together with a target marker on a slide joint, as the reference's model
is (see the file). state_obs ``[18]``: ``q [9]`` (root ``x, z``, pitch, 6 joint angles) and
``qd [9]`` of the cheetah; the goal part is the root ``x`` (entry 0). The goal is ``x = 5`` at
every reset, as the reference's. Never terminates (a flipped cheetah can still crawl).

Physics per backend, as the reference's: ``mjx`` (the default) steps the file's model, 0.01 s x 5;
``spring`` and ``positional`` run 0.003125 s x 16 with brax's gears for them.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import brax
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from brax.io import mjcf

from goalax.envs import notices
from goalax.envs.base import State
from goalax.envs.brax_base import GoalPipelineEnv

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


class Cheetah(GoalPipelineEnv):
    """Torso ``x`` to 5; never terminates."""

    backends = ("mjx", "spring", "generalized", "positional")

    def __init__(
        self,
        *,
        episode_length: int | None = None,
        backend: str | None = None,
        dense_reward: bool = False,
    ):
        backend = backend or self.backends[0]
        sys, n_frames = cheetah_system(backend)
        super().__init__(sys=sys, backend=backend, n_frames=n_frames)
        self.state_dim = 18
        self.goal_indices = (0,)
        self.goal_threshold = 0.5
        self.success_easy_threshold = 2.0
        self.episode_length = 1000 if episode_length is None else episode_length
        self.dense_reward = dense_reward

    def reset(self, rng: jax.Array) -> State:
        key_q, key_qd = jax.random.split(rng)
        # q and qd hold the cheetah's 9 entries, then the target's slide joint.
        q = self.sys.init_q + jax.random.uniform(key_q, (10,), jnp.float32, -0.1, 0.1)
        qd = 0.1 * jax.random.normal(key_qd, (10,), jnp.float32)
        goal = jnp.full((1,), GOAL_X, jnp.float32)
        q, qd = q.at[9:].set(goal), qd.at[9:].set(0.0)
        return self.make_state(self.pipeline_init(q, qd), goal, {"goal": goal})

    def with_goal(self, state: State, goal: jax.Array) -> State:
        """Swap the goal and move the target marker there (the cheetah is untouched)."""
        goal = jnp.asarray(goal, jnp.float32)
        physics = state.pipeline_state
        q, qd = physics.q.at[9:].set(goal), physics.qd.at[9:].set(0.0)
        return super().with_goal(state.replace(pipeline_state=self.pipeline_init(q, qd)), goal)

    def state_obs(self, pipeline_state) -> jax.Array:
        return jnp.concatenate([pipeline_state.q[:9], pipeline_state.qd[:9]])

    def goal_marker(self, goal) -> np.ndarray:
        """Render marker: the goal ``x`` at torso height."""
        return np.array([float(np.asarray(goal)[0]), 0.0, 0.7])

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        """``tasks``: the training goal (5) and four others between 3 and 7, where a policy that
        learned from its own reached states (CRL's relabelled goals) can also be asked to go."""
        return {"tasks": np.array([[3.0], [4.0], [5.0], [6.0], [7.0]], np.float32)}
