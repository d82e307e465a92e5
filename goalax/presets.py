"""Presets: named sets of defaults for an agent's hyperparameters and the run settings it fixes.

``goalax`` is the dataclasses' own defaults. ``paper`` is the paper's code, jaxgcrl 0.2.8, field
by field: its agents' dataclass defaults (read by running it, in
``tests/data/reference_agent_defaults.json``) mapped onto goalax's fields, with the behaviour
options that make goalax act as it does (``--actor-critic previous``, HER ``final`` scored on
``s_t``, ...). docs/agents.md gives both, field by field, with the reason for each difference.

Two values follow from other settings, as the reference derives them: the updates per env step
of the replay agents (one pass over ``num_envs`` sampled windows of one episode per iteration)
and PPO's minibatch count (minibatches of the reference's 32 × 10 transitions). ``apply``
computes them from the config it is given, so flags that change those settings still give the
reference's ratio.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from goalax import agents
from goalax.config import RunConfig, TrainConfig
from goalax.errors import ConfigError

__all__ = ["PRESETS", "apply", "given_fields", "paper_values", "shown_defaults"]

PRESETS = ("goalax", "paper")

#: The reference's agent dataclass fields, as goalax agent fields. HER's fields only act with
#: ``--her`` (the reference's ``use_her`` is off by default, as ours).
_HER = {"goal_strategy": "final", "relabel_fraction": 0.5, "her_achieved": "state"}
#: What the reference's SAC and TD3 share: brax's networks (2 x 256 relu, no LayerNorm or skips),
#: gamma 0.9, Polyak 0.005, and the actor stepped against the critic before its update.
_TWIN_CRITIC = {
    "discount": 0.9,
    "tau": 0.005,
    "depth": 2,
    "width": 256,
    "layer_norm": False,
    "actor_depth": 2,
    "actor_width": 256,
    "actor_layer_norm": False,
    "residual": False,
    "actor_residual": False,
    "activation": "relu",
    "actor_critic": "previous",
}
_PAPER_AGENT: dict[str, dict[str, Any]] = {
    "crl": {
        "energy": "l2",
        "loss": "infonce_forward",
        "logsumexp_penalty": 0.1,
        "repr_dim": 64,
        "depth": 2,
        "width": 256,
        "layer_norm": False,
        "residual": False,
        "actor_depth": 2,
        "actor_width": 256,
        "actor_layer_norm": False,
        "actor_residual": False,
        "critic_lr": 3e-4,
        "actor_lr": 3e-4,
        "alpha_lr": 3e-4,
        "target_entropy_scale": 0.5,
        "discount": 0.99,
        "goal_strategy": "geometric",
    },
    "sac": {
        "critic_lr": 1e-4,
        "actor_lr": 1e-4,
        "alpha_lr": 3e-4,
        "target_entropy_scale": 0.5,
        **_TWIN_CRITIC,
        **_HER,
    },
    "td3": {
        "critic_lr": 3e-4,
        "actor_lr": 3e-4,
        **_TWIN_CRITIC,
        "policy_noise": 0.2,
        "noise_clip": 0.5,
        "exploration_noise": 0.4,
        "exploration_noise_clip": 0.5,
        "policy_delay": 2,
        **_HER,
    },
    "ppo": {
        "learning_rate": 1e-4,
        "discount": 0.9,
        "gae_lambda": 0.95,
        "clip_epsilon": 0.3,
        "value_coef": 0.5,
        "entropy_coef": 1e-4,
        "max_grad_norm": None,
        "num_epochs": 2,
        "normalize_observations": False,
        "depth": 5,
        "width": 256,
        "layer_norm": False,
        "residual": False,
        "actor_depth": 4,
        "actor_width": 32,
        "actor_layer_norm": False,
        "actor_residual": False,
    },
}

#: Run settings each reference agent fixes. Prefill: CRL's ``min_replay_size`` 1,000 per env;
#: SAC/TD3 collect one unroll (``min_replay_size // unroll_length + 1`` = 1 of 50 steps) first.
_PAPER_RUN: dict[str, dict[str, Any]] = {
    "crl": {"unroll_length": 62, "batch_size": 256, "prefill_steps": 1000, "buffer_size": None},
    "sac": {"unroll_length": 50, "batch_size": 256, "buffer_size": None},
    "td3": {"unroll_length": 50, "batch_size": 256, "buffer_size": None},
    "ppo": {"unroll_length": 10},
}
#: Evaluation as the reference's: 256 episodes; SAC and PPO sample actions (deterministic_eval
#: off), CRL acts with tanh(mean) and TD3 without noise.
_PAPER_EVAL = {"crl": True, "sac": False, "td3": True, "ppo": False}
REFERENCE_EVAL_ENVS = 256

#: Transitions in one of the reference PPO's minibatches: 32 sequences of 10 steps.
REFERENCE_PPO_MINIBATCH = 32 * 10


def _episode_length(run: RunConfig) -> int:
    if run.episode_length is not None:
        return run.episode_length
    from goalax import envs

    try:
        return envs.spec(run.env).episode_length
    except envs.UnknownEnvError as err:
        raise ConfigError(str(err)) from err


def reference_utd_ratio(agent_name: str, run: RunConfig) -> float:
    """Gradient steps per env step of the reference's replay agents: each iteration of
    ``num_envs × unroll`` env steps samples one window of ``L`` steps per env and takes one step
    per ``batch_size`` of its transitions; CRL drops each window's last step (it has no future),
    so ``(L - 1) / (batch × unroll)``, SAC/TD3 ``L / (batch × unroll)``."""
    length = _episode_length(run)
    used = length - 1 if agent_name == "crl" else length
    return used / (run.batch_size * run.unroll_length)


def reference_num_minibatches(run: RunConfig) -> int:
    """PPO minibatches of about the reference's 320 transitions: the divisor of the rollout's
    ``num_envs × unroll`` closest to ``rollout / 320`` (16 at 512 envs × 10 steps, the
    reference's own rollout; 8 at 256 envs)."""
    rollout = run.num_envs * run.unroll_length
    target = rollout / REFERENCE_PPO_MINIBATCH
    divisors = [d for d in range(1, rollout + 1) if rollout % d == 0]
    return min(divisors, key=lambda d: (abs(d - target), d))


def paper_values(
    agent_name: str, run: RunConfig, keep: frozenset[str] | set[str] = frozenset()
) -> tuple[dict, dict]:
    """``(run fields, agent fields)`` of the paper preset for ``agent_name``, leaving out the
    fields in ``keep``. The derived values (updates per env step, SAC/TD3's one-unroll prefill,
    PPO's minibatches) are computed from ``run`` with the preset's other values set."""
    run_values = {
        **_PAPER_RUN[agent_name],
        "num_eval_envs": REFERENCE_EVAL_ENVS,
        "deterministic_eval": _PAPER_EVAL[agent_name],
        "reference_model": True,
    }
    run_values = {k: v for k, v in run_values.items() if k not in keep}
    agent_values = {k: v for k, v in _PAPER_AGENT[agent_name].items() if k not in keep}
    resolved = dataclasses.replace(run, **run_values)
    derived: dict[str, Any] = {}
    if agent_name == "ppo":
        agent_values.update(
            {}
            if "num_minibatches" in keep
            else {"num_minibatches": reference_num_minibatches(resolved)}
        )
    else:
        derived["utd_ratio"] = reference_utd_ratio(agent_name, resolved)
        if agent_name != "crl":
            derived["prefill_steps"] = resolved.unroll_length
    run_values.update({k: v for k, v in derived.items() if k not in keep})
    return run_values, agent_values


def apply(config: TrainConfig, keep: frozenset[str] | set[str] = frozenset()) -> TrainConfig:
    """``config`` with its preset's values (``config.run.preset``), except the fields named in
    ``keep`` (those given on the command line). The ``goalax`` preset changes nothing.

    From Python: ``presets.apply(TrainConfig(run=RunConfig(preset="paper", env="ant"),
    agent=SACConfig(), agent_name="sac"))``; replace fields afterwards to change them.
    """
    if config.run.preset == "goalax":
        return config
    if config.run.preset not in PRESETS:
        raise ConfigError(f"unknown preset '{config.run.preset}'; valid: {', '.join(PRESETS)}")
    if config.agent_name not in _PAPER_AGENT:
        raise ConfigError(
            f"--preset paper: the paper's code has no {config.agent_name} (it has "
            f"{', '.join(sorted(_PAPER_AGENT))}); drop --preset to use goalax's defaults"
        )
    run_values, agent_values = paper_values(config.agent_name, config.run, keep)
    return dataclasses.replace(
        config,
        run=dataclasses.replace(config.run, **run_values),
        agent=dataclasses.replace(config.agent, **agent_values),
    )


def shown_defaults(agent_name: str, preset: str | None, env: str | None) -> TrainConfig | None:
    """The defaults ``goalax train AGENT --preset PRESET --env ENV`` starts from (derived values
    for the task's episode length), or ``None`` for goalax's own, an unknown preset (the flag
    parser names it) or an unknown env (reported once the flags are parsed)."""
    if preset in (None, "goalax") or preset not in PRESETS:
        return None
    run = RunConfig(preset=preset, env=env or RunConfig.env)
    config = TrainConfig(run=run, agent=agents.config_class(agent_name)(), agent_name=agent_name)
    try:
        return apply(config)
    except ConfigError:
        return None


def given_fields(argv: list[str]) -> frozenset[str]:
    """Config field names given as flags in ``argv`` (``--x-y V``, ``--x-y=V``, ``--no-x-y``)."""
    names = set()
    for arg in argv:
        if not arg.startswith("--"):
            continue
        name = arg[2:].split("=", 1)[0].replace("-", "_")
        names.add(name)
        if name.startswith("no_"):
            names.add(name[3:])
    return frozenset(names)
