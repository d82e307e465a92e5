"""Run configuration: frozen dataclasses (every field is a CLI flag) and the derived schedule.

Validation lives here so that bad input is rejected before anything is compiled or written. Derived
sizes are computed by ``make_schedule`` into a separate object instead of mutating the config.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from goalax.agents.crl import CRLConfig
from goalax.errors import ConfigError
from goalax.fields import check_finite, check_types, flag

__all__ = [
    "ConfigError",
    "RunConfig",
    "Schedule",
    "TrainConfig",
    "make_schedule",
    "resolve_defaults",
    "resumable_flags",
]

MAX_ENV_STEPS = 2**31 - 1  # device step counters are int32
#: Default replay steps kept per env (the reference's ``max_replay_size``).
BUFFER_STEPS_PER_ENV = 10_000


@dataclass(frozen=True)
class RunConfig:
    """Everything about a training run that is not the agent's own hyperparameters."""

    env: str = "reacher"
    """Task name (``goalax envs`` lists them)."""
    preset: Literal["goalax", "paper"] = "goalax"
    """Defaults of the agent's hyperparameters and of the run settings it fixes (unroll, updates per step, prefill, evaluation): goalax's, or 'paper' = the paper's code, jaxgcrl 0.2.8, field by field (docs/agents.md). A flag given with --preset wins over the preset's value; goalax train AGENT --preset paper --help shows them."""  # noqa: E501
    seed: int = 0
    """Random seed of the first seed; seed i of a multi-seed run uses ``seed + i``."""
    num_seeds: int = 1
    """Independent seeds trained together in one compiled program (vmapped)."""
    num_envs: int = 256
    """Parallel training environments."""
    total_env_steps: int | None = None
    """Environment-step budget, honoured exactly (summed over envs, per seed); default: the task's own (``goalax envs``, column ``budget``)."""  # noqa: E501
    episode_length: int | None = None
    """Time limit of an episode; default: the task's own."""
    backend: str | None = None
    """Physics backend; default: the task's own stable choice."""
    impl: Literal["jax", "warp"] = "jax"
    """MJX implementation of a task on goalax's own MJX base (so far cheetah, and reacher with --backend mjx; docs/envs.md): jax (CPU, GPU, TPU) or warp (MuJoCo Warp, NVIDIA GPUs only, pip install 'mujoco-mjx[warp]')."""  # noqa: E501
    termination: bool = True
    """End episodes when the body is unhealthy (ant/humanoid: torso height out of range)."""
    dense_reward: bool = False
    """Reward -distance instead of the sparse success indicator."""
    reference_model: bool = False
    """Build the paper's model (jaxgcrl 0.2.8) where goalax's task deviates on purpose: the ant family's lower legs pass through the floor, maze walls are one box per cell (docs/parity.md). Set by --preset paper."""  # noqa: E501
    batch_size: int = 256
    """Transitions per gradient step (replay agents: crl, sac, td3; ppo refuses it)."""
    unroll_length: int = 62
    """Environment steps per env collected per training iteration."""
    utd_ratio: float = 0.0625
    """Gradient steps per environment step (paper: about 1 per 16; replay agents only)."""
    buffer_size: int | None = None
    """Replay capacity in transitions (split evenly over envs); default 10,000 per env (replay agents only)."""  # noqa: E501
    prefill_steps: int | None = None
    """Env steps per env collected with the initial policy before the first update (in budget); default: the agent's reference value (CRL 1,000; SAC, TD3 0), at most an eighth of the budget (replay agents only)."""  # noqa: E501
    eval_every: int | None = None
    """Evaluate every this many env steps; default: a tenth of the budget."""
    num_eval_envs: int = 128
    """Evaluation episodes per evaluation (one per env)."""
    deterministic_eval: bool = True
    """Evaluate the policy's mode; --no-deterministic-eval samples actions as in training (the reference's SAC and PPO)."""  # noqa: E501
    run_dir: str | None = None
    """Output directory; default ``runs/<agent>-<env>-s<seed>-<YYYYmmdd-HHMMSS>``."""
    num_devices: int | None = None
    """Devices to split the envs and buffer over (data parallel); default: all devices."""
    coordinator_address: str | None = None
    """host:port of process 0 for multi-host training (jax.distributed); SLURM is auto-detected."""
    num_processes: int | None = None
    """Number of processes (hosts) training one model together."""
    process_id: int | None = None
    """Index of this process in [0, --num-processes)."""
    quiet: bool = False
    """No progress bar or per-evaluation lines."""
    wandb: bool = False
    """Also log metrics to Weights & Biases (needs ``pip install 'goalax[wandb]'``)."""
    wandb_project: str = "goalax"
    """W&B project name (with --wandb)."""
    resume: str | None = None
    """Continue the run in this directory from its latest checkpoint."""


