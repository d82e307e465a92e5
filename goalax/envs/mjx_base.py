"""goalax's own physics base: a GoalEnv stepped by MuJoCo XLA (``mujoco.mjx``).

Written here rather than taken from brax (unmaintained env classes and pipelines) or MuJoCo
Playground (no goal tasks, and its ``MjxEnv`` returns body positions of the state *before* the
last substep): a task builds a ``mujoco.MjModel`` from its own MJCF, and this base puts it on the
device, makes and steps ``mjx.Data`` and, after the substeps, brings body positions and
velocities up to the stepped state, so that an observation read from ``xpos`` or ``cvel``
describes the same instant as ``qpos``/``qvel``. ``tests/test_mjx_physics.py`` checks every task
on this base against ``mujoco.mj_step`` (MuJoCo's C engine, float64).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
from mujoco import mjx

from goalax.envs.base import GoalEnv
from goalax.errors import ConfigError

__all__ = ["IMPLS", "MjxGoalEnv", "check_impl", "point_velocity"]

#: MJX implementations: ``jax`` runs on any JAX backend (CPU, GPU, TPU); ``warp`` is MuJoCo Warp
#: (NVIDIA GPUs only, ``pip install mujoco-mjx[warp]``).
IMPLS = ("jax", "warp")


def check_impl(impl: str) -> None:
    """Raise ConfigError unless MJX implementation ``impl`` can run here."""
    if impl not in IMPLS:
        raise ConfigError(f"--impl must be one of {', '.join(IMPLS)}, got {impl!r}")
    if impl == "warp":
        if jax.default_backend() != "gpu":
            raise ConfigError(
                f"--impl warp runs on NVIDIA GPUs only; JAX's backend here is "
                f"{jax.default_backend()!r} (use --impl jax)"
            )
        try:
            import mujoco_warp  # noqa: F401
        except ImportError as err:
            raise ConfigError(
                "--impl warp needs MuJoCo Warp: pip install 'mujoco-mjx[warp]'"
            ) from err


class MjxGoalEnv(GoalEnv):
    """A task on ``mujoco.mjx``: subclasses build the model and define ``reset``, ``step``
    (usually ``physics_step`` then ``make_state``) and ``state_obs`` over ``mjx.Data``."""

    backend = "mjx"
    #: The observation reads body poses or velocities (``xpos``, ``site_xpos``, ``cvel``, ...):
    #: ``physics_step`` brings them to the stepped state. A task that reads only ``qpos`` and
    #: ``qvel`` sets False and skips that work (its data then hold the last substep's poses).
    observes_bodies: bool = True

    def __init__(self, model: mujoco.MjModel, *, n_substeps: int, impl: str = "jax"):
        check_impl(impl)
        self.mj_model = model
        self.mjx_model = mjx.put_model(model, impl=impl)
        self.n_substeps = n_substeps
        self.impl = impl

    @property
    def action_size(self) -> int:
        return int(self.mj_model.nu)

    @property
    def dt(self) -> float:
        """Seconds of one env step."""
        return float(self.mj_model.opt.timestep) * self.n_substeps

    def mujoco_model(self) -> mujoco.MjModel:
        return self.mj_model

    def qpos(self, pipeline_state: mjx.Data) -> jax.Array:
        return pipeline_state.qpos

    def qvel(self, pipeline_state: mjx.Data) -> jax.Array:
        return pipeline_state.qvel

    def physics_at(self, qpos: jax.Array, qvel: jax.Array) -> mjx.Data:
        return self.physics_init(qpos, qvel)

    def advance(self, pipeline_state: mjx.Data, action: jax.Array) -> mjx.Data:
        return self.physics_step(pipeline_state, self.ctrl_of_action(action))

    def physics_init(self, qpos: jax.Array, qvel: jax.Array) -> mjx.Data:
        """``mjx.Data`` at joint positions and velocities, with everything derived from them."""
        data = mjx.make_data(self.mjx_model)
        data = data.replace(qpos=jnp.asarray(qpos, data.qpos.dtype))
        data = data.replace(qvel=jnp.asarray(qvel, data.qvel.dtype))
        return mjx.forward(self.mjx_model, data)

    def physics_step(self, data: mjx.Data, ctrl: jax.Array) -> mjx.Data:
        """``n_substeps`` of ``mjx.step`` under control ``ctrl [nu]``, then (``observes_bodies``)
        body poses and velocities of the stepped state: ``mjx.step`` leaves those of the state
        before its last substep."""
        data = data.replace(ctrl=jnp.asarray(ctrl, data.ctrl.dtype))

        def substep(d: mjx.Data, _) -> tuple[mjx.Data, None]:
            return mjx.step(self.mjx_model, d), None

        data, _ = jax.lax.scan(substep, data, None, length=self.n_substeps)
        if not self.observes_bodies:
            return data
        data = mjx.kinematics(self.mjx_model, data)
        data = mjx.com_pos(self.mjx_model, data)
        return mjx.com_vel(self.mjx_model, data)

    def ctrl_of_action(self, action: jax.Array) -> jax.Array:
        """``[nu]`` controls of an action in [-1, 1]: clipped, then mapped linearly onto each
        actuator's control range (the identity for ranges of [-1, 1])."""
        low, high = (jnp.asarray(self.mj_model.actuator_ctrlrange[:, i]) for i in (0, 1))
        action = jnp.clip(action, -1.0, 1.0)
        return low + (action + 1.0) * 0.5 * (high - low)


def point_velocity(model: mujoco.MjModel, data: mjx.Data, body: int, point: jax.Array) -> jax.Array:
    """``[6]`` (angular, linear) world velocity of body ``body`` at world point ``point``.

    MuJoCo's ``cvel`` is a body's spatial velocity taken at its tree's centre of mass
    (``subtree_com`` of ``body_rootid``); moving it to another point adds ``w x (point - com)``,
    as ``mj_objectVelocity`` does.
    """
    cvel = data.cvel[body]
    com = data.subtree_com[int(model.body_rootid[body])]
    return jnp.concatenate([cvel[:3], cvel[3:] + jnp.cross(cvel[:3], point - com)])
