"""``goalax plot``: learning curves (mean or IQM ± 95% bootstrap CI over seeds) from run
directories.

A *seed* is one ``(run directory, seed)`` pair: a K-seed run contributes K curves, so runs with
one seed each and one run with K seeds pool the same way. Runs are grouped by config fields
(``--group-by energy``) or, by default, one group per distinct config apart from the seed. With
``--aggregate iqm`` a group that ran several tasks also gets one row over all of them: the IQM of
every seed's final score on every task, with a stratified-bootstrap interval (goalax.viz.stats).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from goalax.errors import ConfigError, closest
from goalax.viz.stats import STATISTICS, pooled, stratified_bootstrap_ci

#: Config fields that do not make two runs different experiments.
IGNORED_FIELDS = frozenset({"seed", "num_seeds", "run_dir", "quiet", "resume"})
ENV_FIELD = "run.env"
#: Bootstrap resamples per interval: the mean keeps its original 2,000; the IQM, cheap to
#: resample for the few seeds of a run, gets 10,000 (rliable's default is 50,000).
RESAMPLES = {"mean": 2000, "iqm": 10_000}
#: How ``--aggregate`` names its statistic in titles and table headers.
STATISTIC_NAMES = {"mean": "mean", "iqm": "IQM"}


@dataclass(frozen=True)
class RunData:
    """One run directory: its config flattened to ``{"run.env": ..., "agent.energy": ...}``."""

    run_dir: str
    config: dict
    rows: list[dict]


@dataclass(frozen=True)
class GroupSummary:
    """A group's curve (``steps [T]``; ``value/low/high [T]``: the mean or IQM over seeds and its
    95% CI) and the same of each seed's last value (``finals [num_seeds]``)."""

    label: str
    #: ``label`` without the task: what ``--aggregate iqm`` pools over tasks.
    method: str
    task: str | None
    steps: np.ndarray
    value: np.ndarray
    low: np.ndarray
    high: np.ndarray
    finals: tuple[float, ...]
    final_value: float
    final_low: float
    final_high: float
    final_step: int

    @property
    def num_seeds(self) -> int:
        return len(self.finals)


@dataclass(frozen=True)
class TaskAggregate:
    """One method's final scores over several tasks: the statistic of all (seed, task) scores
    pooled, with a stratified-bootstrap 95% CI."""

    method: str
    tasks: tuple[str, ...]
    value: float
    low: float
    high: float
    num_runs: int


def find_runs(paths: Sequence[str]) -> list[str]:
    """Run directories (those holding ``metrics.jsonl``) at or below each path, sorted."""
    found: list[str] = []
    for path in paths:
        if not os.path.isdir(path):
            raise ConfigError(f"{path} is not a directory; pass run directories or folders of runs")
        below = sorted(
            root for root, _, files in os.walk(path, followlinks=True) if "metrics.jsonl" in files
        )
        if not below:
            raise ConfigError(f"no run directory (with metrics.jsonl) at or below {path}")
        found += [p for p in below if p not in found]
    return found


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def load_run(run_dir: str) -> RunData:
    """Rows of ``metrics.jsonl`` and the flattened ``config.json`` (empty if there is none)."""
    from goalax.training.logging import read_jsonl

    config: dict = {}
    config_path = os.path.join(run_dir, "config.json")
    if os.path.isfile(config_path):
        try:
            with open(config_path, encoding="utf-8") as f:
                config = _flatten(json.load(f))
        except json.JSONDecodeError as err:
            raise ConfigError(f"{config_path} is not valid JSON ({err.msg})") from err
    return RunData(run_dir, config, read_jsonl(os.path.join(run_dir, "metrics.jsonl")))


def available_metrics(runs: Sequence[RunData]) -> list[str]:
    """Numeric row keys a curve can be drawn for (everything but the step and seed columns)."""
    names = {
        key
        for run in runs
        for row in run.rows
        for key, value in row.items()
        if isinstance(value, (int, float)) and key not in ("env_steps", "seed")
    }
    return sorted(names)


