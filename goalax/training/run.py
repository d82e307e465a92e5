"""The host side of training: run directory, compile once, chunks between evaluations, metrics
rows, checkpoints, progress, clean stops on SIGINT/SIGTERM and on non-finite losses."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import jax
import jax.numpy as jnp
import numpy as np

from goalax import artifact
from goalax.config import (
    RESUMABLE_AGENT_FIELDS,
    ConfigError,
    TrainConfig,
    from_dict,
    resolve_defaults,
    resumable_flags,
    resume_conflicts,
    steps_to_evaluation,
    to_dict,
)
from goalax.errors import NoSpaceLeft
from goalax.evaluate import METRICS
from goalax.files import replace_json
from goalax.training import checkpoint, distributed, lock, preflight, stops
from goalax.training.logging import (
    MetricsLogger,
    drop_events_after,
    open_wandb,
    read_jsonl,
    rewrite_metrics,
)
from goalax.training.loop import (
    Program,
    TrainResult,
    TrainState,
    buffer_bytes,
    build,
    compile_program,
    init_state,
    place,
    seed_keys,
)
from goalax.training.progress import Reporter


def columns(metric_names: tuple[str, ...]) -> list[str]:
    """metrics.csv columns for an agent reporting ``metric_names``."""
    return (
        ["env_steps", "grad_steps", "wall_time_s", "sps", "seed"]
        + [f"eval/{k}" for k in METRICS]
        + [f"train/{k}" for k in metric_names]
    )


#: In the name of the temporary folder orbax writes a checkpoint into before renaming it.
PARTIAL_SAVE = ".orbax-checkpoint-tmp"
MAX_ITERATIONS_PER_CHUNK = 16  # host sync at least this often, for progress and Ctrl-C latency


class TrainingDiverged(RuntimeError):
    """A loss became NaN/Inf; the message names the step and the last good checkpoint."""


def default_run_dir(config: TrainConfig) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"{config.agent_name}-{config.run.env}-s{config.run.seed}-{stamp}")


def prepare_run_dir(path: str) -> str:
    """Create the run directory; refuse a non-empty one and fail early if it is not writable."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"--run-dir {path} exists and is not a directory; choose another path")
    if os.path.isdir(path) and os.listdir(path):
        lock.check_free(path)
        raise ConfigError(
            f"--run-dir {path} is not empty; pass --resume {path} to continue it or choose "
            "another --run-dir"
        )
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write-test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as err:
        raise ConfigError(
            f"--run-dir {path} is not writable ({err.strerror}); choose another path"
        ) from err
    return path


@contextmanager
def stop_requests() -> Iterator[stops.StopRequests]:
    """SIGINT/SIGTERM as a flag checked before compiling and between chunks, so a stop never
    lands mid-update: the CLI's handler if it installed one (it also saw the signals that came
    before training), else one installed for the body."""
    installed = stops.installed()
    if installed is not None:
        yield installed
        return
    with stops.routed() as requests:
        yield requests


def _rows(state: TrainState, evals: dict, program: Program, wall: float, sps) -> list[dict]:
    config = program.config
    count = int(state.metric_count)
    sums = jax.device_get(state.seeds.metric_sums)
    evals = jax.device_get(evals)
    rows = []
    for i in range(config.run.num_seeds):
        row = {
            "env_steps": int(state.env_steps),
            "grad_steps": int(state.grad_steps),
            "wall_time_s": round(wall, 3),
            "sps": sps,
            "seed": config.run.seed + i,
        }
        row.update({f"eval/{k}": float(evals[k][i]) for k in METRICS})
        row.update(
            {
                f"train/{k}": (float(sums[k][i]) / count if count else None)
                for k in program.agent.metric_names
            }
        )
        rows.append(row)
    return rows


def lower_rates_command(config: TrainConfig, run_dir: str) -> str:
    """The command that continues ``run_dir`` with lower learning rates: a tenth of each of the
    agent's rates, at most its default (learning rates may change on resume)."""
    flags = []
    for f in dataclasses.fields(config.agent):
        if f.name in RESUMABLE_AGENT_FIELDS:
            lower = min(getattr(config.agent, f.name) / 10, f.default)
            flags.append(f"--{f.name.replace('_', '-')} {lower:g}")
    return " ".join(["goalax train", config.agent_name, "--resume", shlex.quote(run_dir), *flags])


