"""Goal-conditioned tasks: the GoalEnv contract, the registry and the task families."""

from goalax.envs import notices  # noqa: F401  (first: mujoco.mjx imported quietly)
from goalax.envs.base import GoalEnv, State
from goalax.envs.registry import (
    EnvSpec,
    UnknownEnvError,
    default_env_steps,
    make,
    mjx_base_names,
    names,
    spec,
)

__all__ = [
    "EnvSpec",
    "GoalEnv",
    "State",
    "UnknownEnvError",
    "default_env_steps",
    "make",
    "mjx_base_names",
    "names",
    "spec",
]
