"""The GoalEnv contract every goalax task satisfies.

A GoalEnv is a brax ``Env`` (``reset(key) -> State``, ``step(state, action) -> State``) whose
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
import os

import brax
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from brax.envs.base import Env, PipelineEnv, State

__all__ = [
    "GoalEnv",
    "GoalPipelineEnv",
    "State",
    "brax_asset",
    "goal_metrics",
    "mjx_fast_solver",
]


class GoalEnv(Env):
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
    #: Reward is ``-dist`` instead of the sparse success indicator.
    dense_reward: bool = False

    @property
    def goal_dim(self) -> int:
        return len(self.goal_indices)

    @property
    def observation_size(self) -> int:
        return self.state_dim + self.goal_dim

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


def brax_asset(name: str) -> str:
    """The text of one of brax's bundled MJCF files (``ant.xml``, ``humanoid.xml``, ...)."""
    path = os.path.join(os.path.dirname(brax.__file__), "envs", "assets", name)
    with open(path) as f:
        return f.read()


def mjx_fast_solver(sys: brax.System) -> brax.System:
    """Newton with one iteration, as brax's own locomotion envs use on MJX."""
    return sys.tree_replace(
        {
            "opt.solver": mujoco.mjtSolver.mjSOL_NEWTON,
            "opt.disableflags": mujoco.mjtDisableBit.mjDSBL_EULERDAMP,
            "opt.iterations": 1,
            "opt.ls_iterations": 4,
        }
    )


class GoalPipelineEnv(GoalEnv, PipelineEnv):
    """A brax ``PipelineEnv`` task: subclasses define ``state_obs`` and ``reset``.

    A task with a ``healthy_z_range`` terminates, as the reference's ant and humanoid tasks do,
    when the torso height leaves that open interval and ``termination`` is on. That is more than
    parity: in brax's ant only the feet collide with the floor, and a fallen humanoid passes
    through it, so without termination the episode goes on in non-physical states.

    The height is the root free joint's ``q[2]`` after the step, the number the observation
    shows; the reference reads link 0's ``x.pos``, which brax's MJX pipeline computes before the
    step's integration, so it terminates one step late.
    """

    #: ``(low, high)`` torso heights of a healthy body; ``None``: the task never terminates.
    healthy_z_range: tuple[float, float] | None = None
    #: End the episode when the torso leaves ``healthy_z_range`` (set by the constructor).
    termination: bool = False

    def terminated(self, pipeline_state) -> jax.Array:
        if self.healthy_z_range is None or not self.termination:
            return super().terminated(pipeline_state)
        low, high = self.healthy_z_range
        torso_z = pipeline_state.q[2]
        return ((torso_z < low) | (torso_z > high)).astype(jnp.float32)

    def step(self, state: State, action: jax.Array) -> State:
        pipeline_state = self.pipeline_step(state.pipeline_state, jnp.clip(action, -1.0, 1.0))
        return self.make_state(pipeline_state, state.info["goal"], state.info)