def _check_chunk_finite(
    config: TrainConfig,
    state: TrainState,
    env_steps: int,
    last_checkpoint: int | None,
    run_dir: str,
) -> None:
    """Stop at the first chunk whose losses are NaN/Inf, before anything of it is saved."""
    sums = jax.device_get(state.seeds.metric_sums)
    for key in sorted(sums):
        values = np.asarray(sums[key])
        if not np.all(np.isfinite(values)):
            seed_index = int(np.argmin(np.isfinite(values)))
            where = (
                f"the last good checkpoint is env step {last_checkpoint} in {run_dir}/checkpoints"
                if last_checkpoint is not None
                else "no checkpoint was saved before it"
            )
            again = "continue from it" if last_checkpoint is not None else "start again"
            raise TrainingDiverged(
                f"train/{key} became non-finite (seed index {seed_index}) by env step "
                f"{env_steps}; training stopped, {where}. To {again} with lower learning "
                f"rates: {lower_rates_command(config, run_dir)}"
            )


def train(config: TrainConfig) -> TrainResult:
    """Train end to end and write the run directory (see docs/run_directory.md).

    With ``config.run.resume`` set, continue that run from its latest checkpoint instead.
    """
    config = resolve_defaults(config)
    distributed.initialize(config.run)
    if config.run.wandb:
        try:
            import wandb  # noqa: F401
        except ImportError as err:
            raise ConfigError(
                "--wandb needs the wandb package: pip install 'goalax[wandb]'"
            ) from err
    if config.run.resume:
        return resume(config)
    program = build(config)  # validates everything before anything is written
    check_traces(program)
    preflight.check_memory(program)
    run_dir = config.run.run_dir or default_run_dir(config)
    primary = distributed.is_primary()
    if primary:
        prepare_run_dir(run_dir)
    with lock.hold(run_dir, enabled=primary):
        if primary:
            with _disk_space(run_dir, "config.json"):
                _write_config(config, run_dir)
        distributed.barrier("run-dir")
        state = init_state(program)
        return _train_loop(program, state, run_dir)


def saved_config(config: TrainConfig, run_dir: str) -> dict:
    """The resolved config with the run dir filled in, enough to rerun (config.json and each
    policy artifact hold it)."""
    run = dataclasses.replace(config.run, run_dir=run_dir, resume=None)
    return to_dict(dataclasses.replace(config, run=run))


def _write_config(config: TrainConfig, run_dir: str) -> None:
    replace_json(os.path.join(run_dir, "config.json"), saved_config(config, run_dir), indent=2)


def check_traces(program: Program) -> None:
    """Trace (not compile) the training program so shape errors that only appear when the
    program is built (e.g. PPO minibatch sizes) are reported before the run dir is written."""
    like = jax.eval_shape(program.init, seed_keys(program.config))
    try:
        jax.eval_shape(program.chunk, like, jnp.int32(0))
    except ValueError as err:
        raise ConfigError(str(err).splitlines()[0]) from err


