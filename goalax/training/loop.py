"""The training program: one jitted chunk of iterations (collect → insert → N updates), vmapped
over seeds, with exact env-step budgets.

State is one pytree (``TrainState``): per-seed leaves carry a leading ``[num_seeds]`` axis, the
counters are shared scalars. Because the budget of an iteration is a traced value, the last
(partial) iteration of a run reuses the same compiled program: one compilation per run.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from goalax import agents, envs
from goalax import buffer as replay
from goalax.config import (
    MAX_ENV_STEPS,
    ConfigError,
    RunConfig,
    Schedule,
    TrainConfig,
    check_used,
    make_schedule,
    resolve_defaults,
    steps_to_evaluation,
)
from goalax.evaluate import evaluate_episodes
from goalax.training import rollout, sharding


@struct.dataclass
class SeedState:
    agent: Any
    buffer: replay.BufferState
    env: rollout.EnvCarry
    key: jax.Array
    eval_key: jax.Array
    metric_sums: dict


@struct.dataclass
class TrainState:
    seeds: SeedState  # leaves [num_seeds, ...]
    env_steps: jax.Array  # int32 scalar, per seed (all seeds step together)
    grad_steps: jax.Array  # int32 scalar
    metric_count: jax.Array  # int32 scalar: updates summed into metric_sums since the last row


class Program(NamedTuple):
    """Everything static about a run: env, agent, sizes and the pure functions built from them."""

    config: TrainConfig
    env: envs.GoalEnv
    schedule: Schedule
    agent: agents.Agent
    init: Any  # (seed_keys [K]) -> TrainState
    chunk: Any  # (TrainState, target_env_steps) -> TrainState
    evaluate: Any  # (TrainState) -> metrics dict, leaves [K]
    mesh: Any = None  # jax.sharding.Mesh over the "data" axis, or None on one device


def make_env(config: TrainConfig) -> envs.GoalEnv:
    run = config.run
    try:
        return envs.make(
            run.env,
            episode_length=run.episode_length,
            backend=run.backend,
            impl=run.impl,
            dense_reward=run.dense_reward,
            termination=run.termination,
            reference_model=run.reference_model,
        )
    except ValueError as err:
        raise ConfigError(str(err)) from err


def make_agent(config: TrainConfig, env: envs.GoalEnv) -> agents.Agent:
    try:
        return agents.make(
            config.agent_name,
            config.agent,
            state_dim=env.state_dim,
            goal_dim=env.goal_dim,
            action_dim=env.action_size,
        )
    except ValueError as err:
        raise ConfigError(str(err)) from err


class Parts(NamedTuple):
    """The static pieces every traced function of a run closes over."""

    run: RunConfig
    env: envs.GoalEnv
    agent: agents.Agent
    schedule: Schedule
    #: What the agent's replay sampler needs; ``None`` for on-policy agents.
    sample_context: agents.SampleContext | None


def build(config: TrainConfig) -> Program:
    """Validate the config against the task and build the run's pure functions."""
    check_used(config)
    config = resolve_defaults(config)
    env = make_env(config)
    agent = make_agent(config, env)
    uses_replay = agent.sample is not None
    schedule = make_schedule(config.run, env.episode_length, uses_replay=uses_replay)
    run = config.run
    context = (
        agents.SampleContext(
            run.batch_size, schedule.episode_length, env.goal_reward, env.achieved_goal
        )
        if uses_replay
        else None
    )
    parts = Parts(run, env, agent, schedule, context)
    mesh = sharding.make_mesh(run.num_devices, run.num_envs)
    return Program(
        config,
        env,
        schedule,
        agent,
        init=functools.partial(init_train_state, parts),
        chunk=functools.partial(chunk, parts),
        evaluate=functools.partial(evaluate, parts),
        mesh=mesh,
    )


def policy(agent: agents.Agent, params: Any, deterministic: bool) -> rollout.Policy:
    """The agent's ``act`` as a rollout policy ``(obs, key) -> action``."""
    return lambda obs, key: agent.act(params, obs, key, deterministic)


def init_seed(parts: Parts, key: jax.Array) -> SeedState:
    """One seed's agent, empty replay (one row for on-policy agents), envs and keys."""
    env, run, agent = parts.env, parts.run, parts.agent
    agent_key, env_key, train_key, eval_key = jax.random.split(key, 4)
    carry = rollout.reset(env, env_key, run.num_envs)
    example = rollout.transition_example(env, agent.fields, run.num_envs)
    rows = parts.schedule.buffer_rows if parts.sample_context else 1
    return SeedState(
        agent=agent.init(agent_key),
        buffer=replay.init(example, rows),
        env=carry,
        key=train_key,
        eval_key=eval_key,
        metric_sums={name: jnp.zeros(()) for name in agent.metric_names},
    )


