"""``goalax.load``: a trained policy from a run directory, callable without the training code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax

from goalax.config import TrainConfig
from goalax.envs.base import GoalEnv


@dataclass(frozen=True)
class LoadedRun:
    """A run's config, its task and the params of every seed (leaves ``[num_seeds, ...]``)."""

    config: TrainConfig
    env: GoalEnv
    params: Any
    env_steps: int
    _act: Any

    def seed_params(self, seed_index: int = 0) -> Any:
        """Params of one seed (seed ``config.run.seed + seed_index``)."""
        return jax.tree.map(lambda x: x[seed_index], self.params)

    def act(self, params: Any, obs: jax.Array, key: jax.Array, deterministic: bool = True):
        """``obs [..., state_dim + goal_dim] -> action [..., action_dim]`` for one seed's params."""
        return self._act(params, obs, key, deterministic)


def load(run_dir: str) -> LoadedRun:
    """Load the latest checkpoint of ``run_dir``."""
    from goalax.training.loop import build
    from goalax.training.run import load_config, restore_state

    config = load_config(run_dir)
    program = build(config)
    state = restore_state(program, run_dir)
    return LoadedRun(
        config=config,
        env=program.env,
        params=state.seeds.agent.params,
        env_steps=int(state.env_steps),
        _act=program.agent.act,
    )
