"""``goalax eval``: success, distance and time at goal of a run's latest checkpoint.

Episodes use the deterministic policy and the run's own episode length, from fresh resets with
random goals or, with a named goal set, ``episodes`` episodes for every goal of the set.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from goalax.config import ConfigError
from goalax.training.rollout import evaluate_episodes

METRICS = ("success", "success_easy", "success_at_end", "time_at_goal", "dist", "episode_return")


def goal_set(env: Any, name: str) -> np.ndarray:
    """``[n, goal_dim]`` goals of the env's set ``name``; the error lists the sets it has."""
    sets = env.eval_goal_sets()
    if name not in sets:
        available = ", ".join(sorted(sets)) or "none (this task defines no goal sets)"
        raise ConfigError(f"unknown goal set '{name}'; available: {available}")
    return np.asarray(sets[name], np.float32)


def _seed_evaluator(run: Any, episodes: int, goals: np.ndarray | None):
    """Jitted ``(params, key) -> {metric: []}`` or, with goals, ``{metric: [n_goals]}``."""
    env = run.env

    def evaluate(params, key):
        def policy(obs, k):
            return run.act(params, obs, k, True)

        def episodes_for(goal_batch, k):
            return evaluate_episodes(
                env,
                policy,
                k,
                num_envs=episodes,
                episode_length=env.episode_length,
                goals=goal_batch,
            )

        if goals is None:
            return {m: v for m, v in episodes_for(None, key).items() if m in METRICS}
        keys = jax.random.split(key, goals.shape[0])
        per_goal = jax.vmap(lambda g, k: episodes_for(g[None], k))(jnp.asarray(goals), keys)
        return {m: v for m, v in per_goal.items() if m in METRICS}

    return jax.jit(evaluate)


def evaluate_run(
    run: Any,
    *,
    run_dir: str,
    episodes: int = 100,
    goal_set_name: str | None = None,
    seed_index: int | None = None,
    key: jax.Array,
) -> dict:
    """Evaluate every seed of a loaded run (or one) and return a JSON-ready report.

    ``seeds[i]`` holds that seed's metrics (means over episodes; with a goal set, the mean over
    goals of each goal's mean, and ``per_goal`` lists each goal's own metrics); ``mean`` is the
    mean over the evaluated seeds.
    """
    if episodes < 1:
        raise ConfigError(f"--episodes must be a positive integer, got {episodes}")
    num_seeds = run.config.run.num_seeds
    if seed_index is not None and not 0 <= seed_index < num_seeds:
        raise ConfigError(
            f"--seed-index {seed_index} is out of range; the run has {num_seeds} seed(s) "
            f"(indices 0-{num_seeds - 1})"
        )
    goals = None if goal_set_name is None else goal_set(run.env, goal_set_name)
    evaluate = _seed_evaluator(run, episodes, goals)
    indices = range(num_seeds) if seed_index is None else [seed_index]
    seeds = []
    for i in indices:
        values = jax.device_get(evaluate(run.seed_params(i), jax.random.fold_in(key, i)))
        entry: dict[str, Any] = {"seed": run.config.run.seed + i, "seed_index": i}
        entry.update({m: float(np.mean(values[m])) for m in METRICS})
        if goals is not None:
            entry["per_goal"] = [
                {"goal": goals[g].tolist(), **{m: float(values[m][g]) for m in METRICS}}
                for g in range(goals.shape[0])
            ]
        seeds.append(entry)
    return {
        "run_dir": run_dir,
        "env": run.config.run.env,
        "agent": run.config.agent_name,
        "env_steps": run.env_steps,
        "episodes": episodes,
        "goal_set": goal_set_name,
        "episode_length": run.env.episode_length,
        "mean": {m: float(np.mean([s[m] for s in seeds])) for m in METRICS},
        "seeds": seeds,
    }


def _row(label: str, metrics: dict, width: int) -> str:
    return f"{label:<{width}}" + "".join(f"  {metrics[m]:>14.4f}" for m in METRICS)


def format_report(report: dict) -> str:
    """The report as a table: one row per seed (and per goal), then the mean over seeds."""
    goals = report["goal_set"]
    what = f"goal set '{goals}'" if goals else "random goals"
    per = f"{report['episodes']} episode(s) per goal" if goals else f"{report['episodes']} episodes"
    lines = [
        f"{report['run_dir']}: {report['agent']} on {report['env']} at env step "
        f"{report['env_steps']:,}; {what}, {per} per seed, deterministic policy, "
        f"{report['episode_length']} steps"
    ]
    width = 24 if goals else 10
    lines.append(f"{'':<{width}}" + "".join(f"  {m:>14}" for m in METRICS))
    for seed in report["seeds"]:
        for g, goal in enumerate(seed.get("per_goal", [])):
            coords = ",".join(f"{x:.2f}" for x in goal["goal"])
            lines.append(_row(f"s{seed['seed']} g{g} ({coords})"[:width], goal, width))
        lines.append(_row(f"seed {seed['seed']}", seed, width))
    if len(report["seeds"]) > 1:
        lines.append(_row("mean", report["mean"], width))
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``goalax eval`` flags."""
    parser.description = "Evaluate a run's latest checkpoint with the deterministic policy."
    parser.add_argument("run_dir", help="run directory (config.json and checkpoints/)")
    parser.add_argument("--episodes", type=int, default=100, help="episodes (per goal with a set)")
    parser.add_argument("--eval-goals", default=None, help="named goal set instead of random goals")
    parser.add_argument("--seed-index", type=int, default=None, help="only this seed of the run")
    parser.add_argument("--key", type=int, default=0, help="random key of resets and goals")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run_command(args: argparse.Namespace) -> str:
    """Load, evaluate and format; ConfigError for a bad run directory or goal set."""
    import goalax

    run = goalax.load(args.run_dir)
    report = evaluate_run(
        run,
        run_dir=args.run_dir,
        episodes=args.episodes,
        goal_set_name=args.eval_goals,
        seed_index=args.seed_index,
        key=jax.random.PRNGKey(args.key),
    )
    return json.dumps(report) if args.json else format_report(report)