def init_train_state(parts: Parts, seed_keys: jax.Array) -> TrainState:
    zero = jnp.zeros((), jnp.int32)
    seeds = over_seeds(functools.partial(init_seed, parts), parts.run.num_seeds)(seed_keys)
    return TrainState(seeds, zero, zero, zero)


def num_updates(parts: Parts, budget: jax.Array, env_steps: jax.Array) -> jax.Array:
    """Update calls for an iteration of ``budget`` env steps starting at ``env_steps``.

    Iterations that start inside the prefill collect with the initial policy and update nothing,
    so the first update comes after ``prefill_steps`` per env rounded up to whole iterations
    (1,054 with the default unroll of 62, as the reference's prefill). On-policy agents take one
    update per non-empty rollout.
    """
    if parts.sample_context is None:
        return (budget > 0).astype(jnp.int32)
    schedule = parts.schedule
    return jnp.where(env_steps < schedule.prefill_env_steps, 0, _prorated_updates(schedule, budget))


def _prorated_updates(schedule: Schedule, budget: jax.Array) -> jax.Array:
    """``floor(budget * updates_per_iteration / steps_per_iteration)`` for ``budget`` in
    ``[0, steps_per_iteration]`` without overflowing int32: past 2**31 (4,096 envs x 62 steps at
    the default ratio) the product wrapped negative and such runs never updated. There a float32
    ratio stands in, at most one update off in a cut-short iteration and exact for a whole one."""
    per_iteration, steps = schedule.updates_per_iteration, schedule.steps_per_iteration
    if per_iteration * steps <= MAX_ENV_STEPS:
        return (budget * per_iteration) // steps
    prorated = jnp.floor(budget.astype(jnp.float32) * (per_iteration / steps)).astype(jnp.int32)
    return jnp.where(budget >= steps, per_iteration, jnp.minimum(prorated, per_iteration))


def replay_updates(parts: Parts, seed: SeedState, buf, updates, key) -> tuple[Any, dict]:
    """``updates`` agent updates, each on a fresh batch the agent samples from ``buf``."""

    def one_update(i, val):
        agent_state, sums = val
        sample_key, step_key = jax.random.split(jax.random.fold_in(key, i))
        batch = parts.agent.sample(buf, sample_key, parts.sample_context)
        agent_state, metrics = parts.agent.update(agent_state, batch, step_key)
        return agent_state, {k: sums[k] + metrics[k] for k in sums}

    return jax.lax.fori_loop(0, updates, one_update, (seed.agent, seed.metric_sums))