def load_config(run_dir: str) -> TrainConfig:
    """The config stored in a run directory, with agent-dependent defaults filled in (a
    config.json written by hand or by an older goalax may leave them unset)."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isdir(run_dir):
        raise ConfigError(f"run directory {run_dir} does not exist")
    if not os.path.isfile(path):
        raise ConfigError(f"{run_dir} has no config.json; is it a goalax run directory?")
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path} is not valid JSON ({err.msg}); the run cannot be read") from err
    return resolve_defaults(from_dict(data, path))


def restore_state(program: Program, run_dir: str) -> TrainState:
    """Newest intact checkpoint of ``run_dir`` in the structure of ``program``'s state, to resume
    from: newer unreadable checkpoints are set aside (the resumed run saves those steps again)."""
    like = jax.eval_shape(program.init, seed_keys(program.config))
    step, state = checkpoint.restore_run(run_dir, like, set_aside=True)
    if distributed.is_primary():
        artifact.prune(run_dir, above=step)  # those steps are trained again
    return place(program, state)


def _truncate_metrics(run_dir: str, env_steps: int, names: tuple[str, ...]) -> None:
    """Drop rows written after the checkpoint we resume from, so no row is duplicated; every
    intact row before it is kept, and one line says what a crash tore."""
    warning = rewrite_metrics(run_dir, columns(names), env_steps)
    if warning:
        print(warning, file=sys.stderr, flush=True)


def resume(config: TrainConfig) -> TrainResult:
    """Continue ``config.run.resume`` exactly where its newest intact checkpoint stopped."""
    run_dir = config.run.resume
    saved = load_config(run_dir)
    conflicts = resume_conflicts(saved, config)
    if conflicts:
        raise ConfigError(
            "cannot resume with a config that changes the run (" + "; ".join(conflicts) + "); "
            f"only {resumable_flags()} may change"
        )
    primary = distributed.is_primary()
    if primary:
        preflight.check_writable(run_dir)
    with lock.hold(run_dir, enabled=primary):
        program = build(config)
        preflight.check_memory(program)
        if primary:
            remove_partial_saves(run_dir)
        if not saved_steps(run_dir):
            return _restart(program, run_dir)
        state = restore_state(program, run_dir)
        step = int(state.env_steps)
        if config.run.total_env_steps < step:
            raise ConfigError(
                f"--total-env-steps {config.run.total_env_steps} is below the checkpoint's {step} "
                "env steps; raise it to continue"
            )
        if primary:
            with _disk_space(run_dir, "metrics.jsonl, metrics.csv and config.json"):
                _truncate_metrics(run_dir, step, program.agent.metric_names)
                _write_config(config, run_dir)
        distributed.barrier("resume")
        return _train_loop(program, state, run_dir)


def _no_space(err: BaseException | None) -> bool:
    """Whether ``err`` or an error it came from is a full device (orbax's writers report it as
    a ValueError that quotes the OS error)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            return True
        if "No space left on device" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


@contextmanager
def _disk_space(run_dir: str, what: str) -> Iterator[None]:
    """Turn a full device while the body writes ``what`` into NoSpaceLeft: one line that names
    the newest intact checkpoint and the command that continues once there is space."""
    try:
        yield
    except NoSpaceLeft:
        raise
    except Exception as err:
        if not _no_space(err):
            raise
        steps = saved_steps(run_dir)
        newest = (
            f"the newest intact checkpoint is {steps[-1]}"
            if steps
            else "there is no checkpoint yet (resuming starts it again from env step 0)"
        )
        raise NoSpaceLeft(
            f"no space left on device while writing {what} in {run_dir}; {newest}; free space "
            f"and resume with --resume {run_dir}"
        ) from err


def saved_steps(run_dir: str) -> list[int]:
    """Env steps of the checkpoint folders of ``run_dir`` (complete or not; orbax names a
    finished step's folder by the step alone)."""
    folder = os.path.join(run_dir, "checkpoints")
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return sorted(int(name) for name in names if name.isdigit())


def remove_partial_saves(run_dir: str) -> None:
    """Delete the temporary folders of checkpoint saves that never finished (a kill or a full
    disk mid-save). Only the lock holder calls this, so no save is in progress."""
    folder = os.path.join(run_dir, "checkpoints")
    names = os.listdir(folder) if os.path.isdir(folder) else []
    for name in names:
        if PARTIAL_SAVE in name:
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def _restart(program: Program, run_dir: str) -> TrainResult:
    """Start a run directory that has no checkpoint (stopped while compiling, or diverged in its
    first chunk) from env step 0 with its saved config; its rows and events go first."""
    if distributed.is_primary():
        print(
            f"goalax: {run_dir} has no checkpoint; starting it again from env step 0",
            file=sys.stderr,
            flush=True,
        )
        with _disk_space(run_dir, "metrics.jsonl, metrics.csv and config.json"):
            _truncate_metrics(run_dir, -1, program.agent.metric_names)
            drop_events_after(os.path.join(run_dir, "tb"), -1)
            _write_config(program.config, run_dir)
    distributed.barrier("restart")
    return _train_loop(program, init_state(program), run_dir)


def _next_target(program: Program, env_steps: int) -> int:
    """Env steps at which the next chunk stops: the next evaluation point (where the program
    cuts its iterations) or the budget, and at most MAX_ITERATIONS_PER_CHUNK iterations ahead."""
    s, run = program.schedule, program.config.run
    evaluation = env_steps + steps_to_evaluation(env_steps, s.eval_every, run.num_envs)
    capped = env_steps + MAX_ITERATIONS_PER_CHUNK * s.steps_per_iteration
    return min(evaluation, capped, run.total_env_steps)