def _resolve_field(name: str, runs: Sequence[RunData]) -> str:
    """``energy`` -> ``agent.energy``: a flattened config key matching by its last component."""
    keys = sorted({k for run in runs for k in run.config})
    name = name.replace("-", "_")
    matches = [k for k in keys if k == name or k.rsplit(".", 1)[-1] == name]
    if not matches:
        short = {k.rsplit(".", 1)[-1] for k in keys}
        raise ConfigError(f"--group-by: no config field '{name}'; closest: {closest(name, short)}")
    return matches[0]


def group_fields(runs: Sequence[RunData], group_by: Sequence[str] = ()) -> list[str]:
    """The flattened config fields that tell groups apart (labels read ``field=value, ...``).

    Runs of different tasks are never pooled as seeds of one curve: when they span several tasks,
    ``--group-by`` fields get the task added (``agent_name=crl, env=reacher``)."""
    if group_by:
        fields = [_resolve_field(name, runs) for name in group_by]
        if ENV_FIELD not in fields and len({run.config.get(ENV_FIELD) for run in runs}) > 1:
            fields.append(ENV_FIELD)
    else:
        keys = sorted({k for run in runs for k in run.config})
        fields = [
            k
            for k in keys
            if k.rsplit(".", 1)[-1] not in IGNORED_FIELDS
            and len({json.dumps(run.config.get(k)) for run in runs}) > 1
        ]
    return fields


def _parts(run: RunData, fields: Sequence[str]) -> list[str]:
    return [f"{f.rsplit('.', 1)[-1]}={run.config.get(f)}" for f in fields]


def group_runs(runs: Sequence[RunData], group_by: Sequence[str] = ()) -> dict[str, list[RunData]]:
    """``{label: runs}``, one group per value of ``group_fields``."""
    fields = group_fields(runs, group_by)
    groups: dict[str, list[RunData]] = {}
    for run in runs:
        parts = _parts(run, fields)
        if not run.config and not group_by:
            parts = [os.path.basename(os.path.normpath(run.run_dir))]
        label = ", ".join(parts) or _default_label(run)
        groups.setdefault(label, []).append(run)
    return groups


def method_label(run: RunData, fields: Sequence[str]) -> str:
    """A run's group label without its task (``agent_name=crl``), or ``all runs``."""
    return ", ".join(_parts(run, [f for f in fields if f != ENV_FIELD])) or "all runs"


def _default_label(run: RunData) -> str:
    agent, env = run.config.get("agent_name"), run.config.get("run.env")
    return f"{agent} {env}" if agent and env else os.path.basename(os.path.normpath(run.run_dir))


def seed_curves(runs: Sequence[RunData], metric: str) -> list[dict[int, float]]:
    """One ``{env_steps: value}`` per (run, seed) that reports ``metric`` (nulls skipped)."""
    curves: dict[tuple[str, object], dict[int, float]] = {}
    for run in runs:
        for row in run.rows:
            value = row.get(metric)
            if isinstance(value, (int, float)) and np.isfinite(value):
                curves.setdefault((run.run_dir, row.get("seed")), {})[int(row["env_steps"])] = value
    return list(curves.values())


def _estimate(scores_by_task: Sequence[Sequence[float]], aggregate: str) -> tuple[float, ...]:
    """``(value, low, high)``: the statistic of the pooled scores and its stratified CI."""
    statistic = STATISTICS[aggregate]
    ci = stratified_bootstrap_ci(scores_by_task, statistic, num_resamples=RESAMPLES[aggregate])
    return (pooled(scores_by_task, statistic), *ci)


def summarise_group(
    label: str,
    curves: list[dict[int, float]],
    aggregate: str = "mean",
    method: str | None = None,
    task: str | None = None,
) -> GroupSummary:
    """Mean (or IQM) and CI over seeds at every env step any seed reports, and at each seed's
    last row."""
    steps = np.array(sorted({s for c in curves for s in c}), dtype=np.int64)
    stats = [_estimate([[c[step] for c in curves if step in c]], aggregate) for step in steps]
    value, low, high = (np.array(col) for col in zip(*stats, strict=True))
    finals = tuple(c[max(c)] for c in curves)
    final_value, final_low, final_high = _estimate([finals], aggregate)
    return GroupSummary(
        label=label,
        method=label if method is None else method,
        task=task,
        steps=steps,
        value=value,
        low=low,
        high=high,
        finals=finals,
        final_value=final_value,
        final_low=final_low,
        final_high=final_high,
        final_step=int(max(max(c) for c in curves)),
    )


