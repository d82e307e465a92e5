"""Smoke tests for the task families ported from the predecessor (ant, humanoid, cheetah, pusher,
arm and the locomotion mazes), plus the "same goal after every reset" regression.

Each task compiles exactly one program (module-scoped ``run`` fixture): 4 vmapped resets followed
by ``training.rollout.collect`` for 20 random steps with episode_length 5, so the same program
checks stepping, observation layout and goal resampling at auto-resets. Every task runs in the
default suite (CPU compile 15-60 s per task); the 1000-step x 16-env finiteness check of every
task is ``tests/test_envs.py::test_long_random_rollout_stays_finite`` (marked slow).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import goalax
from goalax import envs
from goalax.agents.crl import CRLConfig
from goalax.config import RunConfig, TrainConfig
from goalax.training import rollout

NEW_TASKS = (
    "ant",
    "ant_random_start",
    "ant_ball",
    "ant_push",
    "ant_u_maze",
    "ant_big_maze",
    "ant_hardest_maze",
    "ant_ball_maze",
    "ant_ball_u_maze",
    "ant_ball_big_maze",
    "ant_ball_hardest_maze",
    "humanoid",
    "humanoid_u_maze",
    "humanoid_big_maze",
    "humanoid_hardest_maze",
    "cheetah",
    "pusher_easy",
    "pusher_hard",
    "pusher_reacher",
    "pusher2",
    "arm_reach",
    "arm_grasp",
    "arm_push_easy",
    "arm_push_hard",
    "arm_binpick_easy",
    "arm_binpick_hard",
)
MAZES = tuple(name for name in NEW_TASKS if "maze" in name)
#: Smoke-tested here; the rest in ``test_envs_manipulation.py``, which reuses these tests, so that
#: the two pytest-xdist workers (``--dist loadfile``) share the ~15 min of task compiles.
LOCOMOTION = tuple(name for name in NEW_TASKS if name.startswith(("ant", "humanoid")))
MANIPULATION = tuple(name for name in NEW_TASKS if name not in LOCOMOTION)
N_ENVS, N_STEPS, EPISODE = 4, 20, 5


def random_policy(env):
    def policy(obs, key):
        return jax.random.uniform(key, (obs.shape[0], env.action_size), minval=-1.0, maxval=1.0)

    return policy


def compile_task(name: str) -> dict:
    """Compile and run the task's smoke program once; the tests read the outputs."""
    env = envs.make(name)

    @jax.jit
    def program(key):
        key_reset, key_collect = jax.random.split(key)
        carry = rollout.reset(env, key_reset, N_ENVS)
        _, transitions, episode_ids = rollout.collect(
            env,
            random_policy(env),
            carry,
            key_collect,
            unroll_length=N_STEPS,
            episode_length=EPISODE,
            budget=jnp.int32(N_STEPS * N_ENVS),
            fields=("state_obs", "goal", "next_state_obs", "reward"),
        )
        return carry.state, transitions, episode_ids

    first, transitions, episode_ids = program(jax.random.PRNGKey(0))
    return {
        "name": name,
        "env": env,
        "program": program,
        "first": first,
        "tr": transitions,
        "episode_ids": episode_ids,
    }


@pytest.fixture(scope="module", params=LOCOMOTION)
def run(request):
    return compile_task(request.param)


def test_registered_with_contract_attributes(run):
    env = run["env"]
    spec = envs.spec(run["name"])
    assert spec.description and spec.backend == env.backend == type(env).backends[0]
    assert env.episode_length == 1000 and not env.dense_reward
    assert all(0 <= i < env.state_dim for i in env.goal_indices)
    assert 0 < env.goal_threshold < env.success_easy_threshold
    if env.goal_threshold == 0.5:  # locomotion: success_easy at 2.0 as in the predecessor
        assert env.success_easy_threshold == 2.0


def test_reset_and_steps_are_finite_with_the_right_sizes(run):
    env, first, tr = run["env"], run["first"], run["tr"]
    assert first.obs.shape == (N_ENVS, env.state_dim + env.goal_dim)
    assert tr["state_obs"].shape == (N_STEPS, N_ENVS, env.state_dim)
    assert tr["goal"].shape == (N_STEPS, N_ENVS, env.goal_dim)
    for array in (first.obs, tr["state_obs"], tr["next_state_obs"], tr["reward"]):
        assert np.isfinite(np.asarray(array)).all()
    for name in ("dist", "success", "success_easy"):
        assert first.metrics[name].shape == (N_ENVS,)
    assert (np.asarray(first.done) == 0).all()
    np.testing.assert_array_equal(first.obs[:, env.state_dim :], first.info["goal"])


