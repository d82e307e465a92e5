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


def params_only(like: Any) -> Any:
    """The restore target of a policy: a training state's agent params and step counter, every
    other leaf ``checkpoint.SKIP`` (never read)."""
    from goalax.training import checkpoint

    skip = checkpoint.skip_all(like)
    agent = skip.seeds.agent.replace(params=like.seeds.agent.params)
    return skip.replace(seeds=skip.seeds.replace(agent=agent), env_steps=like.env_steps)


def load(run_dir: str) -> LoadedRun:
    """Load the agent params of the newest intact checkpoint of ``run_dir``.

    Only the params and the step counter are read: the rest of the training state (the replay
    buffer above all, often GBs) is marked ``checkpoint.SKIP`` and never leaves the disk.
    """
    from goalax.training import checkpoint
    from goalax.training.loop import build, seed_keys
    from goalax.training.run import load_config

    config = load_config(run_dir)
    program = build(config)
    like = jax.eval_shape(program.init, seed_keys(config))
    _, state = checkpoint.restore_run(run_dir, params_only(like))
    return LoadedRun(
        config=config,
        env=program.env,
        params=jax.device_put(state.seeds.agent.params),
        env_steps=int(state.env_steps),
        _act=program.agent.act,
    )
