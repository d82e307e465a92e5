"""``cheetah``: the planar half cheetah moves its torso to a goal ``x``.

Physics come from brax's bundled ``half_cheetah.xml`` with brax's per-backend settings.
state_obs ``[18]``: ``q [9]`` (root ``x, z``, pitch, 6 joint angles) and ``qd [9]``; the goal part
is the root ``x`` (entry 0). The predecessor's goal was always ``x = 5``; here every reset draws
``x`` uniformly in [3, 7] (same mean), so goals differ between resets and the goal is a real input.
Never terminates (a flipped cheetah can still crawl).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from brax.io import mjcf

from goalax.envs.base import GoalPipelineEnv, State, brax_asset

GOAL_RANGE = (3.0, 7.0)
SPRING_GEAR = (120.0, 90.0, 60.0, 120.0, 100.0, 100.0)


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
        sys = mjcf.loads(brax_asset("half_cheetah.xml"))
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
