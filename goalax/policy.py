"""``goalax.load``: a trained policy from a run directory, callable without the training code."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import jax

from goalax import artifact
from goalax.config import TrainConfig
from goalax.envs.base import GoalEnv
from goalax.errors import ConfigError


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
    """The policy of the newest intact artifact of ``run_dir`` (``goalax.artifact``), or of the
    artifact folder ``run_dir`` itself (a copied ``policies/<step>``).

    Only the task and the agent's networks are built, never the training program. A damaged
    newer artifact is skipped with one warning line. A run saved before artifacts existed is
    read from its newest checkpoint instead: params and step counter only, the rest of the
    training state (the replay buffer above all, often GBs) never leaves the disk.
    """
    if not os.path.isdir(run_dir):
        raise ConfigError(f"run directory {run_dir} does not exist")
    if artifact.is_artifact(run_dir):
        try:
            return _from_artifact(run_dir)
        except artifact.ArtifactError as err:
            raise ConfigError(f"{err}; the policy cannot be read") from err
    skipped = []
    for step in reversed(artifact.steps(run_dir)):
        try:
            run = _from_artifact(artifact.folder(run_dir, step))
        except artifact.ArtifactError as err:
            skipped.append(str(err))
            continue
        if skipped:
            print(_skipped_line(skipped, f"the policy of env step {step}"), file=sys.stderr)
        return run
    run = _from_checkpoint(run_dir)
    if skipped:
        print(_skipped_line(skipped, "the newest checkpoint"), file=sys.stderr)
    return run


def _skipped_line(skipped: list[str], used: str) -> str:
    return f"goalax: warning: {'; '.join(skipped)}; using {used} instead"


def _from_artifact(path: str) -> LoadedRun:
    from goalax.config import from_dict, resolve_defaults
    from goalax.training.loop import make_agent, make_env, seed_keys

    meta = artifact.read_meta(path)
    source = os.path.join(path, "policy.json")
    config = resolve_defaults(from_dict(meta.config, f"{source}: config"))
    env = make_env(config)
    now = artifact.env_spec(env)
    if now != meta.spec:
        changed = ", ".join(f"{k} {meta.spec.get(k)} -> {v}" for k, v in now.items()
                            if meta.spec.get(k) != v)  # fmt: skip
        raise ConfigError(
            f"{source}: the policy was trained on a {config.run.env} that differs from this "
            f"goalax's ({changed}); evaluate it with the goalax version that trained it "
            f"({meta.goalax_version})"
        )
    agent = make_agent(config, env)
    like = jax.eval_shape(jax.vmap(agent.init), seed_keys(config)).params
    params = artifact.read_params(path, like)
    return LoadedRun(config, env, jax.device_put(params), meta.env_steps, agent.act)


def _from_checkpoint(run_dir: str) -> LoadedRun:
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
