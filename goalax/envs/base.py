"""The GoalEnv contract every goalax task satisfies.

A GoalEnv is a pure-function env (``reset(key) -> State``, ``step(state, action) -> State``) whose
observation is ``concat(state_obs, goal)``. The learner never needs task-specific code: it reads
``state_dim``, ``goal_indices`` and ``goal_dim`` to split observations and to turn a stored state
into a goal (``state_obs[..., goal_indices]``).

Contract for ``State`` (checked by ``tests/test_envs.py`` for every registered task):
- ``obs``: ``[state_dim + goal_dim]`` float32, the goal is the last ``goal_dim`` entries.
- ``info["goal"]``: ``[goal_dim]`` the goal of the current episode (fresh at every ``reset``).
- ``metrics``: ``dist`` (distance of the goal part of the state to the goal), ``success``
  (``dist < goal_threshold``) and ``success_easy`` (``dist < success_easy_threshold``), float32.
- ``reward``: ``success`` (sparse, default) or ``-dist`` when built with ``dense_reward=True``.
- ``done``: 1.0 only on true termination (``terminated``: the ant and humanoid families end when
  the torso leaves the reference's healthy height range); time limits are added by the training
  wrappers so that truncation and termination stay separate.
"""

from __future__ import annotations

import abc
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

__all__ = ["GoalEnv", "State", "goal_metrics"]


@struct.dataclass
class State:
    """One env's state: ``pipeline_state`` is the physics (``mujoco.mjx.Data``, a brax pipeline
    state, or a task's own pytree); the other fields are what agents and the loop read.

    goalax's own type (not brax's, whose env classes are unmaintained); same fields and pytree
    layout as brax's ``State``, so checkpoints written before the change restore unchanged.
    """

    pipeline_state: Any
    obs: jax.Array
    reward: jax.Array
    done: jax.Array
    metrics: dict[str, jax.Array] = struct.field(default_factory=dict)
    info: dict[str, Any] = struct.field(default_factory=dict)


