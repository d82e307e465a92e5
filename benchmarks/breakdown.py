"""Where an iteration's time goes, and how goal sampling scales with episode length.

    python benchmarks/breakdown.py --env reacher --num-envs 256
    python benchmarks/breakdown.py --scaling-only

Times each jitted piece of one training iteration separately on the current device (collect,
insert, sample one batch, one update, one evaluation), then the episode-length scaling check:
goal sampling time and buffer bytes at episode length 1000 vs 4000 with the same capacity.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp

from goalax import buffer as replay
from goalax.agents import SampleContext
from goalax.config import RunConfig, TrainConfig
from goalax.evaluate import evaluate_episodes
from goalax.training import rollout
from goalax.training.loop import build, init_state


def timed(fn, *args, repeat: int = 5) -> float:
    """Median-free simple mean over ``repeat`` calls after one warm-up call (seconds)."""
    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(repeat):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / repeat


def breakdown(env_name: str, num_envs: int) -> dict:
    config = TrainConfig(run=RunConfig(env=env_name, num_envs=num_envs))
    program = build(config)
    run, schedule, agent, env = config.run, program.schedule, program.agent, program.env
    seed = jax.tree.map(lambda x: x[0], init_state(program).seeds)

    def policy(obs, key):
        return agent.act(seed.agent.params, obs, key, False)

    collect = jax.jit(
        lambda carry, key: rollout.collect(
            env,
            policy,
            carry,
            key,
            unroll_length=run.unroll_length,
            episode_length=schedule.episode_length,
            budget=jnp.int32(schedule.steps_per_iteration),
            fields=agent.fields,
        )
    )
    carry, transitions, ids = collect(seed.env, jax.random.PRNGKey(0))
    insert = jax.jit(replay.insert, donate_argnums=0)
    buf = seed.buffer
    for _ in range(8):  # fill a few iterations' worth
        buf = insert(buf, transitions, ids)
    context = SampleContext(run.batch_size, schedule.episode_length, env.goal_reward)
    sample = jax.jit(lambda b, k: agent.sample(b, k, context))
    batch = sample(buf, jax.random.PRNGKey(1))
    update = jax.jit(agent.update)
    evaluate = jax.jit(
        lambda p, k: evaluate_episodes(
            env,
            lambda o, kk: agent.act(p, o, kk, True),
            k,
            num_envs=run.num_eval_envs,
            episode_length=schedule.episode_length,
        )
    )
    t_collect = timed(collect, seed.env, jax.random.PRNGKey(2))
    start = time.perf_counter()
    for _ in range(5):
        buf = insert(buf, transitions, ids)  # donated: written in place
    jax.block_until_ready(buf)
    t_insert = (time.perf_counter() - start) / 5
    t_sample = timed(sample, buf, jax.random.PRNGKey(3))
    t_update = timed(update, seed.agent, batch, jax.random.PRNGKey(4))
    t_eval = timed(evaluate, seed.agent.params, jax.random.PRNGKey(5), repeat=1)
    updates = schedule.updates_per_iteration
    per_iteration = {
        "collect_s": t_collect,
        "insert_s": t_insert,
        "sample_s": updates * t_sample,
        "update_s": updates * t_update,
    }
    total = sum(per_iteration.values())
    return {
        "env": env_name,
        "num_envs": num_envs,
        "env_steps_per_iteration": schedule.steps_per_iteration,
        "updates_per_iteration": updates,
        "per_iteration_s": per_iteration,
        "share": {k: v / total for k, v in per_iteration.items()},
        "one_evaluation_s": t_eval,
        "device": str(jax.devices()[0]),
    }


def scaling(capacity_transitions: int = 1_024_000, num_envs: int = 256) -> dict:
    rows = capacity_transitions // num_envs
    example = {"state_obs": jnp.zeros((num_envs, 29)), "next_goal": jnp.zeros((num_envs, 2))}
    out = {}
    for episode_length in (1000, 4000):
        buf = replay.init(example, rows)
        chunk = jax.tree.map(lambda x: jnp.zeros((rows,) + x.shape), example)
        ids = jnp.repeat(jnp.arange(rows)[:, None] // episode_length, num_envs, axis=1)
        buf = jax.jit(replay.insert)(buf, chunk, ids.astype(jnp.int32))
        sample = jax.jit(
            lambda b, k, L=episode_length: replay.sample(
                b, k, 256, max_episode_length=L, gamma=0.99
            )
        )
        nbytes = sum(x.nbytes for x in jax.tree.leaves(buf))
        out[episode_length] = {
            "sample_s": timed(sample, buf, jax.random.PRNGKey(0), repeat=50),
            "buffer_mb": nbytes / 2**20,
        }
    out["sample_time_ratio_4000_vs_1000"] = out[4000]["sample_s"] / out[1000]["sample_s"]
    out["buffer_memory_ratio_4000_vs_1000"] = out[4000]["buffer_mb"] / out[1000]["buffer_mb"]
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="reacher")
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--scaling-only", action="store_true")
    args = parser.parse_args()
    result = {"scaling": scaling()}
    if not args.scaling_only:
        result["breakdown"] = breakdown(args.env, args.num_envs)
    print(json.dumps(result, indent=2))