def summarise_runs(
    paths: Sequence[str], metric: str, group_by: Sequence[str] = (), aggregate: str = "mean"
) -> list[GroupSummary]:
    """Find, group and summarise runs; ConfigError (listing the metrics) if none has ``metric``."""
    runs = [load_run(p) for p in find_runs(paths)]
    fields = group_fields(runs, group_by)
    summaries = []
    for label, members in group_runs(runs, group_by).items():
        curves = seed_curves(members, metric)
        if curves:
            method, task = method_label(members[0], fields), members[0].config.get(ENV_FIELD)
            summaries.append(summarise_group(label, curves, aggregate, method, task))
    if not summaries:
        names = available_metrics(runs)
        raise ConfigError(
            f"no run reports metric '{metric}'; available: {', '.join(names) or 'none'}"
        )
    return summaries


def aggregate_tasks(summaries: Sequence[GroupSummary], aggregate: str) -> list[TaskAggregate]:
    """One row per method that ran several tasks: its seeds' final scores on every task pooled
    (``[num_seeds_t]`` per task, stratified so each task keeps its own seeds)."""
    by_method: dict[str, list[GroupSummary]] = {}
    for s in summaries:
        by_method.setdefault(s.method, []).append(s)
    rows = []
    for method, members in by_method.items():
        if len({s.task for s in members}) > 1:
            value, low, high = _estimate([s.finals for s in members], aggregate)
            tasks = tuple(str(s.task) for s in members)
            runs = sum(s.num_seeds for s in members)
            rows.append(TaskAggregate(method, tasks, value, low, high, runs))
    return rows


def image_formats() -> list[str]:
    """File extensions matplotlib can write (png, pdf, svg, ...), sorted."""
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


def check_out_path(out: str) -> None:
    """Refuse an ``--out`` matplotlib cannot write before any run is read, naming the formats it
    can (savefig would raise deep inside matplotlib, or silently add ``.png`` to a bare name)."""
    extension = os.path.splitext(out)[1].lstrip(".").lower()
    formats = image_formats()
    if extension not in formats:
        got = f"'.{extension}'" if extension else "no extension"
        raise ConfigError(
            f"--out {out} has {got}; name an image file ending in one of "
            + ", ".join("." + f for f in formats)
        )
    if os.path.isdir(out):
        raise ConfigError(f"--out {out} is a directory; name an image file, e.g. {out}/plot.png")


