"""``goalax sweep``: train every combination of a grid of config values, one after another.

Each combination is one K-seed (vmapped) run in ``OUT/<field>=<value>,...``; ``OUT/sweep.json``
lists the grid and every combination's run directory and status, rewritten after each run so an
interrupted sweep still says what finished. Grid values are strings converted to the config
field's type (bool, int, float, str, ``Literal`` choices, ``None`` for optional fields).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import types
import typing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from goalax.config import ConfigError, TrainConfig, to_dict
from goalax.errors import closest
from goalax.files import replace_json

USAGE = (
    "usage: goalax sweep AGENT --grid FIELD=V1,V2 [--grid FIELD=...] [--grid-file sweep.toml] "
    "[--out DIR] [train flags]"
)

#: Fields the sweep itself sets (each run's directory) or that make no sense per combination.
NOT_SWEEPABLE = frozenset({"run_dir", "resume", "quiet"})
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


@dataclass(frozen=True)
class GridArgs:
    """The sweep's own flags; everything else on the command line is a train flag."""

    grid: tuple[str, ...] = ()
    grid_file: str | None = None
    out: str | None = None


def split_flags(argv: list[str]) -> tuple[GridArgs, list[str]]:
    """Take ``--grid`` (repeatable), ``--grid-file`` and ``--out`` out of ``argv``."""
    grid: list[str] = []
    single: dict[str, str | None] = {"--grid-file": None, "--out": None}
    train_flags, i = [], 0
    while i < len(argv):
        name, eq, value = argv[i].partition("=")
        if name not in ("--grid", "--grid-file", "--out"):
            train_flags.append(argv[i])
        else:
            if not eq:
                if i + 1 >= len(argv):
                    raise ConfigError(f"{name} needs a value")
                i += 1
                value = argv[i]
            if name == "--grid":
                grid.append(value)
            else:
                single[name] = value
        i += 1
    return GridArgs(tuple(grid), single["--grid-file"], single["--out"]), train_flags


def raw_grid(args: GridArgs) -> dict[str, list[str]]:
    """``{field: [value texts]}`` from the grid file, then the ``--grid`` flags."""
    raw = read_grid_file(args.grid_file) if args.grid_file else {}
    for spec in args.grid:
        name, values = parse_grid_spec(spec)
        if name in raw:
            raise ConfigError(f"--grid {name} is given twice")
        raw[name] = values
    if not raw:
        raise ConfigError("give at least one --grid FIELD=V1,V2 or a --grid-file with a [grid]")
    return raw


@dataclass(frozen=True)
class GridField:
    """One swept field: which sub-config (``run`` or ``agent``) it belongs to and its values."""

    section: str
    name: str
    values: tuple[Any, ...]


def parse_grid_spec(spec: str) -> tuple[str, list[str]]:
    """``"energy=l2,dot"`` -> ``("energy", ["l2", "dot"])``."""
    name, sep, values = spec.partition("=")
    items = [v.strip() for v in values.split(",")]
    if not sep or not name.strip() or not all(items):
        raise ConfigError(f"--grid {spec!r}: write FIELD=VALUE,VALUE,... (e.g. energy=l2,dot)")
    return name.strip(), items


def read_grid_file(path: str) -> dict[str, list[str]]:
    """The ``[grid]`` table of a TOML file: ``field = [values]`` (values of any TOML type)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError("--grid-file needs Python 3.11+ or the tomli package") from None
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f).get("grid")
    except OSError as err:
        raise ConfigError(f"--grid-file {path} cannot be read ({err.strerror})") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"--grid-file {path} is not valid TOML ({err})") from err
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"--grid-file {path} has no [grid] table of lists (energy = [...])")
    grid = {}
    for name, values in table.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"--grid-file {path}: grid.{name} must be a non-empty list")
        grid[name] = [_toml_text(v) for v in values]
    return grid


def _toml_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def convert(text: str, annotation: Any, flag: str) -> Any:
    """Parse ``text`` as a value of ``annotation``; ConfigError names the flag and the choices."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        choices = {str(c): c for c in typing.get_args(annotation)}
        if text not in choices:
            raise ConfigError(f"{flag}: {text!r} is not one of {', '.join(choices)}")
        return choices[text]
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if text.lower() in ("none", "null") and len(members) < len(typing.get_args(annotation)):
            return None
        if len(members) == 1:
            return convert(text, members[0], flag)
    if annotation is bool:
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ConfigError(f"{flag}: {text!r} is not a boolean (true/false)")
    if annotation in (int, float):
        try:
            return annotation(text.replace("_", ""))
        except ValueError:
            raise ConfigError(f"{flag}: {text!r} is not {annotation.__name__}") from None
    if annotation is str:
        return text
    raise ConfigError(f"{flag}: fields of type {annotation} cannot be swept")