def seed_iteration(
    parts: Parts, seed: SeedState, budget: jax.Array, updates: jax.Array
) -> SeedState:
    """Collect ``budget`` env steps, then learn: from replay, or from the rollout itself."""
    run = parts.run
    key, collect_key, update_key = jax.random.split(seed.key, 3)
    carry, transitions, episode_ids = rollout.collect(
        parts.env,
        policy(parts.agent, seed.agent.params, deterministic=False),
        seed.env,
        collect_key,
        unroll_length=run.unroll_length,
        episode_length=parts.schedule.episode_length,
        budget=budget,
        fields=parts.agent.fields,
    )
    if parts.sample_context is None:
        steps = jnp.arange(run.unroll_length)[:, None] * run.num_envs
        valid = (steps + jnp.arange(run.num_envs)[None, :] < budget).astype(jnp.float32)
        batch = {**transitions, "valid": valid}
        agent_state, metrics = parts.agent.update(seed.agent, batch, update_key)
        sums = {k: seed.metric_sums[k] + metrics[k] * (budget > 0) for k in seed.metric_sums}
        return seed.replace(agent=agent_state, env=carry, key=key, metric_sums=sums)
    buf = replay.insert(seed.buffer, transitions, episode_ids, num_rows=budget // run.num_envs)
    agent_state, sums = replay_updates(parts, seed, buf, updates, update_key)
    return seed.replace(agent=agent_state, buffer=buf, env=carry, key=key, metric_sums=sums)


def chunk(parts: Parts, state: TrainState, target: jax.Array) -> TrainState:
    """Run iterations until ``env_steps >= target``. An iteration is cut short at the next
    evaluation point (``config.steps_to_evaluation``) and at ``target``.

    The host passes the budget's end as ``target`` (never more), so the budget is not a constant
    of the compiled program: a run resumed with a larger ``--total-env-steps`` reuses it."""
    run, schedule = parts.run, parts.schedule
    iteration = over_seeds(functools.partial(seed_iteration, parts), run.num_seeds)

    def body(s: TrainState) -> TrainState:
        to_eval = steps_to_evaluation(s.env_steps, schedule.eval_every, run.num_envs)
        budget = jnp.minimum(schedule.steps_per_iteration, target - s.env_steps)
        budget = jnp.minimum(budget, to_eval)
        updates = num_updates(parts, budget, s.env_steps)
        return TrainState(
            seeds=iteration(s.seeds, budget, updates),
            env_steps=s.env_steps + budget,
            grad_steps=s.grad_steps + updates * parts.agent.grad_steps_per_update,
            metric_count=s.metric_count + updates,
        )

    return jax.lax.while_loop(lambda s: s.env_steps < target, body, state)


def evaluate(parts: Parts, state: TrainState) -> dict:
    """Evaluation metrics of every seed's policy (its mode unless ``--no-deterministic-eval``),
    leaves ``[num_seeds]``."""

    def one(seed: SeedState) -> dict:
        key = jax.random.fold_in(seed.eval_key, state.env_steps)
        return evaluate_episodes(
            parts.env,
            policy(parts.agent, seed.agent.params, deterministic=parts.run.deterministic_eval),
            key,
            num_envs=parts.run.num_eval_envs,
            episode_length=parts.schedule.episode_length,
        )

    return over_seeds(one, parts.run.num_seeds)(state.seeds)


def buffer_bytes(state_like: Any) -> int:
    """Bytes of the replay buffers in a (possibly abstract) ``TrainState``, all seeds."""
    leaves = jax.tree.leaves(state_like.seeds.buffer)
    return sum(int(leaf.size) * leaf.dtype.itemsize for leaf in leaves)


def init_state(program: Program) -> TrainState:
    """The initial state, placed on the program's devices."""
    keys = seed_keys(program.config)
    if program.mesh is None:
        return jax.jit(program.init)(keys)
    shardings = sharding.state_shardings(program.mesh, jax.eval_shape(program.init, keys))
    return jax.jit(program.init, out_shardings=shardings)(keys)


def place(program: Program, state: TrainState) -> TrainState:
    """Put a restored state onto the program's devices as ``init`` would have.

    Without a mesh the arrays are made uncommitted: orbax returns arrays committed to a device,
    a fresh state's are not, and the lowered program records the difference, so a resume
    missed the compilation cache of the run it continues and compiled its chunk again.
    """
    if program.mesh is None:
        return jax.tree.map(lambda x: jax.device_put(np.asarray(x)), state)
    return jax.device_put(state, sharding.state_shardings(program.mesh, state))


def reset_metrics(state: TrainState) -> TrainState:
    """Start a new metrics window after a row (the reset state is what gets checkpointed)."""
    sums = jax.tree.map(jnp.zeros_like, state.seeds.metric_sums)
    zero = jnp.zeros_like(state.metric_count)
    return state.replace(seeds=state.seeds.replace(metric_sums=sums), metric_count=zero)


def compile_program(program: Program, state: TrainState) -> tuple[Any, Any, Any]:
    """Ahead-of-time compiled ``chunk`` (state donated), ``evaluate`` and ``reset_metrics``: one
    compilation each per run; calling them with other shapes raises instead of recompiling."""
    target = jnp.int32(0)
    if program.mesh is None:
        chunk = jax.jit(program.chunk, donate_argnums=0)
        evaluate = jax.jit(program.evaluate)
        reset = jax.jit(reset_metrics, donate_argnums=0)
    else:
        shardings = sharding.state_shardings(program.mesh, state)
        rep = sharding.replicated(program.mesh)
        chunk = jax.jit(
            program.chunk,
            donate_argnums=0,
            in_shardings=(shardings, rep),
            out_shardings=shardings,
        )
        evaluate = jax.jit(program.evaluate, in_shardings=(shardings,), out_shardings=rep)
        reset = jax.jit(
            reset_metrics, donate_argnums=0, in_shardings=(shardings,), out_shardings=shardings
        )
    return (
        chunk.lower(state, target).compile(),
        evaluate.lower(state).compile(),
        reset.lower(state).compile(),
    )


def over_seeds(fn, num_seeds: int):
    """Map ``fn(seed_tree, *shared)`` over the leading seed axis.

    With one seed the axis is squeezed instead of vmapped: under vmap, ``lax.cond`` on batched
    predicates (the auto-reset in ``rollout.collect``) turns into computing both branches.
    """
    if num_seeds > 1:
        return lambda tree, *shared: jax.vmap(lambda t: fn(t, *shared))(tree)

    def single(tree, *shared):
        out = fn(jax.tree.map(lambda x: x[0], tree), *shared)
        return jax.tree.map(lambda x: x[None], out)

    return single


def seed_keys(config: TrainConfig) -> jax.Array:
    """``[num_seeds]`` keys; seed i uses ``PRNGKey(seed + i)`` so it matches a 1-seed run."""
    seeds = jnp.arange(config.run.num_seeds) + config.run.seed
    return jax.vmap(jax.random.PRNGKey)(seeds)


@dataclass(frozen=True)
class TrainResult:
    """What ``goalax.train`` returns: final per-seed params, metrics rows and the run directory."""

    params: Any
    metrics: list[dict]
    run_dir: str
    interrupted: str | None = None  # "SIGINT"/"SIGTERM" when a signal stopped the run early
