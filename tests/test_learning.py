"""Learning runs on CPU: every agent's evaluation success must rise clearly above both the
uniform-random policy and its own untrained policy.

The default suite trains each agent on the pure-JAX ``point`` task (seconds per run); reacher
and the U-maze are slower and run with ``-m slow``. Budgets and settings were chosen from
measured curves (two seeds each, see docs/results.md, "Learning tests") with room to spare: a
broken update stays near its untrained level and fails the margin.
"""

import dataclasses
import functools
import json
import os
import subprocess
import sys

import jax
import pytest
from conftest import LOW_OPTIMISATION

import goalax
from goalax.agents import cmd, crl, gciql, gcsl, ppo, sac, td3, td_infonce
from goalax.config import REPLAY_FIELDS, RunConfig, TrainConfig
from goalax.evaluate import evaluate_episodes

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "learning_runs.py")
#: How far above max(uniform-random, untrained) the final success must be.
MARGIN = 0.25


def uniform_random_success(env, episode_length: int, num_envs: int = 256) -> float:
    """Success of uniformly random actions: the floor a learned policy must clear."""

    def policy(obs, key):
        return jax.random.uniform(key, (obs.shape[0], env.action_size), minval=-1.0, maxval=1.0)

    result = evaluate_episodes(
        env, policy, jax.random.PRNGKey(123), num_envs=num_envs, episode_length=episode_length
    )
    return float(result["success"])


@functools.cache
def point_random_success() -> float:
    return uniform_random_success(goalax.envs.make("point"), 50)


def check_learns(rows: list[dict], label: str, random_level: float, margin: float = MARGIN) -> None:
    curve = [(row["env_steps"], round(row["eval/success"], 3)) for row in rows]
    untrained, final = rows[0]["eval/success"], rows[-1]["eval/success"]
    print(
        f"\n{label}: untrained {untrained:.3f}, uniform-random {random_level:.3f}, "
        f"final {final:.3f}; curve {curve}"
    )
    assert final >= max(untrained, random_level) + margin
    assert rows[-1]["eval/dist"] < rows[0]["eval/dist"]


#: Small point runs: 50-step episodes, short unrolls, small networks.
POINT = RunConfig(
    env="point",
    episode_length=50,
    num_envs=32,
    unroll_length=10,
    batch_size=128,
    buffer_size=100_000,
    prefill_steps=0,
    num_eval_envs=128,
    quiet=True,
)


def point_run(run_dir: str, total_env_steps: int, **overrides) -> RunConfig:
    return dataclasses.replace(
        POINT, total_env_steps=total_env_steps, eval_every=total_env_steps // 4, run_dir=run_dir,
        **overrides,
    )  # fmt: skip


def crl_point(run_dir: str) -> TrainConfig:
    """Measured: 0.00 -> 0.68 at 12k env steps (6 s on 2 cores)."""
    run = point_run(run_dir, 12_000, num_envs=16, prefill_steps=100)
    return TrainConfig(run=run, agent=crl.CRLConfig(width=64, actor_width=64))


def crl_mrn_point(run_dir: str) -> TrainConfig:
    """CRL with the MRN quasimetric energy. Measured (XLA default optimisation, eval every 3k):
    0.68 (seed 0) and 0.23 (seed 1) at 12k env steps, as ``crl_point``'s own l2 energy; 0.99 and
    0.75 at 15k; 1.00 both at 18k. IQE needs 21k+ (0.89, 0.97) and ~20 s: not in the suite."""
    run = point_run(run_dir, 15_000, num_envs=16, prefill_steps=100)
    return TrainConfig(run=run, agent=crl.CRLConfig(energy="mrn", width=64, actor_width=64))


def sac_her_point(run_dir: str) -> TrainConfig:
    """Measured: 0.00 -> 0.42 (seed 0), 0.47 (seed 1), 0.62 (seed 2) at 16k env steps (8 s)."""
    run = point_run(run_dir, 16_000, utd_ratio=0.25)
    agent = sac.SACConfig(her=True, width=64, actor_width=64)
    return TrainConfig(run=run, agent=agent, agent_name="sac")


