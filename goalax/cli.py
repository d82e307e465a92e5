"""``goalax`` command line: train / envs / bench / eval / render / plot / sweep.

Every config field is a flat, hyphenated flag (tyro over the frozen dataclasses). Bad input is
reported in one line with exit code 2; process-wide settings (compile cache, quiet warnings) are
made here and only here.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from dataclasses import field
from typing import Annotated

from goalax import agents
from goalax.errors import GoalaxBug, NoSpaceLeft, closest
from goalax.training import stops

AGENTS = tuple(agents.names())
COMMANDS = ("train", "envs", "bench", "eval", "render", "plot", "sweep")


def _fail(message: str) -> int:
    print(f"goalax: error: {message}", file=sys.stderr)
    return 2


def _quiet_dependency_noise() -> None:
    """Import mujoco.mjx before anything else does, without its "Failed to import warp" lines on
    stdout (they would corrupt ``--json`` output): goalax.envs imports ``notices`` first, which
    drops exactly those lines. brax's model-load warning is filtered where goalax loads models."""
    from goalax.envs import notices

    notices.import_mjx()


def _setup_process() -> None:
    """Persistent compilation cache and quieter logs for interactive use."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import jax

    cache = os.environ.get("GOALAX_JAX_CACHE", os.path.expanduser("~/.cache/goalax/jax"))
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 2.0)


class FlagError(Exception):
    """A flag tyro could not parse; the message is tyro's explanation on one line."""


def parse_flags(command: type, args: list[str], prog: str, default=None):
    """``tyro.cli`` with its boxed multi-line parse errors turned into one line (FlagError);
    ``--help`` output is printed as usual."""
    import contextlib
    import io
    import re

    import tyro

    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return tyro.cli(command, args=args, prog=prog, default=default)
    except SystemExit as exit_:
        text = captured.getvalue()
        if not exit_.code:
            sys.stderr.write(text)
            raise
        body = []
        for line in text.splitlines():
            stripped = line.strip().strip("│╭╰╮╯").strip()
            if stripped.startswith(("─", "╭", "╰")) or "───" in stripped:
                if body:
                    break
                continue
            if stripped:
                body.append(stripped)
        message = re.sub(r"\s+", " ", " ".join(body)) or "could not parse the flags"
        raise FlagError(f"{message} (see {prog} --help)") from None


def _train_command(agent_name: str) -> type:
    """``goalax train AGENT`` flags: the run settings and that agent's config, flat."""
    import tyro

    from goalax.config import RunConfig  # imports jax: not before the stop handler is in place

    agent_config = agents.config_class(agent_name)
    return dataclasses.make_dataclass(
        f"Train{agent_name.upper()}",
        [
            (
                "run",
                Annotated[RunConfig, tyro.conf.OmitArgPrefixes],
                field(default_factory=RunConfig),
            ),
            (
                "agent",
                Annotated[agent_config, tyro.conf.OmitArgPrefixes],
                field(default_factory=agent_config),
            ),
        ],
        frozen=True,
    )


def _flag_value(argv: list[str], flag: str) -> str | None:
    """Value of ``flag`` (``--flag V`` or ``--flag=V``) before tyro parses the rest."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def _without_flag(argv: list[str], flag: str) -> list[str]:
    """``argv`` without ``flag`` and its value (the CLI reads it itself, before tyro)."""
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg == flag and i + 1 < len(argv):
            skip = True
        elif not arg.startswith(flag + "="):
            out.append(arg)
    return out


def _preset_default(command: type, agent_name: str, argv: list[str]):
    """The flags' defaults under ``--preset`` (``--help`` shows the preset's values), or ``None``
    for goalax's own; ``_with_preset`` recomputes the derived values from the parsed flags."""
    from goalax import presets

    preset, env = _flag_value(argv, "--preset"), _flag_value(argv, "--env")
    config = presets.shown_defaults(agent_name, preset, env)
    return None if config is None else command(run=config.run, agent=config.agent)


def _with_preset(config, argv: list[str]):
    """``config`` with its ``--preset`` applied to every field not given as a flag in ``argv``."""
    from goalax import presets

    return presets.apply(config, keep=presets.given_fields(argv))


