"""Learning runs on CPU: CRL's evaluation success must rise well above an untrained policy."""

import jax
import pytest

import goalax
from goalax.config import RunConfig, TrainConfig
from goalax.evaluate import evaluate_episodes


def uniform_random_success(env, episode_length: int, num_envs: int = 256) -> float:
    """Success of uniformly random actions: the floor a learned policy must clear."""

    def policy(obs, key):
        return jax.random.uniform(key, (obs.shape[0], env.action_size), minval=-1.0, maxval=1.0)

    result = evaluate_episodes(
        env, policy, jax.random.PRNGKey(123), num_envs=num_envs, episode_length=episode_length
    )
    return float(result["success"])


def test_crl_learns_reacher(tmp_path):
    """Reacher, 50-step episodes, 120k env steps (about 2-4 minutes on 2 CPU cores)."""
    run = RunConfig(
        env="reacher",
        episode_length=50,
        num_envs=64,
        total_env_steps=120_000,
        prefill_steps=100,
        eval_every=40_000,
        num_eval_envs=256,
        run_dir=str(tmp_path / "reacher"),
        quiet=True,
    )
    result = goalax.train(TrainConfig(run=run))
    curve = [(row["env_steps"], round(row["eval/success"], 3)) for row in result.metrics]
    untrained, final = result.metrics[0]["eval/success"], result.metrics[-1]["eval/success"]
    random_level = uniform_random_success(goalax.envs.make("reacher"), 50)
    print(f"\nreacher CRL success curve {curve}; uniform-random policy {random_level:.3f}")
    assert final >= 2.0 * random_level
    assert final >= untrained + 0.2
    assert result.metrics[-1]["eval/dist"] < result.metrics[0]["eval/dist"]


@pytest.mark.slow
def test_crl_learns_simple_u_maze(tmp_path):
    """Point mass in the U-maze; slower (MuJoCo collisions), so only with ``-m slow``."""
    run = RunConfig(
        env="simple_u_maze",
        episode_length=200,
        num_envs=64,
        total_env_steps=300_000,
        prefill_steps=200,
        eval_every=100_000,
        run_dir=str(tmp_path / "maze"),
        quiet=True,
    )
    result = goalax.train(TrainConfig(run=run))
    untrained, final = result.metrics[0]["eval/success"], result.metrics[-1]["eval/success"]
    print(f"\nsimple_u_maze CRL success {untrained:.3f} -> {final:.3f}")
    assert final >= untrained + 0.2