def td3_her_point(run_dir: str) -> TrainConfig:
    """Measured: 0.09 -> 0.73 (seed 0) and 0.02 -> 0.85 (seed 1) at 24k env steps (11 s); at 16k,
    seed 1 stayed at 0.09."""
    run = point_run(run_dir, 24_000, utd_ratio=0.5)
    agent = td3.TD3Config(her=True, width=64, actor_width=64, exploration_noise=0.2)
    return TrainConfig(run=run, agent=agent, agent_name="td3")


def ppo_point(run_dir: str) -> TrainConfig:
    """Dense reward (on-policy PPO gets no relabelling); measured 0.00 -> 0.95 at 100k env
    steps (5 s)."""
    # On-policy: the replay settings keep RunConfig's defaults (PPO refuses others).
    unset = {name: getattr(RunConfig(), name) for name in REPLAY_FIELDS}
    run = point_run(run_dir, 100_000, dense_reward=True, **unset)
    agent = ppo.PPOConfig(width=64, actor_width=64, num_minibatches=4, learning_rate=1e-3)
    return TrainConfig(run=run, agent=agent, agent_name="ppo")


def gcsl_point(run_dir: str) -> TrainConfig:
    """Default run settings (update ratio 1/16); measured 0.00 -> 0.91, 0.97, 0.99 (seeds 0, 1,
    2) at 8k env steps (8 s); already 0.84, 0.88, 0.86 at 4k."""
    run = point_run(run_dir, 8_000)
    return TrainConfig(run=run, agent=gcsl.GCSLConfig(actor_width=64), agent_name="gcsl")


def td_infonce_point(run_dir: str) -> TrainConfig:
    """γ = 0.9 (default 0.99): at 0.99 the occupancy of a policy that reaches its goal in k
    steps and stays there changes by only ~1% per step of k; on point it had not taken off at
    12k env steps (0.09), and with --tau 0.02 it rose to 0.88 at 13k and fell back to 0.06 at
    27k (docs/agents.md). Update ratio 1/4 and batch 64 (half the cost of its 2,000 gradient
    steps). Measured 0.00 -> 0.80 (seed 0) and 0.00 -> 0.89 (seed 1) at 8k env steps; at 6k
    0.48 and 0.80, at 4k 0.02 and 0.06. 22 s of training at load 8 on 2 cores."""
    run = point_run(run_dir, 8_000, num_envs=16, prefill_steps=100, utd_ratio=0.25, batch_size=64)
    agent = td_infonce.TDInfoNCEConfig(width=64, actor_width=64, discount=0.9)
    return TrainConfig(run=run, agent=agent, agent_name="td_infonce")


def gciql_point(run_dir: str) -> TrainConfig:
    """Update ratio 1/4 as SAC's; measured 0.09 -> 0.92 (seed 0), 0.02 -> 0.98 (seed 1),
    0.00 -> 1.00 (seed 2) at 12k env steps; at 9k seed 0 was only at 0.33. About 1.5x SAC's run
    per env step (three networks, two batches): ~12 s on 2 idle cores (55 s measured at load 7)."""
    run = point_run(run_dir, 12_000, utd_ratio=0.25)
    agent = gciql.GCIQLConfig(width=64, actor_width=64)
    return TrainConfig(run=run, agent=agent, agent_name="gciql")


def cmd_point(run_dir: str) -> TrainConfig:
    """CRL's run settings, --repr-dim 32 (the MRN's all-pairs max costs 3.7x CRL's update at
    64, 1.4x at 32); measured 0.00 -> 0.99 (seed 0), 0.77 (seed 1), 1.00 (seed 2) at 16k env
    steps; at 12k only 0.46, 0.37, 0.30: the quasimetric critic starts slower than CRL's.
    31 s of training at load 12 on 2 cores, next to CRL's 11 s in the same process."""
    run = point_run(run_dir, 16_000, num_envs=16, prefill_steps=100)
    agent = cmd.CMDConfig(width=64, actor_width=64, repr_dim=32)
    return TrainConfig(run=run, agent=agent, agent_name="cmd")