def train_main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        if argv and argv[0] in ("-h", "--help"):
            print(f"usage: goalax train {{{','.join(AGENTS)}}} [flags]   (goalax train crl --help)")
            return 0
        return _fail(f"name an agent: goalax train {{{','.join(AGENTS)}}} [flags]")
    agent_name, rest = argv[0], argv[1:]
    if agent_name not in AGENTS:
        return _fail(f"unknown agent '{agent_name}'; closest: {closest(agent_name, AGENTS)}")
    from goalax.config import ConfigError, TrainConfig, check_used
    from goalax.presets import given_fields
    from goalax.training.run import TrainingDiverged, summarise, train

    command = _train_command(agent_name)
    default = None
    resume_dir = _flag_value(rest, "--resume")
    if resume_dir:  # flags not given keep the resumed run's values
        from goalax.training.run import load_config

        try:
            saved = load_config(resume_dir)
        except ConfigError as err:
            return _fail(str(err))
        if saved.agent_name != agent_name:
            return _fail(
                f"{resume_dir} is a '{saved.agent_name}' run; use goalax train {saved.agent_name}"
            )
        default = command(run=saved.run, agent=saved.agent)
    else:
        default = _preset_default(command, agent_name, rest)
    try:
        cmd = parse_flags(command, rest, f"goalax train {agent_name}", default)
        config = TrainConfig(run=cmd.run, agent=cmd.agent, agent_name=agent_name)
        if not resume_dir:  # a resumed run keeps the values it was started with
            config = _with_preset(config, rest)
        check_used(config, given_fields(rest))
    except (FlagError, ConfigError) as err:
        return _fail(str(err))
    _setup_process()
    requests = stops.installed()
    if requests is not None and requests.signal is not None:
        print(f"{requests.signal}: stopped before training started", file=sys.stderr)
        return requests.exit_code()
    try:
        result = train(config)
    except ConfigError as err:
        return _fail(str(err))
    except (TrainingDiverged, NoSpaceLeft) as err:  # not bad input: exit 1
        _fail(str(err))
        return 1
    if result.interrupted:
        import signal

        return 128 + int(signal.Signals[result.interrupted])
    if not config.run.quiet:
        print(summarise(result.metrics))
        print(f"run directory: {result.run_dir}")
    return 0


ENVS_HELP = """usage: goalax envs

List every task: observation, goal and action sizes, success threshold, default episode length,
default physics backend, when an episode ends early by default ("terminates": the ant and
humanoid families end when the torso leaves the reference's healthy height range; train with
--no-termination to keep them running to the time limit), and the default training budget
("budget": env steps of a run without --total-env-steps). Takes no arguments."""


def envs_main(argv: list[str]) -> int:
    from rich.console import Console
    from rich.table import Table

    from goalax import envs

    if argv in (["-h"], ["--help"]):
        print(ENVS_HELP)
        return 0
    if argv:
        return _fail("'goalax envs' takes no arguments (see 'goalax envs --help')")
    table = Table(title="goalax tasks")
    columns = (
        "name",
        "obs",
        "goal",
        "action",
        "threshold",
        "episode",
        "backend",
        "terminates",
        "budget",
    )
    for column in columns:
        table.add_column(column)
    for name in envs.names():
        s = envs.spec(name)
        table.add_row(
            name,
            str(s.state_dim + s.goal_dim),
            str(s.goal_dim),
            str(s.action_size),
            f"{s.goal_threshold:g}",
            str(s.episode_length),
            s.backend,
            s.termination,
            f"{s.env_steps:,}",
        )
    Console(width=150).print(table)
    return 0


def bench_main(argv: list[str]) -> int:
    from goalax.bench import bench_command, run_bench
    from goalax.config import ConfigError, TrainConfig, check_used
    from goalax.presets import given_fields

    agent_name = _flag_value(argv, "--agent") or "crl"
    if agent_name not in AGENTS:
        return _fail(f"unknown agent '{agent_name}'; closest: {closest(agent_name, AGENTS)}")
    try:
        cmd = parse_flags(bench_command(agent_name), _without_flag(argv, "--agent"), "goalax bench")
    except FlagError as err:
        return _fail(str(err))
    try:
        config = _with_preset(TrainConfig(cmd.run, cmd.agent, agent_name), argv)
        check_used(config, given_fields(argv))
    except ConfigError as err:
        return _fail(str(err))
    _setup_process()
    try:
        run_bench(config, cmd.bench)
    except ConfigError as err:
        return _fail(str(err))
    return 0


class _UsageError(Exception):
    pass


