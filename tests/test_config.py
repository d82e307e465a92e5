"""Config validation, derived schedule and resume compatibility."""

import dataclasses

import pytest

from goalax.agents.crl import CRLConfig
from goalax.config import (
    ConfigError,
    RunConfig,
    TrainConfig,
    from_dict,
    make_schedule,
    resume_conflicts,
    to_dict,
)


def test_schedule_paper_defaults():
    s = make_schedule(RunConfig(), env_episode_length=1000)
    assert s.steps_per_iteration == 256 * 62
    # paper: ~1 gradient step per 16 env steps -> 992 updates per 15,872 env steps
    assert s.updates_per_iteration == 992
    assert s.buffer_rows == 1_000_000 // 256
    assert s.episode_length == 1000
    assert s.eval_every == 100_000


def test_schedule_episode_override_and_iterations():
    run = RunConfig(num_envs=4, unroll_length=10, total_env_steps=101, episode_length=7)
    s = make_schedule(run, env_episode_length=1000)
    assert s.episode_length == 7
    assert s.num_iterations == 3  # 40 + 40 + 21


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"num_envs": 0}, "--num-envs"),
        ({"total_env_steps": -5}, "--total-env-steps"),
        ({"batch_size": 0}, "--batch-size"),
        ({"num_seeds": 0}, "--num-seeds"),
        ({"episode_length": 0}, "--episode-length"),
        ({"eval_every": 0}, "--eval-every"),
        ({"utd_ratio": 0.0}, "--utd-ratio"),
        ({"utd_ratio": float("nan")}, "--utd-ratio"),
        ({"total_env_steps": 2**31}, "--total-env-steps"),
        (
            {"batch_size": 512, "buffer_size": 300, "num_envs": 1, "unroll_length": 10},
            "--batch-size",
        ),
        ({"buffer_size": 100, "num_envs": 256}, "--buffer-size"),
    ],
)
def test_bad_sizes_are_rejected_with_the_flag_name(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        make_schedule(RunConfig(**overrides), env_episode_length=100)


def test_config_roundtrip():
    config = TrainConfig(run=RunConfig(env="point", num_seeds=3), agent=CRLConfig(energy="dot"))
    assert from_dict(to_dict(config)) == config
    with pytest.raises(ConfigError):
        from_dict({"run": {"no_such_field": 1}, "agent": {}})


def test_resume_conflicts_name_the_changed_flags():
    saved = TrainConfig(run=RunConfig(env="point"))
    ok = dataclasses.replace(
        saved, run=dataclasses.replace(saved.run, total_env_steps=5, quiet=True)
    )
    assert resume_conflicts(saved, ok) == []
    bad = dataclasses.replace(saved, agent=CRLConfig(energy="dot"))
    assert resume_conflicts(saved, bad) == ["--energy l2 -> dot"]
    bad_env = dataclasses.replace(saved, run=dataclasses.replace(saved.run, env="reacher"))
    assert resume_conflicts(saved, bad_env) == ["--env point -> reacher"]


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"depth": 3, "residual": True}, "--depth"),
        ({"actor_depth": 2, "residual": True, "depth": 4}, "--actor-depth"),
        ({"discount": 1.0}, "--discount"),
        ({"critic_lr": 0.0}, "--critic-lr"),
        ({"repr_dim": 0}, "--repr-dim"),
        ({"logsumexp_penalty": -1.0}, "--logsumexp-penalty"),
    ],
)
def test_bad_agent_config(overrides, fragment):
    with pytest.raises(ValueError, match=fragment):
        CRLConfig(**overrides).validate()