@dataclass(frozen=True)
class Schedule:
    """Sizes derived from a RunConfig and the task; computed once by ``make_schedule``."""

    episode_length: int
    steps_per_iteration: int
    updates_per_iteration: int
    buffer_rows: int
    eval_every: int
    num_iterations: int
    #: Env steps (over all envs) collected before the first update; 0 without replay.
    prefill_env_steps: int = 0


def _fail(message: str) -> None:
    raise ConfigError(message)


#: RunConfig fields of the replay buffer and its updates: off-policy (replay) agents read them;
#: an on-policy agent (``USES_REPLAY = False`` on its config class: PPO) learns from each rollout.
REPLAY_FIELDS = ("batch_size", "utd_ratio", "buffer_size", "prefill_steps")


def uses_replay(agent_config: Any) -> bool:
    """Whether the agent of ``agent_config`` learns from a replay buffer."""
    return getattr(type(agent_config), "USES_REPLAY", True)


def check_used(config: TrainConfig, given: Collection[str] | None = None) -> None:
    """Raise ConfigError for a replay setting of an on-policy agent, which would ignore it.

    ``given``: the config fields named on the command line (a flag counts even at its default
    value). Without it (``goalax.train`` from Python), a value other than RunConfig's default
    counts; a prefill of 0, as config.json records a resolved one, counts as none.
    """
    if uses_replay(config.agent):
        return
    default = RunConfig()
    for name in REPLAY_FIELDS:
        value = getattr(config.run, name)
        if given is not None:
            used = name in given
        else:
            used = value != getattr(default, name) and not (name == "prefill_steps" and value == 0)
        if used:
            raise ConfigError(
                f"{flag(name)} is not used by {config.agent_name}: an on-policy agent learns from "
                "each rollout and keeps no replay buffer (its batches: --num-minibatches, "
                "--num-epochs, --unroll-length, --num-envs)"
            )


def validate(run: RunConfig) -> None:
    """Reject configurations that cannot run, each with one line saying what to change."""
    check_finite(run)
    positive = {
        "--num-seeds": run.num_seeds,
        "--num-envs": run.num_envs,
        "--total-env-steps": run.total_env_steps,
        "--batch-size": run.batch_size,
        "--unroll-length": run.unroll_length,
        "--num-eval-envs": run.num_eval_envs,
    }
    if run.buffer_size is not None:
        positive["--buffer-size"] = run.buffer_size
    for name, value in positive.items():
        if value < 1:
            _fail(f"{name} must be a positive integer, got {value}")
    if run.episode_length is not None and run.episode_length < 1:
        _fail(f"--episode-length must be a positive integer, got {run.episode_length}")
    if run.prefill_steps is not None and run.prefill_steps < 0:
        _fail(f"--prefill-steps must be >= 0, got {run.prefill_steps}")
    if run.eval_every is not None and run.eval_every < 1:
        _fail(f"--eval-every must be a positive number of env steps, got {run.eval_every}")
    _check_int32(run)
    if not (math.isfinite(run.utd_ratio) and run.utd_ratio > 0):
        _fail(f"--utd-ratio must be a positive number, got {run.utd_ratio}")