def plot_curves(
    summaries: Sequence[GroupSummary],
    metric: str,
    out: str,
    aggregates: Sequence[TaskAggregate] = (),
    aggregate: str = "mean",
) -> None:
    """Write an image (format from ``out``'s extension) of each group's mean (or IQM) curve with
    its shaded 95% CI: one panel per task (a method keeps its colour in all; one legend below),
    then one of the over-tasks rows when there are any."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tasks = list(dict.fromkeys(s.task for s in summaries))
    panels = len(tasks) + bool(aggregates)
    several = len(tasks) > 1
    fig = Figure(
        figsize=(4.5 * panels, 4.5) if several else (7, 4.5), dpi=120, layout="constrained"
    )
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    methods = dict.fromkeys(s.method for s in summaries)
    colors = {m: cycle[i % len(cycle)] for i, m in enumerate(methods)}
    title = f"{metric}: {STATISTIC_NAMES[aggregate]} ± 95% bootstrap CI over seeds"
    lines = {}
    for ax, task in zip(axes, tasks, strict=False):
        for s in summaries:
            if s.task == task:
                label = s.method if several else f"{s.label} (n={s.num_seeds})"
                (lines[label],) = ax.plot(s.steps, s.value, color=colors[s.method], label=label)
                ax.fill_between(
                    s.steps, s.low, s.high, color=colors[s.method], alpha=0.2, linewidth=0
                )
        ax.set_xlabel("env steps")
        ax.set_ylabel(metric)
        ax.set_title(str(task) if several else title, fontsize="medium")
        ax.grid(alpha=0.3)
    if aggregates:
        _plot_intervals(axes[-1], aggregates, metric, aggregate, colors)
    if several:
        fig.suptitle(title)
        ncols = min(len(lines), 5)
        fig.legend(lines.values(), lines, loc="outside lower center", ncols=ncols, fontsize="small")
    else:
        axes[0].legend(fontsize="small")
    _save(fig, out)


def _plot_intervals(ax, rows: Sequence[TaskAggregate], metric: str, aggregate: str, colors) -> None:
    """Each method's over-tasks value as a point with its CI as a horizontal bar."""
    for y, row in enumerate(rows):
        xerr = [[row.value - row.low], [row.high - row.value]]
        ax.errorbar(row.value, y, xerr=xerr, fmt="o", color=colors[row.method], capsize=4)
    ax.set_yticks(range(len(rows)), [row.method for row in rows], fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel(f"final {metric}, {STATISTIC_NAMES[aggregate]}")
    tasks = sorted({t for row in rows for t in row.tasks})
    ax.set_title(f"over {len(tasks)} tasks (stratified bootstrap)", fontsize="medium")
    ax.grid(alpha=0.3, axis="x")


def _save(fig, out: str) -> None:
    try:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        fig.savefig(out)
    except OSError as err:
        raise ConfigError(
            f"cannot write --out {out} ({err.strerror}); choose another path"
        ) from err
    except RuntimeError as err:  # a format whose tool is missing (.pgf needs a TeX install)
        reason = str(err).splitlines()[0]
        raise ConfigError(f"cannot write --out {out} ({reason}); choose another format") from err


def format_table(
    summaries: Sequence[GroupSummary],
    metric: str,
    aggregates: Sequence[TaskAggregate] = (),
    aggregate: str = "mean",
) -> str:
    """Final value per group: mean (or IQM), 95% CI and the number of seeds; then one row per
    method over all its tasks (``all N tasks`` in the env_steps column, n = seeds x tasks)."""
    column = f"{metric} {STATISTIC_NAMES[aggregate]}"
    labels = [s.label for s in summaries] + [row.method for row in aggregates]
    width = max(len("group"), *(len(label) for label in labels))
    lines = [f"{'group':<{width}}  {'env_steps':>11}  {column:>18}  {'95% CI':>19}  n"]
    cells = [
        (s.label, f"{s.final_step:,}", s.final_value, s.final_low, s.final_high, s.num_seeds)
        for s in summaries
    ]
    cells += [
        (row.method, f"all {len(row.tasks)} tasks", row.value, row.low, row.high, row.num_runs)
        for row in aggregates
    ]
    for label, steps, value, low, high, n in cells:
        ci = f"[{low:.4g}, {high:.4g}]"
        lines.append(f"{label:<{width}}  {steps:>11}  {value:>18.4g}  {ci:>19}  {n}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``goalax plot`` flags."""
    parser.description = "Learning curves of runs: mean (or IQM) and 95% bootstrap CI over seeds."
    parser.add_argument("paths", nargs="+", help="run directories or folders of runs")
    parser.add_argument("--metric", default="eval/success", help="metrics.jsonl column")
    parser.add_argument("--group-by", default=None, help="config field(s), e.g. energy,loss")
    parser.add_argument(
        "--out",
        default="plot.png",
        help="image file to write: .png, .pdf, .svg, ... (by extension)",
    )
    parser.add_argument(
        "--aggregate",
        choices=list(STATISTICS),
        default="mean",
        help="statistic over seeds: mean, or iqm = interquartile mean with stratified-bootstrap "
        "CIs (Agarwal et al. 2021), plus a row per group over all its tasks",
    )


def run_command(args: argparse.Namespace) -> str:
    """Summarise, write the image and return the table of final values."""
    check_out_path(args.out)
    group_by = [g.strip() for g in (args.group_by or "").split(",") if g.strip()]
    summaries = summarise_runs(args.paths, args.metric, group_by, args.aggregate)
    aggregates = aggregate_tasks(summaries, args.aggregate) if args.aggregate == "iqm" else []
    plot_curves(summaries, args.metric, args.out, aggregates, args.aggregate)
    table = format_table(summaries, args.metric, aggregates, args.aggregate)
    return f"{table}\nwrote {args.out}"
