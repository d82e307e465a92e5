"""``goalax bench``: throughput of the compiled training iteration for a config.

Measures what a user's run would do, with the same program: compile time of one chunk, then
``iterations`` training iterations timed after a warm-up iteration (env steps/s and gradient
steps/s; the prefill is skipped so that every timed iteration updates), the replay buffer's size
in bytes, and peak memory (process RSS; device peak bytes where the backend reports them).
``--physics-only`` times vectorised env stepping with random actions: the ceiling for that env
and env count.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Annotated

import jax
import jax.numpy as jnp
import tyro

from goalax import agents
from goalax.config import ConfigError, RunConfig, TrainConfig
from goalax.training import preflight, rollout
from goalax.training.loop import buffer_bytes, build, compile_program, init_state, make_env


@dataclass(frozen=True)
class BenchOptions:
    """What to measure (the run and agent flags are those of ``goalax train AGENT``; the agent
    itself is chosen with ``--agent NAME``, read by the CLI before these flags)."""

    iterations: int = 5
    """Timed training iterations (after one warm-up iteration)."""
    physics_only: bool = False
    """Time env stepping with random actions only (no learning): the throughput ceiling."""
    json: bool = False
    """Print one JSON object instead of a table."""


def bench_command(agent_name: str) -> type:
    """Flags of ``goalax bench --agent NAME``: run, agent and bench options, flat."""
    agent_config = agents.config_class(agent_name)
    flat = tyro.conf.OmitArgPrefixes
    command = dataclasses.make_dataclass(
        f"Bench{agent_name.upper()}",
        [
            ("run", Annotated[RunConfig, flat], field(default_factory=RunConfig)),
            ("agent", Annotated[agent_config, flat], field(default_factory=agent_config)),
            ("bench", Annotated[BenchOptions, flat], field(default_factory=BenchOptions)),
        ],
        frozen=True,
    )
    command.__doc__ = (
        f"Throughput of training {agent_name} (choose the agent with --agent NAME: "
        f"{', '.join(agents.names())}; default crl)."
    )
    return command


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _device_peak_mb() -> float | None:
    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else peak / 2**20


def _bench_training(config: TrainConfig, iterations: int) -> dict:
    # Prefill iterations take no updates: the timed iterations must be training ones.
    run = dataclasses.replace(config.run, prefill_steps=0)
    program = build(dataclasses.replace(config, run=run))
    preflight.check_memory(program)
    state = init_state(program)
    steps = program.schedule.steps_per_iteration
    t0 = time.perf_counter()
    chunk, _, _ = compile_program(program, state)
    compile_s = time.perf_counter() - t0
    state = chunk(state, jnp.int32(steps))  # warm-up iteration
    int(state.env_steps)
    start_steps, start_grads = int(state.env_steps), int(state.grad_steps)
    t0 = time.perf_counter()
    state = chunk(state, jnp.int32(start_steps + iterations * steps))
    env_steps = int(state.env_steps) - start_steps
    elapsed = time.perf_counter() - t0
    grad_steps = int(state.grad_steps) - start_grads
    seeds = config.run.num_seeds
    learner = jax.tree.leaves((state.seeds.agent, state.seeds.metric_sums))
    return {
        "finite": all(bool(jnp.isfinite(leaf).all()) for leaf in learner),
        "env_steps_per_s": seeds * env_steps / elapsed,
        "grad_steps_per_s": seeds * grad_steps / elapsed,
        "compile_s": compile_s,
        "iteration_s": elapsed / iterations,
        "updates_per_iteration": program.schedule.updates_per_iteration,
        "env_steps_per_iteration": steps,
        "buffer_bytes": buffer_bytes(state),
    }


def _bench_physics(config: TrainConfig, iterations: int) -> dict:
    run = config.run
    env = make_env(config)
    episode_length = run.episode_length or env.episode_length

    def random_policy(obs, key):
        return jax.random.uniform(key, (obs.shape[0], env.action_size), minval=-1.0, maxval=1.0)

    def steps(carry, key):
        carry, _, _ = rollout.collect(
            env,
            random_policy,
            carry,
            key,
            unroll_length=run.unroll_length,
            episode_length=episode_length,
            budget=jnp.int32(run.num_envs * run.unroll_length),
        )
        return carry

    carry = jax.jit(lambda k: rollout.reset(env, k, run.num_envs))(jax.random.PRNGKey(run.seed))
    t0 = time.perf_counter()
    fn = jax.jit(steps).lower(carry, jax.random.PRNGKey(0)).compile()
    compile_s = time.perf_counter() - t0
    carry = fn(carry, jax.random.PRNGKey(1))
    jax.block_until_ready(carry)
    t0 = time.perf_counter()
    for i in range(iterations):
        carry = fn(carry, jax.random.PRNGKey(2 + i))
    jax.block_until_ready(carry)
    elapsed = time.perf_counter() - t0
    return {
        "env_steps_per_s": iterations * run.num_envs * run.unroll_length / elapsed,
        "grad_steps_per_s": 0.0,
        "compile_s": compile_s,
        "iteration_s": elapsed / iterations,
    }


def run_bench(config: TrainConfig, options: BenchOptions) -> dict:
    """Run the benchmark, print the result (JSON or a table) and return it."""
    cfg = options
    if cfg.iterations < 1:
        raise ConfigError(f"--iterations must be a positive integer, got {cfg.iterations}")
    if cfg.physics_only:
        result = _bench_physics(config, cfg.iterations)
    else:
        result = _bench_training(config, cfg.iterations)
    device = jax.devices()[0]
    result.update(
        {
            "mode": "physics_only" if cfg.physics_only else "train",
            "peak_rss_mb": _peak_rss_mb(),
            "device_peak_mb": _device_peak_mb(),
            "device": f"{device.platform}:{device.device_kind}",
            "num_devices": jax.device_count(),
            "config": {
                "agent": config.agent_name,
                "run": dataclasses.asdict(config.run),
                "agent_config": dataclasses.asdict(config.agent),
                "iterations": cfg.iterations,
            },
        }
    )
    if cfg.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            if key != "config":
                text = f"{value:,.2f}" if isinstance(value, float) else str(value)
                print(f"{key:>24}: {text}", file=sys.stdout)
    return result