def _check_int32(run: RunConfig) -> None:
    """Sizes, counters and seeds become int32 on the device: a larger value overflows there (an
    OverflowError traceback at best, wrapped counters at worst), so say the limit here."""
    for f in dataclasses.fields(run):
        value = getattr(run, f.name)
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_ENV_STEPS:
            _fail(f"{flag(f.name)} must be at most {MAX_ENV_STEPS:,}, got {value:,}")
    if run.seed + run.num_seeds - 1 > MAX_ENV_STEPS:
        _fail(
            f"--seed {run.seed} + --num-seeds {run.num_seeds} goes past {MAX_ENV_STEPS:,}, the "
            "largest seed; lower --seed"
        )
    if run.seed < -(MAX_ENV_STEPS + 1):
        _fail(f"--seed must be at least {-(MAX_ENV_STEPS + 1):,}, got {run.seed:,}")
    per_iteration = run.num_envs * run.unroll_length
    if per_iteration > MAX_ENV_STEPS:
        _fail(
            f"--num-envs {run.num_envs:,} x --unroll-length {run.unroll_length} = "
            f"{per_iteration:,} env steps per iteration, more than the {MAX_ENV_STEPS:,} the "
            "device's step counters hold; lower --num-envs or --unroll-length"
        )


def buffer_size(run: RunConfig) -> int:
    """Replay capacity in transitions: ``--buffer-size``, or 10,000 steps per env by default."""
    return run.buffer_size if run.buffer_size is not None else BUFFER_STEPS_PER_ENV * run.num_envs


