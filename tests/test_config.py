"""Config validation, derived schedule and resume compatibility."""

import dataclasses

import jax
import pytest

from goalax.agents.crl import CRLConfig
from goalax.config import (
    ConfigError,
    RunConfig,
    TrainConfig,
    from_dict,
    make_schedule,
    resolve_defaults,
    resume_conflicts,
    to_dict,
)


def test_schedule_paper_defaults():
    paper = RunConfig(env="ant", num_envs=1024, total_env_steps=10_000_000)
    run = resolve_defaults(TrainConfig(run=paper)).run  # CRL: 1,000 prefill steps per env
    assert run.prefill_steps == 1000
    s = make_schedule(run, env_episode_length=1000)
    assert s.steps_per_iteration == 1024 * 62
    # paper: ~1 gradient step per 16 env steps -> 3968 updates per 63,488 env steps
    assert s.updates_per_iteration == 3968
    assert s.buffer_rows == 10_000  # the reference's 10,000 steps per env
    assert s.prefill_env_steps == 1024 * 1000  # the reference's 1,000 prefill steps per env
    assert s.episode_length == 1000
    assert s.eval_every == 1_000_000


def test_budget_defaults_to_the_tasks_own():
    from goalax import envs

    assert resolve_defaults(TrainConfig()).run.total_env_steps == 600_000  # reacher
    for name in ("point", "ant", "humanoid"):
        run = resolve_defaults(TrainConfig(run=RunConfig(env=name))).run
        assert run.total_env_steps == envs.spec(name).env_steps == envs.default_env_steps(name)
    kept = resolve_defaults(TrainConfig(run=RunConfig(env="point", total_env_steps=1234)))
    assert kept.run.total_env_steps == 1234
    with pytest.raises(ConfigError, match="unknown env 'reachr'"):
        resolve_defaults(TrainConfig(run=RunConfig(env="reachr")))


def test_default_prefill_is_at_most_an_eighth_of_the_budget():
    # reacher: 1,000 per env would be 43 % of its 600k on 256 envs; 292 = 600k / 8 / 256.
    assert resolve_defaults(TrainConfig()).run.prefill_steps == 292
    odd = RunConfig(env="point", num_envs=7, total_env_steps=10_001)
    assert resolve_defaults(TrainConfig(run=odd)).run.prefill_steps == 178  # floor(10001/56)


def test_default_buffer_holds_ten_thousand_steps_per_env_at_any_env_count():
    for num_envs in (1, 7, 1024):
        run = RunConfig(num_envs=num_envs, total_env_steps=10_000_000)
        s = make_schedule(run, env_episode_length=1000)
        assert s.buffer_rows == 10_000
    explicit = make_schedule(
        RunConfig(num_envs=7, buffer_size=70_006, total_env_steps=10_000), env_episode_length=1000
    )
    assert explicit.buffer_rows == 10_000  # --buffer-size stays total transitions


def test_prefill_default_is_the_agents_reference_value():
    from goalax.agents.sac import SACConfig

    assert resolve_defaults(TrainConfig(agent=SACConfig(), agent_name="sac")).run.prefill_steps == 0
    explicit = TrainConfig(run=RunConfig(prefill_steps=7))
    assert resolve_defaults(explicit).run.prefill_steps == 7
    unresolved = RunConfig(total_env_steps=1000)
    assert make_schedule(unresolved, env_episode_length=50).prefill_env_steps == 0


def test_on_policy_schedule_has_no_prefill():
    s = make_schedule(RunConfig(total_env_steps=1000), env_episode_length=50, uses_replay=False)
    assert s.prefill_env_steps == 0


def test_schedule_episode_override_and_iterations():
    run = RunConfig(
        num_envs=4, unroll_length=10, total_env_steps=101, episode_length=7, prefill_steps=3
    )
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
        # 99 steps per env, fewer than the 100-step episode (and more than one unroll)
        ({"buffer_size": 99 * 3, "num_envs": 3}, "fewer than one episode"),
        ({"buffer_size": 99 * 3, "num_envs": 3}, "raise --buffer-size to at least 300"),
        ({"prefill_steps": -1}, "--prefill-steps must be >= 0"),
        ({"prefill_steps": 10, "num_envs": 10, "total_env_steps": 100}, "--prefill-steps 10"),
    ],
)
def test_bad_sizes_are_rejected_with_the_flag_name(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        run = resolve_defaults(TrainConfig(run=RunConfig(**overrides))).run
        make_schedule(run, env_episode_length=100)


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
        ({"actor_depth": 2, "actor_residual": True}, "--actor-depth must be a multiple of 4"),
        ({"discount": 1.0}, "--discount"),
        ({"critic_lr": 0.0}, "--critic-lr"),
        ({"repr_dim": 0}, "--repr-dim"),
        ({"logsumexp_penalty": -1.0}, "--logsumexp-penalty"),
    ],
)
def test_bad_agent_config(overrides, fragment):
    with pytest.raises(ValueError, match=fragment):
        CRLConfig(**overrides).validate()


