"""``point``: a pure-JAX 2D point mass that moves to a goal position (no MuJoCo).

The toy task every agent is tested on: it compiles in about a second and a goal-conditioned agent
learns it in seconds. The action is a velocity command, so the dynamics are first order and
perfectly scaled: ``vel = max_speed * clip(action)``, ``pos += dt * vel``; the arena
``[-1, 1]^2`` clips the position and zeroes the velocity component pushing into a wall.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from goalax.envs.base import GoalEnv, State

ARENA_HALF_WIDTH = 1.0


@struct.dataclass
class PointPhysics:
    """Physical state of the point mass: ``pos [2]``, ``vel [2]`` (float32)."""

    pos: jax.Array
    vel: jax.Array


class PointEnv(GoalEnv):
    """Point mass in ``[-1, 1]^2``; state_obs ``[x, y, vx, vy]``, goal ``[x, y]``."""

    backends = ("jax",)

    def __init__(
        self,
        *,
        episode_length: int | None = None,
        backend: str | None = None,
        dense_reward: bool = False,
        dt: float = 0.1,
        max_speed: float = 1.0,
        start_noise: float = 0.1,
    ):
        self.state_dim = 4
        self.goal_indices = (0, 1)
        self.goal_threshold = 0.1
        self.success_easy_threshold = 0.3
        self.episode_length = 50 if episode_length is None else episode_length
        self._backend = backend or "jax"
        self.dense_reward = dense_reward
        self.dt = dt
        self.max_speed = max_speed
        self.start_noise = start_noise

    @property
    def backend(self) -> str:
        return self._backend

    @property
    def action_size(self) -> int:
        return 2

    def reset(self, rng: jax.Array) -> State:
        key_start, key_goal = jax.random.split(rng)
        pos = jax.random.uniform(key_start, (2,), jnp.float32, -self.start_noise, self.start_noise)
        goal = jax.random.uniform(key_goal, (2,), jnp.float32, -ARENA_HALF_WIDTH, ARENA_HALF_WIDTH)
        physics = PointPhysics(pos=pos, vel=jnp.zeros(2, jnp.float32))
        return self.make_state(physics, goal, info={"goal": goal})

    def step(self, state: State, action: jax.Array) -> State:
        vel = self.max_speed * jnp.clip(action.astype(jnp.float32), -1.0, 1.0)
        pos = state.pipeline_state.pos + self.dt * vel
        clipped = jnp.clip(pos, -ARENA_HALF_WIDTH, ARENA_HALF_WIDTH)
        # A wall stops the motion into it but not the motion along it.
        physics = PointPhysics(pos=clipped, vel=jnp.where(clipped != pos, 0.0, vel))
        return self.make_state(physics, state.info["goal"], info=state.info)

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        """``ring``: 8 goals every 45 degrees at distance 0.8 from the centre."""
        angles = np.deg2rad(np.arange(0.0, 360.0, 45.0))
        ring = 0.8 * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
        return {"ring": ring.astype(np.float32)}

    def state_obs(self, physics: PointPhysics) -> jax.Array:
        """``[4]``: ``[x, y, vx, vy]``."""
        return jnp.concatenate([physics.pos, physics.vel])