def make_schedule(run: RunConfig, env_episode_length: int, uses_replay: bool = True) -> Schedule:
    """Derive iteration sizes; raises ConfigError when the sizes cannot fit together.

    On-policy agents (``uses_replay=False``) keep no buffer and collect no prefill, so those sizes
    are not checked. ``run`` must be resolved (``resolve_defaults``): its budget is set.
    """
    if run.total_env_steps is None:
        raise ValueError("make_schedule needs a resolved RunConfig: use resolve_defaults first")
    validate(run)
    episode_length = run.episode_length or env_episode_length
    steps_per_iteration = run.num_envs * run.unroll_length
    capacity = buffer_size(run)
    buffer_rows = capacity // run.num_envs
    if uses_replay:
        _check_replay(run, capacity, buffer_rows, episode_length)
    prefill = (run.prefill_steps or 0) * run.num_envs if uses_replay else 0
    if prefill >= run.total_env_steps:
        _fail(
            f"--prefill-steps {run.prefill_steps} x --num-envs {run.num_envs} = {prefill} env "
            f"steps of prefill leave none of --total-env-steps {run.total_env_steps} for "
            "training; raise --total-env-steps or lower --prefill-steps"
        )
    if uses_replay:
        _check_updates(run, steps_per_iteration)
    updates = max(1, round(run.utd_ratio * steps_per_iteration))
    # An interval past the budget means "at the start and the end": clamping keeps the
    # evaluation arithmetic inside int32.
    eval_every = min(run.eval_every or max(1, run.total_env_steps // 10), run.total_env_steps)
    return Schedule(
        episode_length=episode_length,
        steps_per_iteration=steps_per_iteration,
        updates_per_iteration=updates,
        buffer_rows=buffer_rows,
        eval_every=eval_every,
        num_iterations=math.ceil(run.total_env_steps / steps_per_iteration),
        prefill_env_steps=prefill,
    )


def _check_updates(run: RunConfig, steps_per_iteration: int) -> None:
    """The gradient steps of an iteration and of the whole run are int32 counters on the device."""
    per_iteration = run.utd_ratio * steps_per_iteration
    if per_iteration > MAX_ENV_STEPS:
        _fail(
            f"--utd-ratio {run.utd_ratio:g} asks for {per_iteration:.3g} gradient steps per "
            f"iteration of {steps_per_iteration:,} env steps, more than the {MAX_ENV_STEPS:,} the "
            "device's step counters hold; lower --utd-ratio"
        )
    iterations = math.ceil(run.total_env_steps / steps_per_iteration)
    total = max(1, round(per_iteration)) * iterations
    if total > MAX_ENV_STEPS:
        _fail(
            f"--utd-ratio {run.utd_ratio:g} over --total-env-steps {run.total_env_steps:,} adds up "
            f"to {total:,} gradient steps, more than the {MAX_ENV_STEPS:,} the device's step "
            "counters hold; lower --utd-ratio or --total-env-steps"
        )


def steps_to_evaluation(env_steps: Any, eval_every: int, num_envs: int) -> Any:
    """Env steps from ``env_steps`` to the next evaluation point (Python ints or int arrays).

    Evaluation points are the multiples of ``eval_every`` rounded up to whole steps of all envs
    (every env steps together), so rows read 10,000, 20,000, ... whenever ``eval_every`` is a
    multiple of ``num_envs``. Training iterations are cut there, which makes iteration
    boundaries, and with them the whole run, independent of where a run was stopped and resumed.
    The points are fixed multiples of ``num_envs``, not offsets from ``env_steps``: a run resumed
    from a budget that was not one (1,003 steps of 8 envs) evaluates at 1,200 again, not 1,203.
    """
    next_multiple = (env_steps // eval_every + 1) * eval_every
    return -(-next_multiple // num_envs) * num_envs - env_steps


def _check_replay(run: RunConfig, capacity: int, rows: int, episode_length: int) -> None:
    """The buffer must hold one iteration and one whole episode per env, and one batch."""
    flag = f"--buffer-size {capacity}" + ("" if run.buffer_size is not None else " (default)")
    if rows < run.unroll_length:
        _fail(
            f"{flag} holds {rows} steps per env, fewer than one iteration's --unroll-length "
            f"{run.unroll_length}; raise --buffer-size to at least "
            f"{run.num_envs * run.unroll_length} or lower --num-envs/--unroll-length"
        )
    if rows < episode_length:
        _fail(
            f"{flag} holds {rows} steps per env, fewer than one episode ({episode_length} steps), "
            f"so no future goal could come from a whole episode; raise --buffer-size to at least "
            f"{run.num_envs * episode_length} or lower --num-envs/--episode-length"
        )
    if run.batch_size > capacity:
        _fail(
            f"--batch-size {run.batch_size} is larger than the buffer ({capacity} transitions); "
            "lower --batch-size or raise --buffer-size"
        )


@dataclass(frozen=True)
class TrainConfig:
    """A full training job: the run settings and the agent's hyperparameters."""

    run: RunConfig = dataclasses.field(default_factory=RunConfig)
    agent: Any = dataclasses.field(default_factory=CRLConfig)
    """The agent's config dataclass (``goalax.agents.config_class(agent_name)``)."""
    agent_name: str = "crl"


#: A default prefill takes at most this fraction of the budget, so short runs still train.
PREFILL_MAX_FRACTION = 1 / 8


def resolve_defaults(config: TrainConfig) -> TrainConfig:
    """``config`` with the defaults that depend on the task and the agent filled in, so
    config.json records what the run used.

    ``--total-env-steps``: the task's default budget. ``--eval-every``: a tenth of the budget,
    recorded so that a resume to a larger budget keeps the run's spacing of evaluations.
    ``--prefill-steps``: the agent config's
    ``PREFILL_STEPS`` per env (CRL: the reference's 1,000), but at most an eighth of the budget
    per env: at the paper's 10M steps on 1024 envs that is the reference's 1,000, while a 200k-step
    reacher run still spends most of its budget training.
    """
    run = config.run
    if run.total_env_steps is None:
        from goalax import envs

        try:
            run = dataclasses.replace(run, total_env_steps=envs.default_env_steps(run.env))
        except envs.UnknownEnvError as err:
            raise ConfigError(str(err)) from err
    if run.prefill_steps is None:
        per_env = getattr(type(config.agent), "PREFILL_STEPS", 0)
        if run.total_env_steps > 0 and run.num_envs > 0:
            cap = math.floor(PREFILL_MAX_FRACTION * run.total_env_steps / run.num_envs)
            per_env = min(per_env, cap)
        run = dataclasses.replace(run, prefill_steps=per_env)
    if run.eval_every is None:
        run = dataclasses.replace(run, eval_every=max(1, run.total_env_steps // 10))
    return dataclasses.replace(config, run=run)


#: RunConfig fields that may change when a run is resumed (they do not change what is learned).
RESUMABLE_FIELDS = frozenset(
    {
        "total_env_steps",
        "eval_every",
        "quiet",
        "wandb",
        "wandb_project",
        "run_dir",
        "resume",
        "num_devices",
        "coordinator_address",
        "num_processes",
        "process_id",
    }
)

#: Agent fields that may change on resume: the optimisers' learning rates. Adam's state (moments
#: and count) has the same structure whatever the rate, so a run that diverged continues from
#: its last good checkpoint with lower rates.
RESUMABLE_AGENT_FIELDS = frozenset({"critic_lr", "actor_lr", "alpha_lr", "learning_rate"})


def resumable_flags() -> str:
    """The flags a resumed run may change, as users type them (for messages and docs)."""
    names = sorted((RESUMABLE_FIELDS | RESUMABLE_AGENT_FIELDS) - {"run_dir", "resume"})
    return ", ".join("--" + n.replace("_", "-") for n in names)


def resume_conflicts(saved: TrainConfig, new: TrainConfig) -> list[str]:
    """Flags whose change would alter the meaning of a resumed run, as ``--flag old -> new``."""
    conflicts = []
    if saved.agent_name != new.agent_name:
        return [f"agent {saved.agent_name} -> {new.agent_name}"]
    pairs = [
        (saved.run, new.run, RESUMABLE_FIELDS),
        (saved.agent, new.agent, RESUMABLE_AGENT_FIELDS),
    ]
    for old, cur, resumable in pairs:
        for f in dataclasses.fields(old):
            if f.name in resumable:
                continue
            a, b = getattr(old, f.name), getattr(cur, f.name)
            if a != b:
                conflicts.append(f"--{f.name.replace('_', '-')} {a} -> {b}")
    return conflicts


def to_dict(config: TrainConfig) -> dict:
    """JSON-ready dict (the ``config.json`` of a run directory)."""
    return dataclasses.asdict(config)


def from_dict(data: dict, source: str = "config.json") -> TrainConfig:
    """Inverse of ``to_dict``, for a file (``source``, named in errors) that may have been edited
    by hand: unknown keys, missing sections and values of the wrong type are a ConfigError
    naming the field, so a stale or mistyped file is noticed before anything runs."""
    from goalax import agents

    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a JSON object with run and agent sections")
    unknown = sorted(set(data) - {"run", "agent", "agent_name"})
    if unknown:
        raise ConfigError(f"{source} has unknown key(s) {', '.join(unknown)}; remove them")
    missing = [key for key in ("run", "agent") if key not in data]
    if missing:
        raise ConfigError(
            f"{source} has no {' or '.join(missing)} section; it does not describe a goalax run"
        )
    agent_name = data.get("agent_name", "crl")
    if agent_name not in agents.names():
        raise ConfigError(
            f"{source}: agent_name must be one of {', '.join(agents.names())}, got "
            f"{json.dumps(agent_name)}"
        )
    agent_class = agents.config_class(agent_name)
    return TrainConfig(
        run=RunConfig(**check_types(RunConfig, data["run"], f"{source}: run")),
        agent=agent_class(**check_types(agent_class, data["agent"], f"{source}: agent")),
        agent_name=agent_name,
    )