def test_residual_critic_leaves_the_actor_its_own_depth_and_choice():
    # --residual --depth 16 alone: the critic is a deep residual net, the actor stays 2 x 256.
    from goalax.agents import crl

    config = CRLConfig(residual=True, depth=16)
    config.validate()
    agent = crl.make(config, state_dim=4, goal_dim=2, action_dim=2)
    params = jax.eval_shape(agent.init, jax.random.PRNGKey(0)).params
    assert "blocks" in params.sa_encoder["params"]  # 4 residual blocks
    assert params.sa_encoder["params"]["blocks"]["dense_0"]["kernel"].shape == (4, 256, 256)
    trunk = params.actor["params"]["trunk"]
    assert "blocks" not in trunk and set(trunk) == {"dense_0", "dense_1", "output"}
    deep_actor = crl.make(
        CRLConfig(actor_residual=True, actor_depth=8), state_dim=4, goal_dim=2, action_dim=2
    )
    trunk = jax.eval_shape(deep_actor.init, jax.random.PRNGKey(0)).params.actor["params"]["trunk"]
    assert trunk["blocks"]["dense_0"]["kernel"].shape == (2, 256, 256)


def _attribute_reads() -> dict[str, set[str]]:
    """Attribute names the package reads (``x.name`` loads), outside validation code, by file."""
    import ast
    import pathlib

    import goalax

    root = pathlib.Path(goalax.__file__).parent
    reads: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        checking = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name.lstrip("_").startswith(
                ("validate", "check")
            ):
                checking.update(id(sub) for sub in ast.walk(node))
        for node in ast.walk(tree):
            loaded = isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load)
            if loaded and id(node) not in checking:
                reads.setdefault(node.attr, set()).add(path.name)
    return reads


def test_every_config_field_is_read_by_the_code():
    """A flag nobody reads (the predecessor advertised a multiplier that did nothing) fails here:
    every field of every config must be read somewhere other than where it is validated."""
    from goalax import agents
    from goalax.bench import BenchOptions

    reads = _attribute_reads()
    classes = [RunConfig, BenchOptions] + [agents.config_class(n) for n in agents.names()]
    unread = [
        f"{cls.__name__}.{field.name}"
        for cls in classes
        for field in dataclasses.fields(cls)
        if field.name not in reads
    ]
    assert not unread
    assert "no_such_field_anywhere" not in reads  # the scan itself tells fields apart


def test_an_on_policy_agent_refuses_replay_settings_set_from_python():
    """``goalax.train`` from Python: a replay value other than the default is refused for PPO
    (the CLI refuses the flag itself, even at its default value: tests/test_cli.py)."""
    from goalax.agents.ppo import PPOConfig
    from goalax.config import REPLAY_FIELDS, check_used

    ppo = TrainConfig(run=RunConfig(env="point"), agent=PPOConfig(), agent_name="ppo")
    check_used(ppo)
    check_used(dataclasses.replace(ppo, run=dataclasses.replace(ppo.run, prefill_steps=0)))
    for name, value in zip(REPLAY_FIELDS, (64, 0.5, 1000, 5), strict=True):
        bad = dataclasses.replace(ppo, run=dataclasses.replace(ppo.run, **{name: value}))
        with pytest.raises(ConfigError, match=f"--{name.replace('_', '-')} is not used by ppo"):
            check_used(bad)
    with pytest.raises(ConfigError, match="--batch-size is not used by ppo"):
        check_used(ppo, given={"batch_size"})
    crl = TrainConfig(run=dataclasses.replace(ppo.run, batch_size=64))
    check_used(crl, given={"batch_size"})  # an off-policy agent reads it