def resolve_grid(raw: dict[str, list[str]], base: TrainConfig) -> list[GridField]:
    """Match grid names to config fields (``num-envs`` = ``num_envs``) and convert the values."""
    sections = {"run": base.run, "agent": base.agent}
    hints = {s: typing.get_type_hints(type(c)) for s, c in sections.items()}
    owners = {name: s for s in ("agent", "run") for name in hints[s]}
    grid = []
    for raw_name, texts in raw.items():
        name = raw_name.replace("-", "_")
        if name not in owners or name in NOT_SWEEPABLE:
            if name in NOT_SWEEPABLE:
                raise ConfigError(f"--grid {raw_name}: set by the sweep; it cannot be swept")
            options = (n for n in owners if n not in NOT_SWEEPABLE)
            raise ConfigError(
                f"unknown grid field '{raw_name}'; closest config fields: {closest(name, options)}"
            )
        section = owners[name]
        flag = f"--grid {name}"
        values = tuple(convert(t, hints[section][name], flag) for t in texts)
        if len(set(values)) != len(values):
            raise ConfigError(f"{flag}: values repeat ({', '.join(texts)})")
        grid.append(GridField(section, name, values))
    return grid


def run_name(values: dict[str, Any]) -> str:
    """Directory name of a combination: ``energy=l2,loss=infonce_sym``."""
    return ",".join(f"{k}={v}".replace(os.sep, "_") for k, v in values.items())


def combinations(
    base: TrainConfig, grid: list[GridField], out: str, given: frozenset[str] = frozenset()
):
    """``(values, config)`` for every point of the cartesian product, in grid order.

    Under ``--preset paper`` each point gets the preset again, keeping the grid's values and the
    flags ``given`` on the command line: the values the reference derives from other settings
    (updates per env step from the episode length, unroll and batch; PPO's minibatches) follow
    the point, not the base."""
    from goalax import presets

    keep = given | {f.name for f in grid}
    for point in itertools.product(*(f.values for f in grid)):
        values = {f.name: v for f, v in zip(grid, point, strict=True)}
        run_values = {f.name: v for f, v in zip(grid, point, strict=True) if f.section == "run"}
        agent_values = {f.name: v for f, v in zip(grid, point, strict=True) if f.section == "agent"}
        run = dataclasses.replace(
            base.run, **run_values, run_dir=os.path.join(out, run_name(values)), resume=None
        )
        config = dataclasses.replace(
            base, run=run, agent=dataclasses.replace(base.agent, **agent_values)
        )
        yield values, presets.apply(config, keep=keep)


def default_out(base: TrainConfig) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"sweep-{base.agent_name}-{base.run.env}-{stamp}")


def _write_manifest(out: str, manifest: dict) -> None:
    replace_json(os.path.join(out, "sweep.json"), manifest, indent=2)


def run_sweep(
    base: TrainConfig,
    grid: list[GridField],
    out: str | None = None,
    log=print,
    given: frozenset[str] = frozenset(),
) -> dict:
    """Validate every combination, then train them in order; returns the sweep.json manifest.
    ``given``: the config fields set by flags (they win over a preset at every point).

    A diverged run is recorded and the sweep goes on; a stop request (Ctrl-C) ends the sweep
    after that run's checkpoint. Bad combinations raise ConfigError before anything is written.
    """
    from goalax.training.loop import build
    from goalax.training.run import TrainingDiverged, summarise, train

    if base.run.run_dir or base.run.resume:
        raise ConfigError("--run-dir/--resume do not apply to a sweep; use --out DIR")
    out = out or default_out(base)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ConfigError(f"--out {out} exists and is not an empty directory; choose another")
    points = list(combinations(base, grid, out, given))
    for values, config in points:
        try:
            build(config)  # validates sizes, env and agent without compiling
        except ConfigError as err:
            raise ConfigError(f"{run_name(values)}: {err}") from err
    log = (lambda _message: None) if base.run.quiet else print
    os.makedirs(out, exist_ok=True)
    manifest = {
        "agent": base.agent_name,
        "out": out,
        "grid": {f.name: list(f.values) for f in grid},
        "base_config": to_dict(base),
        "runs": [{"values": v, "run_dir": c.run.run_dir, "status": "pending"} for v, c in points],
    }
    _write_manifest(out, manifest)
    for i, (entry, (_, config)) in enumerate(zip(manifest["runs"], points, strict=True)):
        log(f"[{i + 1}/{len(points)}] {run_name(entry['values'])} -> {entry['run_dir']}")
        try:
            result = train(config)
        except TrainingDiverged as err:
            entry.update(status="diverged", message=str(err))
            _write_manifest(out, manifest)
            log(f"  diverged: {err}")
            continue
        entry["status"] = "interrupted" if result.interrupted else "done"
        if result.metrics:
            entry["summary"] = summarise(result.metrics)
        _write_manifest(out, manifest)
        if result.interrupted:
            log(f"  {result.interrupted}: sweep stopped; finished runs are listed in sweep.json")
            break
    return manifest


def format_manifest(manifest: dict) -> str:
    """One line per run (status, directory, final evaluation) and how to plot the sweep."""
    lines = [
        f"{e['status']:>11}  {e['run_dir']}  {e.get('summary', e.get('message', ''))}"
        for e in manifest["runs"]
    ]
    out, first = manifest["out"], next(iter(manifest["grid"]))
    lines.append(f"sweep: {out}/sweep.json; plot: goalax plot {out} --group-by {first}")
    return "\n".join(lines)