class _ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (``goalax: error: ...``, exit 2)."""

    def error(self, message: str):
        raise _UsageError(f"{self.prog}: {message}")


def _run_command(prog: str, module, argv: list[str], setup=()) -> int:
    """Parse with ``module.add_arguments``, run ``setup``, print ``module.run_command(args)``."""
    from goalax.config import ConfigError

    parser = _ArgumentParser(prog=prog)
    module.add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except _UsageError as err:
        return _fail(str(err))
    for step in setup:
        step()
    try:
        output = module.run_command(args)
    except ConfigError as err:
        return _fail(str(err))
    print(output)
    return 0


def _setup_rendering() -> None:
    """Pick the headless OpenGL platform before mujoco is imported (EGL, else OSMesa)."""
    from goalax.viz.render import choose_gl_backend

    backend, note = choose_gl_backend(os.environ.get("MUJOCO_GL"))
    os.environ["MUJOCO_GL"] = backend
    if note:
        print(f"goalax: {note}", file=sys.stderr)


def eval_main(argv: list[str]) -> int:
    from goalax import evaluate

    return _run_command("goalax eval", evaluate, argv, setup=[_setup_process])


def render_main(argv: list[str]) -> int:
    from goalax.viz import render

    return _run_command("goalax render", render, argv, setup=[_setup_process])


def plot_main(argv: list[str]) -> int:
    from goalax.viz import plots

    return _run_command("goalax plot", plots, argv)


def sweep_main(argv: list[str]) -> int:
    from goalax import sweep
    from goalax.config import ConfigError, TrainConfig, check_used
    from goalax.presets import given_fields

    if not argv or argv[0] in ("-h", "--help"):
        print(sweep.USAGE)
        return 0 if argv else 2
    agent_name = argv[0]
    if agent_name not in AGENTS:
        return _fail(f"unknown agent '{agent_name}'; closest: {closest(agent_name, AGENTS)}")
    try:
        grid_args, train_flags = sweep.split_flags(argv[1:])
        if any(a in ("-h", "--help") for a in train_flags):
            print(sweep.USAGE + "\n\ntrain flags:")
        cmd = parse_flags(_train_command(agent_name), train_flags, f"goalax sweep {agent_name}")
        base = _with_preset(
            TrainConfig(run=cmd.run, agent=cmd.agent, agent_name=agent_name), train_flags
        )
        grid = sweep.resolve_grid(sweep.raw_grid(grid_args), base)
        given = given_fields(train_flags)
        check_used(base, given | {field.name for field in grid})
        _setup_process()
        manifest = sweep.run_sweep(base, grid, grid_args.out, given=given)
    except (ConfigError, FlagError) as err:
        return _fail(str(err))
    print(sweep.format_manifest(manifest))
    return 0 if {e["status"] for e in manifest["runs"]} == {"done"} else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: goalax {{{','.join(COMMANDS)}}} ...\n")
        print("  train AGENT [flags]  train an agent (agents: " + ", ".join(AGENTS) + ")")
        print("  envs                 list the tasks")
        print("  bench [flags]        measure training throughput, compile time and memory")
        print("  eval RUN_DIR         success, distance and time at goal of a checkpoint")
        print("  render RUN_DIR       video of the policy (--env NAME --out x.png: a snapshot)")
        print("  plot RUNS...         learning curves, mean and 95% CI over seeds")
        print("  sweep AGENT --grid   train every combination of a grid of config values")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    # training's stop handler goes first: a Ctrl-C during the heavy imports must not break them
    with stops.routed(enabled=command == "train"):
        return _run(command, rest)


def _run(command: str, rest: list[str]) -> int:
    """Run ``goalax COMMAND REST``; a defect of goalax or a Ctrl-C is one line too."""
    if command == "render":  # the OpenGL platform is fixed when mujoco is first imported
        _setup_rendering()
    _quiet_dependency_noise()
    handlers = {"train": train_main, "envs": envs_main, "bench": bench_main}
    handlers.update(eval=eval_main, render=render_main, plot=plot_main, sweep=sweep_main)
    if command not in handlers:
        return _fail(f"unknown command '{command}'; closest: {closest(command, COMMANDS)}")
    try:
        return handlers[command](rest)
    except KeyboardInterrupt:  # a second Ctrl-C during training, or one in another command
        print("goalax: interrupted", file=sys.stderr)
        return 130
    except GoalaxBug as err:
        if os.environ.get("GOALAX_DEBUG") == "1":
            raise
        _fail(
            f"internal error: {err}. This is a defect in goalax, not in your input or files; "
            "please report it (GOALAX_DEBUG=1 shows the traceback)"
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