def test_goals_differ_across_envs_and_keys(run):
    goals = np.asarray(run["first"].info["goal"])
    assert len(np.unique(goals, axis=0)) == N_ENVS
    other, _, _ = run["program"](jax.random.PRNGKey(1))  # same compiled program, another key
    assert not np.array_equal(np.asarray(other.info["goal"]), goals)
    again, _, _ = run["program"](jax.random.PRNGKey(0))
    np.testing.assert_array_equal(again.info["goal"], goals)  # deterministic given the key


def test_goal_changes_at_every_auto_reset(run):
    """Regression: the predecessor gave the same goal after every reset."""
    goals, episode_ids = np.asarray(run["tr"]["goal"]), np.asarray(run["episode_ids"])
    assert episode_ids[-1].min() >= N_STEPS // EPISODE - 1  # several episodes per env
    for env_index in range(N_ENVS):
        starts = np.flatnonzero(np.diff(episode_ids[:, env_index]) > 0) + 1
        episode_goals = goals[np.concatenate([[0], starts]), env_index]
        for before, after in zip(episode_goals[:-1], episode_goals[1:], strict=True):
            assert not np.allclose(before, after), (env_index, episode_goals)
        # Within an episode the goal never changes.
        for start, end in zip(
            np.concatenate([[0], starts]), np.concatenate([starts, [N_STEPS]]), strict=True
        ):
            assert (goals[start:end, env_index] == goals[start, env_index]).all()


def test_success_when_goal_part_equals_goal(run):
    env = run["env"]
    state_obs = np.array(run["first"].obs[0, : env.state_dim])
    goal = np.asarray(run["first"].info["goal"][0])
    state_obs[np.asarray(env.goal_indices)] = goal
    reward, metrics = env.reward_and_metrics(jnp.asarray(state_obs), jnp.asarray(goal))
    assert metrics["dist"] == 0 and metrics["success"] == 1 and metrics["success_easy"] == 1
    assert reward == 1
    state_obs[env.goal_indices[0]] += 1.01 * env.goal_threshold
    _, metrics = env.reward_and_metrics(jnp.asarray(state_obs), jnp.asarray(goal))
    assert metrics["success"] == 0 and metrics["success_easy"] == 1
    dense = envs.make(run["name"], dense_reward=True)
    reward, metrics = dense.reward_and_metrics(jnp.asarray(state_obs), jnp.asarray(goal))
    np.testing.assert_allclose(reward, -metrics["dist"])


def test_eval_goal_sets(run):
    env = run["env"]
    sets = env.eval_goal_sets()
    expected = {"far", "all"} if run["name"] in MAZES else {"tasks"}
    assert set(sets) == expected
    for goals in sets.values():
        assert goals.ndim == 2 and goals.shape[1] == env.goal_dim and len(goals) >= 1
        assert goals.dtype == np.float32 and np.isfinite(goals).all()
    if "tasks" in sets:
        assert len(sets["tasks"]) == 5 and len(np.unique(sets["tasks"], axis=0)) == 5
    else:
        assert len(sets["far"]) < len(sets["all"])
    state = jax.tree.map(lambda x: x[0], run["first"])
    swapped = env.with_goal(state, next(iter(sets.values()))[0])
    np.testing.assert_allclose(swapped.obs[env.state_dim :], next(iter(sets.values()))[0])


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW_TASKS)
def test_crl_smoke_run(name, tmp_path):
    """CRL trains on the task from the public API: 2 iterations of 4 envs x 10 steps with updates,
    evaluation at the start and end, finite losses and metrics. (``benchmarks/tasks.sh`` runs
    the same per task at 64 envs and records compile time and throughput.)"""
    run = RunConfig(
        env=name,
        num_envs=4,
        unroll_length=10,
        episode_length=20,
        total_env_steps=80,
        eval_every=80,
        batch_size=16,
        buffer_size=400,
        prefill_steps=10,
        utd_ratio=0.1,
        num_eval_envs=2,
        run_dir=str(tmp_path / name),
        quiet=True,
    )
    agent = CRLConfig(width=32, actor_width=32, repr_dim=16)
    result = goalax.train(TrainConfig(run=run, agent=agent))
    assert [row["env_steps"] for row in result.metrics if "eval/success" in row] == [0, 80]
    final = result.metrics[-1]
    assert 0.0 <= final["eval/success"] <= 1.0
    numeric = {k: v for k, v in final.items() if isinstance(v, float)}
    assert numeric and all(np.isfinite(v) for v in numeric.values()), numeric
