"""End-to-end training on the pure-JAX ``point`` task: budgets, files, resume, seeds."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import goalax
from goalax.agents.crl import CRLConfig
from goalax.config import ConfigError, RunConfig, TrainConfig

SMALL_AGENT = CRLConfig(width=32, actor_width=32, repr_dim=16)
DESIGN_KEYS = {
    "env_steps",
    "grad_steps",
    "wall_time_s",
    "sps",
    "seed",
    "eval/success",
    "eval/success_easy",
    "eval/success_at_end",
    "eval/dist",
    "eval/time_at_goal",
    "eval/episode_return",
    "train/critic_loss",
    "train/actor_loss",
    "train/alpha",
    "train/entropy",
    "train/logits_pos",
    "train/logits_neg",
    "train/categorical_accuracy",
}


def small_config(run_dir, **run_overrides) -> TrainConfig:
    run = RunConfig(
        env="point",
        num_envs=8,
        unroll_length=10,
        episode_length=20,
        total_env_steps=1003,
        eval_every=400,
        batch_size=32,
        buffer_size=8 * 40,
        prefill_steps=25,  # rounded up to 3 iterations of 10 steps per env
        utd_ratio=0.05,
        num_eval_envs=4,
        run_dir=str(run_dir),
        quiet=True,
    )
    return TrainConfig(run=dataclasses.replace(run, **run_overrides), agent=SMALL_AGENT)


def read_rows(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("odd") / "run"
    return goalax.train(small_config(run_dir))


def test_odd_budget_ends_exactly_on_budget(odd_run):
    steps = [row["env_steps"] for row in odd_run.metrics]
    # 80 env steps per iteration; evaluations at the first iteration boundary after each
    # multiple of 400, and at the exact budget (the last iteration is clipped to 43 steps).
    assert steps == [0, 400, 800, 1003]
    final = odd_run.metrics[-1]
    # 4 updates per full iteration (0.05 * 80) after the 3 prefill iterations (25 steps per env
    # rounded up to 30); the clipped last one gets 43 * 4 // 80 = 2
    assert final["grad_steps"] == (12 - 3) * 4 + 2


def test_prefill_collects_before_the_first_update(odd_run):
    rows = {row["env_steps"]: row for row in odd_run.metrics}
    # Iterations starting at 0, 80, 160 collect only; those at 240 and 320 update.
    assert rows[400]["grad_steps"] == 2 * 4
    assert np.isfinite(rows[400]["train/critic_loss"])
    with open(os.path.join(odd_run.run_dir, "config.json")) as f:
        assert json.load(f)["run"]["prefill_steps"] == 25


def test_replay_line_names_size_bytes_and_prefill(tmp_path):
    from goalax.training.loop import buffer_bytes, build, init_state
    from goalax.training.run import describe_replay

    program = build(small_config(tmp_path / "unused", buffer_size=None))
    state = init_state(program)
    line = describe_replay(program, state)
    # 10,000 rows x 8 envs of state_obs [4], action [2], next_goal [2] (float32) + episode ids,
    # and the two int32 counters (insert position, size).
    assert buffer_bytes(state) == 10_000 * 8 * (4 + 2 + 2 + 1) * 4 + 2 * 4
    assert "80,000 transitions (10,000 per env)" in line and "2.7 MiB" in line
    assert "prefill 240 env steps" in line and "3 whole iterations" in line


def test_metrics_files_have_design_keys(odd_run):
    rows = read_rows(odd_run.run_dir)
    assert len(rows) == 4
    assert set(rows[-1]) >= DESIGN_KEYS
    assert rows[0]["train/critic_loss"] is None  # no update before the first evaluation
    assert np.isfinite(rows[-1]["train/critic_loss"])
    with open(os.path.join(odd_run.run_dir, "metrics.csv")) as f:
        header = f.readline().strip().split(",")
        assert set(header) >= DESIGN_KEYS
        assert len(f.readlines()) == 4


def test_run_dir_contents(odd_run):
    run_dir = odd_run.run_dir
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    assert config["run"]["env"] == "point" and config["run"]["run_dir"] == run_dir
    assert os.listdir(os.path.join(run_dir, "tb", "seed0"))
    assert "1003" in os.listdir(os.path.join(run_dir, "checkpoints"))


def test_load_gives_a_callable_policy(odd_run):
    loaded = goalax.load(odd_run.run_dir)
    assert loaded.env_steps == 1003
    obs = jax.vmap(loaded.env.reset)(jax.random.split(jax.random.PRNGKey(0), 3)).obs
    action = loaded.act(loaded.seed_params(0), obs, jax.random.PRNGKey(1))
    assert action.shape == (3, loaded.env.action_size)
    assert np.all(np.abs(np.asarray(action)) <= 1.0)


def test_non_empty_run_dir_is_refused(odd_run):
    with pytest.raises(ConfigError, match="not empty"):
        goalax.train(small_config(odd_run.run_dir))


def params_close(a, b, **tol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tol)


@pytest.mark.slow  # the default suite: tests/test_lifecycle.py's resume on point, the same check
def test_resume_continues_exactly(tmp_path):
    full = goalax.train(small_config(tmp_path / "full", total_env_steps=960))
    half = small_config(tmp_path / "half", total_env_steps=400)
    goalax.train(half)
    resumed_config = small_config(
        tmp_path / "ignored", total_env_steps=960, resume=str(tmp_path / "half")
    )
    resumed = goalax.train(resumed_config)
    assert resumed.run_dir == str(tmp_path / "half")
    params_close(full.params, resumed.params, rtol=0, atol=0)
    ignore = {"wall_time_s", "sps"}
    full_rows = [{k: v for k, v in r.items() if k not in ignore} for r in read_rows(full.run_dir)]
    resumed_rows = [
        {k: v for k, v in r.items() if k not in ignore} for r in read_rows(resumed.run_dir)
    ]
    assert full_rows == resumed_rows


def test_resume_at_an_evaluation_point_inside_an_iteration(tmp_path):
    # 80 env steps per iteration do not divide the evaluation interval 360 (45 steps of 8 envs):
    # iterations are cut at evaluation points, so stopping at one changes nothing.
    full = goalax.train(small_config(tmp_path / "full", total_env_steps=1440, eval_every=360))
    assert [row["env_steps"] for row in full.metrics] == [0, 360, 720, 1080, 1440]
    goalax.train(small_config(tmp_path / "half", total_env_steps=720, eval_every=360))
    resumed = goalax.train(
        small_config(
            tmp_path / "unused", total_env_steps=1440, eval_every=360, resume=str(tmp_path / "half")
        )
    )
    params_close(full.params, resumed.params, rtol=0, atol=0)
    ignore = {"wall_time_s", "sps"}
    rows = [
        [{k: v for k, v in r.items() if k not in ignore} for r in read_rows(run.run_dir)]
        for run in (full, resumed)
    ]
    assert rows[0] == rows[1]


def test_evaluation_points_round_up_to_whole_steps_of_all_envs():
    from goalax.config import steps_to_evaluation

    # 8 envs step together: 300 -> 304, 600 stays, 900 -> 904; from 304 the next point is 600.
    points, steps = [], 0
    while steps < 1500:
        steps += steps_to_evaluation(steps, 300, 8)
        points.append(steps)
    assert points == [304, 600, 904, 1200, 1504]
    assert steps_to_evaluation(0, 5, 8) == 8  # an interval below one step: every step


def test_resume_refuses_a_changed_meaning(odd_run):
    changed = dataclasses.replace(
        small_config(odd_run.run_dir, total_env_steps=2000, resume=odd_run.run_dir),
        agent=dataclasses.replace(SMALL_AGENT, energy="dot"),
    )
    with pytest.raises(ConfigError, match="--energy l2 -> dot"):
        goalax.train(changed)


def test_seeds_in_one_program_match_single_seed_runs(tmp_path, odd_run):
    multi = goalax.train(small_config(tmp_path / "multi", num_seeds=2))
    seed0 = jax.tree.map(lambda x: x[0], multi.params)
    seed1 = jax.tree.map(lambda x: x[1], multi.params)
    params_close(jax.tree.map(lambda x: x[0], odd_run.params), seed0, rtol=1e-4, atol=1e-5)
    differences = [
        np.max(np.abs(np.asarray(a) - np.asarray(b)))
        for a, b in zip(jax.tree.leaves(seed0), jax.tree.leaves(seed1), strict=True)
    ]
    assert max(differences) > 1e-3
    rows = read_rows(multi.run_dir)
    assert [r["seed"] for r in rows if r["env_steps"] == 1003] == [0, 1]


def test_default_run_directory_gets_the_final_checkpoint(tmp_path, monkeypatch):
    """The predecessor saved no checkpoint at the end unless a directory flag was given."""
    monkeypatch.chdir(tmp_path)
    config = small_config(tmp_path, total_env_steps=437, eval_every=10_000)
    config = dataclasses.replace(config, run=dataclasses.replace(config.run, run_dir=None))
    result = goalax.train(config)
    run_dir = os.path.join(tmp_path, result.run_dir)
    assert os.path.dirname(result.run_dir) == "runs"
    assert os.path.basename(result.run_dir).startswith("crl-point-s0-")
    assert max(map(int, os.listdir(os.path.join(run_dir, "checkpoints")))) == 437
    assert goalax.load(run_dir).env.state_dim == 4


@pytest.mark.parametrize("name", ["point", "ant"])
def test_transition_example_is_the_layout_collect_records(name):
    """The initial replay buffer is sized from ``transition_example`` (no env step traced); it
    must be exactly one step of what ``collect`` records, for every field an agent can ask for."""
    from goalax.training import rollout

    env = goalax.envs.make(name, episode_length=5)
    fields = tuple(rollout.TRANSITION_SHAPES)

    def one_step(key):
        carry = rollout.reset(env, key, 3)
        act = lambda obs, _: jnp.zeros(obs.shape[:-1] + (env.action_size,))
        _, transitions, _ = rollout.collect(
            env, act, carry, key, unroll_length=1, episode_length=5, budget=jnp.int32(3),
            fields=fields,
        )  # fmt: skip
        return jax.tree.map(lambda x: x[0], transitions)

    recorded = jax.eval_shape(one_step, jax.random.PRNGKey(0))
    example = jax.eval_shape(lambda: rollout.transition_example(env, fields, 3))
    assert jax.tree.map(lambda x: (x.shape, x.dtype), example) == jax.tree.map(
        lambda x: (x.shape, x.dtype), recorded
    )
