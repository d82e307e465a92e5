"""GoalEnv on brax's physics pipelines (``spring``, ``generalized``, ``positional``, brax's MJX).

brax's systems, pipelines and env classes are unmaintained; the tasks still on them move to
goalax's own MJX base (``goalax.envs.mjx_base``) task by task, and this module goes with the last.
"""

from __future__ import annotations

import brax
import jax
import jax.numpy as jnp
import mujoco
from brax.envs.base import PipelineEnv

from goalax.envs.base import GoalEnv, State

__all__ = ["GoalPipelineEnv", "mjx_fast_solver"]


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

    def mujoco_model(self) -> mujoco.MjModel:
        return self.sys.mj_model

    def qpos(self, pipeline_state) -> jax.Array:
        """brax's ``q`` has MuJoCo's ``qpos`` layout for these models."""
        return pipeline_state.q

    def qvel(self, pipeline_state) -> jax.Array:
        return pipeline_state.qd

    def physics_at(self, qpos: jax.Array, qvel: jax.Array):
        return self.pipeline_init(qpos, qvel)

    def advance(self, pipeline_state, action: jax.Array):
        return self.pipeline_step(pipeline_state, jnp.clip(action, -1.0, 1.0))

    def terminated(self, pipeline_state) -> jax.Array:
        if self.healthy_z_range is None or not self.termination:
            return super().terminated(pipeline_state)
        low, high = self.healthy_z_range
        torso_z = pipeline_state.q[2]
        return ((torso_z < low) | (torso_z > high)).astype(jnp.float32)

    def step(self, state: State, action: jax.Array) -> State:
        pipeline_state = self.advance(state.pipeline_state, action)
        return self.make_state(pipeline_state, state.info["goal"], state.info)