class GoalEnv(abc.ABC):
    """Base class for goal-conditioned tasks; subclasses set the attributes in ``__init__``."""

    #: Number of entries of the state part of the observation.
    state_dim: int
    #: Entries of ``state_obs`` that a goal specifies (e.g. torso xy).
    goal_indices: tuple[int, ...]
    #: Distance below which the goal counts as reached.
    goal_threshold: float
    #: Looser threshold for ``success_easy``.
    success_easy_threshold: float
    #: Default episode length (time limit) for training and evaluation.
    episode_length: int
    #: Physics backend name ("spring", "generalized", "positional", "mjx" or "jax").
    backend: str
    #: Number of action entries (each in [-1, 1]).
    action_size: int
    #: Reward is ``-dist`` instead of the sparse success indicator.
    dense_reward: bool = False

    @abc.abstractmethod
    def reset(self, rng: jax.Array) -> State:
        """A fresh episode: start state and a fresh goal drawn from ``rng``."""

    @abc.abstractmethod
    def step(self, state: State, action: jax.Array) -> State:
        """One env step under ``action [action_size]`` (in [-1, 1])."""

    @property
    def unwrapped(self) -> GoalEnv:
        return self

    @property
    def goal_dim(self) -> int:
        return len(self.goal_indices)

    @property
    def observation_size(self) -> int:
        return self.state_dim + self.goal_dim

    def mujoco_model(self) -> Any:
        """The task's ``mujoco.MjModel`` (drawing, comparisons with MuJoCo), ``None`` when its
        physics is not a MuJoCo model (``point``)."""
        return None

    def qpos(self, pipeline_state: Any) -> jax.Array:
        """``[nq]`` MuJoCo joint positions of a physics state (what a drawing of it needs)."""
        raise NotImplementedError(f"{type(self).__name__} has no MuJoCo joint positions")

    def qvel(self, pipeline_state: Any) -> jax.Array:
        """``[nv]`` MuJoCo joint velocities of a physics state."""
        raise NotImplementedError(f"{type(self).__name__} has no MuJoCo joint velocities")

    def physics_at(self, qpos: jax.Array, qvel: jax.Array) -> Any:
        """The physics state at joint positions and velocities (everything derived from them)."""
        raise NotImplementedError(f"{type(self).__name__} has no MuJoCo physics")

    def advance(self, pipeline_state: Any, action: jax.Array) -> Any:
        """One env step of the physics under ``action`` in [-1, 1] (clipped there first)."""
        raise NotImplementedError(f"{type(self).__name__} has no MuJoCo physics")

    def achieved_goal(self, state_obs: jnp.ndarray) -> jnp.ndarray:
        """``[..., state_dim] -> [..., goal_dim]``: the part of a state a goal talks about."""
        return state_obs[..., jnp.asarray(self.goal_indices)]

    @abc.abstractmethod
    def state_obs(self, pipeline_state) -> jnp.ndarray:
        """``[state_dim]`` state part of the observation of a physics state."""

    def terminated(self, pipeline_state) -> jnp.ndarray:
        """``[]`` float32, 1.0 when ``pipeline_state`` ends the episode; goal tasks that only end
        at the time limit keep this default."""
        del pipeline_state
        return jnp.zeros((), jnp.float32)

    def make_state(
        self, pipeline_state, goal: jnp.ndarray, info: dict, state_obs: jnp.ndarray | None = None
    ) -> State:
        """The ``State`` of a physics state pursuing ``goal``: observation, reward, metrics and
        ``done`` (from ``terminated``) computed one way for every task. ``state_obs``: given by a
        task whose observation reads more than the physics state (the humanoid's control)."""
        if state_obs is None:
            state_obs = self.state_obs(pipeline_state)
        state_obs = state_obs.astype(jnp.float32)
        reward, metrics = self.reward_and_metrics(state_obs, goal)
        return State(
            pipeline_state=pipeline_state,
            obs=jnp.concatenate([state_obs, goal]),
            reward=reward,
            done=self.terminated(pipeline_state),
            metrics=metrics,
            info=info,
        )

    def goal_metrics(self, achieved: jnp.ndarray, goal: jnp.ndarray) -> dict[str, jnp.ndarray]:
        """``dist``, ``success``, ``success_easy`` of achieved goals ``[..., goal_dim]`` against
        goals: the one definition of a task's success, which relabelled (HER) rewards use too.
        Tasks whose success is not one distance (``pusher2``: every puck) override this."""
        return goal_metrics(achieved, goal, self.goal_threshold, self.success_easy_threshold)

    def goal_reward(
        self, achieved: jnp.ndarray, goal: jnp.ndarray
    ) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
        """Reward (sparse success, or ``-dist`` with ``dense_reward``) and ``goal_metrics``."""
        metrics = self.goal_metrics(achieved, goal)
        reward = -metrics["dist"] if self.dense_reward else metrics["success"]
        return reward, metrics

    def reward_and_metrics(
        self, state_obs: jnp.ndarray, goal: jnp.ndarray
    ) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
        """Reward and the standard metrics of a state with respect to a goal."""
        return self.goal_reward(self.achieved_goal(state_obs), goal)

    def with_goal(self, state: State, goal: jnp.ndarray) -> State:
        """The same (unbatched) state pursuing ``goal [goal_dim]`` instead of its own goal.

        Evaluation on fixed goal sets resets normally and then swaps the goal, so every task
        supports named goal sets without a second reset path. Tasks that draw the goal in the
        physics (a marker body) may override this to move the marker too.
        """
        goal = jnp.asarray(goal, jnp.float32)
        state_obs = state.obs[..., : self.state_dim]
        reward, metrics = self.reward_and_metrics(state_obs, goal)
        return state.replace(
            obs=jnp.concatenate([state_obs, goal], axis=-1),
            reward=reward,
            metrics={**state.metrics, **metrics},
            info={**state.info, "goal": goal},
        )

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        """Named fixed evaluation goals ``{name: [n, goal_dim]}`` (e.g. ``far`` maze cells)."""
        return {}


def goal_metrics(
    achieved: jnp.ndarray, goal: jnp.ndarray, threshold: float, easy_threshold: float
) -> dict[str, jnp.ndarray]:
    """``dist``, ``success`` and ``success_easy`` for ``[..., goal_dim]`` inputs."""
    dist = jnp.linalg.norm(achieved - goal, axis=-1)
    return {
        "dist": dist,
        "success": (dist < threshold).astype(jnp.float32),
        "success_easy": (dist < easy_threshold).astype(jnp.float32),
    }