#: The default suite's learning runs, by test name; tests/scripts/learning_runs.py trains them.
POINT_RUNS = {
    "test_crl_learns_point": crl_point,
    "test_crl_mrn_learns_point": crl_mrn_point,
    "test_sac_her_learns_point": sac_her_point,
    "test_td3_her_learns_point": td3_her_point,
    "test_ppo_learns_point": ppo_point,
    "test_gcsl_learns_point": gcsl_point,
    "test_gciql_learns_point": gciql_point,
    "test_td_infonce_learns_point": td_infonce_point,
    "test_cmd_learns_point": cmd_point,
}


@pytest.fixture(scope="module")
def point_rows(request, tmp_path_factory) -> dict[str, list[dict]]:
    """The selected point runs' metric rows, trained in one fresh process at XLA's default
    optimisation: the suite compiles at low optimisation (tests/conftest.py), which slows these
    update-bound runs more than it saves compiling them (whole file: ~35 s less this way)."""
    wanted = [item.name for item in request.session.items if item.name in POINT_RUNS]
    out = tmp_path_factory.mktemp("learning")
    env = dict(os.environ)
    env["XLA_FLAGS"] = env.get("XLA_FLAGS", "").replace(LOW_OPTIMISATION, "").strip()
    done = subprocess.run(
        [sys.executable, SCRIPT, str(out), *wanted], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out / "rows.json") as f:
        return json.load(f)


def test_crl_learns_point(point_rows):
    check_learns(point_rows["test_crl_learns_point"], "point CRL", point_random_success())


def test_crl_mrn_learns_point(point_rows):
    rows = point_rows["test_crl_mrn_learns_point"]
    check_learns(rows, "point CRL (MRN energy)", point_random_success())


def test_sac_her_learns_point(point_rows):
    rows = point_rows["test_sac_her_learns_point"]
    check_learns(rows, "point SAC+HER", point_random_success(), margin=0.2)
    assert rows[-1]["train/relabelled_fraction"] == pytest.approx(0.8, abs=0.05)


def test_td3_her_learns_point(point_rows):
    check_learns(point_rows["test_td3_her_learns_point"], "point TD3+HER", point_random_success())


def test_ppo_learns_point(point_rows):
    check_learns(point_rows["test_ppo_learns_point"], "point PPO", point_random_success())


def test_gcsl_learns_point(point_rows):
    check_learns(point_rows["test_gcsl_learns_point"], "point GCSL", point_random_success())


def test_gciql_learns_point(point_rows):
    check_learns(point_rows["test_gciql_learns_point"], "point GCIQL", point_random_success())


def test_td_infonce_learns_point(point_rows):
    rows = point_rows["test_td_infonce_learns_point"]
    check_learns(rows, "point TD-InfoNCE", point_random_success())


def test_cmd_learns_point(point_rows):
    check_learns(point_rows["test_cmd_learns_point"], "point CMD", point_random_success())


@pytest.mark.slow
def test_crl_learns_reacher(tmp_path):
    """Reacher, 50-step episodes, 200k env steps (about 4 minutes on 2 CPU cores). On the
    reference's reacher a random policy already succeeds in ~0.58 of 50-step episodes, so the
    margin asks for ~0.85: 120k steps cleared it by only 0.02."""
    run = RunConfig(
        env="reacher",
        episode_length=50,
        num_envs=64,
        total_env_steps=200_000,
        prefill_steps=100,
        eval_every=50_000,
        num_eval_envs=256,
        run_dir=str(tmp_path / "reacher"),
        quiet=True,
    )
    result = goalax.train(TrainConfig(run=run))
    random_level = uniform_random_success(goalax.envs.make("reacher"), 50)
    check_learns(result.metrics, "reacher CRL", random_level)


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
