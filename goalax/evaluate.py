"""Evaluation, in one place: the episode rollout and its metrics (``evaluate_episodes``, which
training runs at every evaluation point), their names (``METRICS``, the ``eval/...`` columns of
``metrics.jsonl``) and ``goalax eval`` (success, distance and time at goal of a run's latest
checkpoint).

Episodes use the run's evaluation policy (its mode, or samples with ``--no-deterministic-eval``)
and its own episode length, from fresh resets with random goals or, with a named goal set,
``episodes`` episodes for every goal of the set.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from goalax.errors import ConfigError
from goalax.training.rollout import Policy, play

#: goalax's per-evaluation metrics (``eval/<name>`` in metrics rows), see ``evaluate_episodes``.
GOALAX_METRICS = (
    "success",
    "success_easy",
    "success_at_end",
    "time_at_goal",
    "dist",
    "episode_return",
    "episode_length",
)
#: The reference's (jaxgcrl 0.2.8) evaluation metrics under its own names, by its definitions:
#: sums over the steps an episode lived, averaged over episodes (docs/run_directory.md).
REFERENCE_METRICS = (
    "episode_success",
    "episode_success_easy",
    "episode_dist",
    "episode_success_any",
)
METRICS = GOALAX_METRICS + REFERENCE_METRICS


def evaluate_episodes(
    env: Any,
    policy: Policy,
    key: jax.Array,
    *,
    num_envs: int,
    episode_length: int,
    goals: jax.Array | None = None,
) -> dict[str, jax.Array]:
    """Run one episode per env from a fresh reset; per-episode metrics averaged over envs.

    With ``goals [n, goal_dim]`` (a named evaluation-goal set), episode i pursues
    ``goals[i % n]`` and ``success_per_goal [n]`` is added (each goal's success rate).

    success = reached at least once; success_at_end = within threshold at the episode's last
    step; time_at_goal = fraction of the ``episode_length`` steps within threshold; dist = mean
    distance over the steps the episode lasted. After a true termination nothing counts: the
    terminal step is the episode's last (it can still be a success), and the steps it did not
    live count as not at the goal in ``time_at_goal`` (so falling early is never rewarded) and are
    left out of ``dist`` and ``episode_return``. ``episode_length`` reports the mean steps lived.

    The reference's metrics (``REFERENCE_METRICS``) count the same lived steps (its evaluator
    stops accumulating at ``done``, the terminal step included) but sum them: ``episode_success``
    = steps within the threshold (= ``time_at_goal × episode_length``), ``episode_success_easy``
    = steps within the loose one, ``episode_dist`` = distance summed over the steps lived,
    ``episode_success_any`` = ``success``.
    """
    reset_key, act_key = jax.random.split(key)
    state = jax.vmap(env.reset)(jax.random.split(reset_key, num_envs))
    if goals is not None:
        goal_index = jnp.arange(num_envs) % goals.shape[0]
        state = jax.vmap(env.with_goal)(state, goals[goal_index])

    def record(carry, action, nxt, t):
        alive = carry[1]
        m = nxt.metrics
        return {
            "success": m["success"] * alive,
            "success_easy": m["success_easy"] * alive,
            "dist": m["dist"] * alive,
            "reward": nxt.reward * alive,
            "alive": alive,
        }

    def next_carry(carry, nxt, t, key):
        return nxt, carry[1] * (1.0 - (nxt.done > 0))

    alive0 = jnp.ones((num_envs,), jnp.float32)
    _, rec = play(
        env,
        policy,
        (state, alive0),
        act_key,
        episode_length,
        state_of=lambda carry: carry[0],
        next_carry=next_carry,
        record=record,
    )
    length = jnp.maximum(rec["alive"].sum(0), 1.0)
    last = jnp.maximum(length.astype(jnp.int32) - 1, 0)
    at_end = rec["success"][last, jnp.arange(num_envs)]
    steps_at_goal = rec["success"].sum(0)
    result = {
        "episode_success": steps_at_goal.mean(),
        "episode_success_easy": rec["success_easy"].sum(0).mean(),
        "episode_dist": rec["dist"].sum(0).mean(),
        "episode_success_any": (steps_at_goal > 0).mean(),
        "success": rec["success"].max(0).mean(),
        "success_easy": rec["success_easy"].max(0).mean(),
        "success_at_end": at_end.mean(),
        "time_at_goal": (steps_at_goal / episode_length).mean(),
        "dist": (rec["dist"].sum(0) / length).mean(),
        "episode_return": rec["reward"].sum(0).mean(),
        "episode_length": rec["alive"].sum(0).mean(),
    }
    if goals is not None:
        reached = rec["success"].max(0)
        hits = jnp.zeros(goals.shape[0]).at[goal_index].add(reached)
        counts = jnp.zeros(goals.shape[0]).at[goal_index].add(1.0)
        result["success_per_goal"] = hits / jnp.maximum(counts, 1.0)
    return result


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
    deterministic = run.config.run.deterministic_eval

    def evaluate(params, key):
        def policy(obs, k):
            return run.act(params, obs, k, deterministic)

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
        "deterministic": run.config.run.deterministic_eval,
        "mean": {m: float(np.mean([s[m] for s in seeds])) for m in METRICS},
        "seeds": seeds,
    }


def _rows(label: str, metrics: dict, width: int, names: tuple[str, ...]) -> str:
    return f"{label:<{width}}" + "".join(f"  {metrics[m]:>20.4f}" for m in names)


def _table(report: dict, names: tuple[str, ...], width: int) -> list[str]:
    lines = [f"{'':<{width}}" + "".join(f"  {m:>20}" for m in names)]
    for seed in report["seeds"]:
        for g, goal in enumerate(seed.get("per_goal", [])):
            coords = ",".join(f"{x:.2f}" for x in goal["goal"])
            lines.append(_rows(f"s{seed['seed']} g{g} ({coords})"[:width], goal, width, names))
        lines.append(_rows(f"seed {seed['seed']}", seed, width, names))
    if len(report["seeds"]) > 1:
        lines.append(_rows("mean", report["mean"], width, names))
    return lines


def format_report(report: dict) -> str:
    """The report as two tables, goalax's metrics then the reference's (sums over the steps
    lived): one row per seed (and per goal), then the mean over seeds."""
    goals = report["goal_set"]
    what = f"goal set '{goals}'" if goals else "random goals"
    per = f"{report['episodes']} episode(s) per goal" if goals else f"{report['episodes']} episodes"
    policy = "deterministic policy" if report["deterministic"] else "sampled actions"
    width = 24 if goals else 10
    return "\n".join(
        [
            f"{report['run_dir']}: {report['agent']} on {report['env']} at env step "
            f"{report['env_steps']:,}; {what}, {per} per seed, {policy}, "
            f"{report['episode_length']} steps",
            *_table(report, GOALAX_METRICS, width),
            "as jaxgcrl reports them (sums over the steps lived):",
            *_table(report, REFERENCE_METRICS, width),
        ]
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``goalax eval`` flags."""
    parser.description = (
        "Evaluate a run's newest saved policy with its evaluation policy (deterministic unless the "
        "run was trained with --no-deterministic-eval)."
    )
    parser.add_argument(
        "run_dir", help="run directory, or one saved policy folder (RUN/policies/<step>)"
    )
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