def describe_replay(program: Program, state: TrainState) -> str | None:
    """One line on the replay buffer and the prefill, printed at the start of a run."""
    if program.agent.sample is None:  # on-policy: no replay
        return None
    run, schedule = program.config.run, program.schedule
    rows = schedule.buffer_rows
    text = (
        f"replay buffer {rows * run.num_envs:,} transitions ({rows:,} per env), "
        f"{buffer_bytes(state) / 2**20:,.1f} MiB"
    )
    if schedule.prefill_env_steps:
        iterations = -(-schedule.prefill_env_steps // schedule.steps_per_iteration)
        text += (
            f"; prefill {iterations * schedule.steps_per_iteration:,} env steps (--prefill-steps "
            f"{schedule.prefill_env_steps // run.num_envs:,} per env rounded up to {iterations} "
            "whole iterations) with the initial policy before the first update"
        )
    return text


def _nothing_to_train(program: Program, state: TrainState, run_dir: str) -> TrainResult:
    """A resumed run already at its budget (README's ``--resume`` of a finished run): nothing is
    compiled or written; the result holds the rows of its last evaluation for the summary."""
    run, step = program.config.run, int(state.env_steps)
    if distributed.is_primary() and not run.quiet:
        print(
            f"{run_dir} is already at --total-env-steps {run.total_env_steps:,}: nothing to "
            "train (pass a larger --total-env-steps to continue it)",
            flush=True,
        )
    path = os.path.join(run_dir, "metrics.jsonl")
    rows = [r for r in read_jsonl(path) if r["env_steps"] == step] if os.path.exists(path) else []
    return TrainResult(jax.device_get(state.seeds.agent.params), rows, run_dir, interrupted=None)


def _train_loop(program: Program, state: TrainState, run_dir: str) -> TrainResult:
    config = program.config
    if config.run.resume and int(state.env_steps) >= config.run.total_env_steps:
        return _nothing_to_train(program, state, run_dir)
    primary = distributed.is_primary()
    reporter = Reporter(
        config.run.total_env_steps, config.run.quiet or not primary, start=int(state.env_steps)
    )
    wandb_run = None
    if primary and config.run.wandb:
        wandb_run = open_wandb(config.run.wandb_project, run_dir, to_dict(config))
    with _disk_space(run_dir, "metrics.jsonl, metrics.csv and the TensorBoard files"):
        logger = MetricsLogger(
            run_dir,
            columns(program.agent.metric_names),
            config.run.num_seeds,
            tensorboard=True,
            enabled=primary,
            wandb_run=wandb_run,
            resume_step=int(state.env_steps) if config.run.resume else None,
        )
    ckpt = checkpoint.manager(run_dir)
    all_rows: list[dict] = []
    last_saved = ckpt.latest_step()
    try:
        with stop_requests() as stop:
            if stop.signal is None:  # a stop that came first skips the compile too
                state, last_saved = _run_chunks(
                    program, state, run_dir, stop, logger, reporter, ckpt, all_rows
                )
            if stop.signal is not None:
                with _disk_space(run_dir, f"checkpoint {int(state.env_steps)}"):
                    last_saved = _save_on_stop(program, run_dir, ckpt, state, last_saved)
                print(_stop_line(stop.signal, last_saved, run_dir), file=sys.stderr, flush=True)
    except BaseException:
        _close(logger, ckpt, reporter, quietly=True)
        raise
    with _disk_space(run_dir, "metrics.jsonl, metrics.csv and the TensorBoard files"):
        _close(logger, ckpt, reporter)
    params = jax.device_get(state.seeds.agent.params)
    return TrainResult(params, all_rows, run_dir, interrupted=stop.signal)


def _run_chunks(
    program: Program,
    state: TrainState,
    run_dir: str,
    stop: stops.StopRequests,
    logger: MetricsLogger,
    reporter: Reporter,
    ckpt,
    all_rows: list[dict],
) -> tuple[TrainState, int | None]:
    """Compile, then train chunk by chunk until the budget or a stop request; each evaluation
    appends its rows to ``all_rows`` and saves a checkpoint. Returns the state and the step of
    the newest checkpoint."""
    config = program.config
    total = config.run.total_env_steps
    last_saved = ckpt.latest_step()
    every, last_eval = program.schedule.eval_every, int(state.env_steps)
    replay = describe_replay(program, state)
    if replay:
        reporter.message(replay)
    compile_start = time.perf_counter()
    chunk, evaluate, reset_metrics = compile_program(program, state)
    reporter.message(f"compiled in {time.perf_counter() - compile_start:.1f}s; run dir {run_dir}")
    start = time.perf_counter()
    train_time, steps_since_row = 0.0, 0
    if int(state.env_steps) == 0 and stop.signal is None:
        rows = _rows(state, evaluate(state), program, 0.0, None)
        with _disk_space(run_dir, "the metrics rows of env step 0"):
            logger.write(rows)
        reporter.update(rows)
        all_rows += rows
    while int(state.env_steps) < total and stop.signal is None:
        before = int(state.env_steps)
        t0 = time.perf_counter()
        state = chunk(state, jnp.int32(_next_target(program, before)))
        env_steps = int(state.env_steps)  # blocks until the chunk is done
        train_time += time.perf_counter() - t0
        steps_since_row += env_steps - before
        _check_chunk_finite(config, state, env_steps, last_saved, run_dir)
        if env_steps // every == last_eval // every and env_steps < total:
            reporter.progress(env_steps)
            continue
        last_eval = env_steps
        sps = steps_since_row / train_time if train_time > 0 else None
        rows = _rows(state, evaluate(state), program, time.perf_counter() - start, sps)
        with _disk_space(run_dir, f"the metrics rows of env step {env_steps}"):
            logger.write(rows)
        all_rows += rows
        reporter.update(rows)
        state = reset_metrics(state)
        with _disk_space(run_dir, f"checkpoint {env_steps}"):
            save(program, run_dir, ckpt, state)
        last_saved = env_steps
        train_time, steps_since_row = 0.0, 0
    return state, last_saved


def _close(logger: MetricsLogger, ckpt, reporter: Reporter, quietly: bool = False) -> None:
    """Close the run's writers; ``quietly`` while an error is on its way, which a second one
    from flushing to a full device would hide."""
    with contextlib.suppress(OSError) if quietly else contextlib.nullcontext():
        logger.close()
    ckpt.close()
    reporter.close()


def _save_on_stop(
    program: Program, run_dir: str, ckpt, state: TrainState, last_saved: int | None
) -> int | None:
    """Checkpoint what was trained since the newest checkpoint; an untrained state (a stop
    before the first chunk) is not worth one: ``--resume`` starts such a run from step 0."""
    env_steps = int(state.env_steps)
    if env_steps == (last_saved or 0):
        return last_saved
    save(program, run_dir, ckpt, state)
    return env_steps


def save(program: Program, run_dir: str, ckpt, state: TrainState) -> None:
    """The checkpoint of ``state`` (to resume) and then its policy artifact (to evaluate, render
    and load without the training program), keeping artifacts only for kept checkpoints."""
    env_steps = int(state.env_steps)
    checkpoint.save(ckpt, env_steps, state)
    params = state.seeds.agent.params
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        params = multihost_utils.process_allgather(params, tiled=True)
    if distributed.is_primary():
        config = saved_config(program.config, run_dir)
        artifact.save(run_dir, env_steps, config, program.env, jax.device_get(params))
        artifact.prune(run_dir, keep=set(ckpt.all_steps()))


def _stop_line(signal_name: str, last_saved: int | None, run_dir: str) -> str:
    """What a stopped run says on stderr, even with --quiet: the run did not finish."""
    if last_saved is None:
        return (
            f"{signal_name}: stopped before the first checkpoint; start it again with "
            f"--resume {run_dir}"
        )
    return (
        f"{signal_name}: stopped with a checkpoint at env step {last_saved}; continue with "
        f"--resume {run_dir}"
    )


def summarise(rows: list[dict]) -> str:
    """One line about the final evaluation (mean over seeds)."""
    if not rows:
        return "no evaluation rows"
    final_step = max(r["env_steps"] for r in rows)
    final = [r for r in rows if r["env_steps"] == final_step]
    success = np.mean([r["eval/success"] for r in final])
    dist = np.mean([r["eval/dist"] for r in final])
    return f"final env_steps {final_step:,}: eval/success {success:.3f}, eval/dist {dist:.3f}"
