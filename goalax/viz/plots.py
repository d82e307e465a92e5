"""``goalax plot``: learning curves (mean ± 95% bootstrap CI over seeds) from run directories.

A *seed* is one ``(run directory, seed)`` pair: a K-seed run contributes K curves, so runs with
one seed each and one run with K seeds pool the same way. Runs are grouped by config fields
(``--group-by energy``) or, by default, one group per distinct config apart from the seed.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from goalax.errors import ConfigError, closest

#: Config fields that do not make two runs different experiments.
IGNORED_FIELDS = frozenset({"seed", "num_seeds", "run_dir", "quiet", "resume"})
ENV_FIELD = "run.env"


@dataclass(frozen=True)
class RunData:
    """One run directory: its config flattened to ``{"run.env": ..., "agent.energy": ...}``."""

    run_dir: str
    config: dict
    rows: list[dict]


@dataclass(frozen=True)
class GroupSummary:
    """A group's curve (``steps [T]``, ``mean/low/high [T]``) and its final value over seeds."""

    label: str
    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    final_mean: float
    final_low: float
    final_high: float
    num_seeds: int
    final_step: int


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


def group_runs(runs: Sequence[RunData], group_by: Sequence[str] = ()) -> dict[str, list[RunData]]:
    """``{label: runs}``; labels read ``field=value, ...`` (the fields that tell groups apart).

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
    groups: dict[str, list[RunData]] = {}
    for run in runs:
        parts = [f"{f.rsplit('.', 1)[-1]}={run.config.get(f)}" for f in fields]
        if not run.config and not group_by:
            parts = [os.path.basename(os.path.normpath(run.run_dir))]
        label = ", ".join(parts) or _default_label(run)
        groups.setdefault(label, []).append(run)
    return groups


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


def bootstrap_ci(
    values: Sequence[float],
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values [n]`` (a point when n = 1)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(num_resamples, x.size))].mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def summarise_group(label: str, curves: list[dict[int, float]]) -> GroupSummary:
    """Mean and CI over seeds at every env step any seed reports, and at each seed's last row."""
    steps = np.array(sorted({s for c in curves for s in c}), dtype=np.int64)
    stats = []
    for step in steps:
        at_step = [c[step] for c in curves if step in c]
        stats.append((float(np.mean(at_step)), *bootstrap_ci(at_step)))
    mean, low, high = (np.array(col) for col in zip(*stats, strict=True))
    finals = [c[max(c)] for c in curves]
    final_low, final_high = bootstrap_ci(finals)
    return GroupSummary(
        label=label,
        steps=steps,
        mean=mean,
        low=low,
        high=high,
        final_mean=float(np.mean(finals)),
        final_low=final_low,
        final_high=final_high,
        num_seeds=len(curves),
        final_step=int(max(max(c) for c in curves)),
    )


def summarise_runs(
    paths: Sequence[str], metric: str, group_by: Sequence[str] = ()
) -> list[GroupSummary]:
    """Find, group and summarise runs; ConfigError (listing the metrics) if none has ``metric``."""
    runs = [load_run(p) for p in find_runs(paths)]
    summaries = []
    for label, members in group_runs(runs, group_by).items():
        curves = seed_curves(members, metric)
        if curves:
            summaries.append(summarise_group(label, curves))
    if not summaries:
        names = available_metrics(runs)
        raise ConfigError(
            f"no run reports metric '{metric}'; available: {', '.join(names) or 'none'}"
        )
    return summaries


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


def plot_curves(summaries: Sequence[GroupSummary], metric: str, out: str) -> None:
    """Write an image (format from ``out``'s extension) of each group's mean curve with its
    shaded 95% CI."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for s in summaries:
        (line,) = ax.plot(s.steps, s.mean, label=f"{s.label} (n={s.num_seeds})")
        ax.fill_between(s.steps, s.low, s.high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("env steps")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: mean ± 95% bootstrap CI over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
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


def format_table(summaries: Sequence[GroupSummary], metric: str) -> str:
    """Final value per group: mean, 95% CI and the number of seeds."""
    width = max(len("group"), *(len(s.label) for s in summaries))
    lines = [f"{'group':<{width}}  {'env_steps':>11}  {metric + ' mean':>18}  {'95% CI':>19}  n"]
    for s in summaries:
        ci = f"[{s.final_low:.4g}, {s.final_high:.4g}]"
        lines.append(
            f"{s.label:<{width}}  {s.final_step:>11,}  {s.final_mean:>18.4g}  {ci:>19}  "
            f"{s.num_seeds}"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``goalax plot`` flags."""
    parser.description = "Learning curves of runs: mean and 95%% bootstrap CI over seeds."
    parser.add_argument("paths", nargs="+", help="run directories or folders of runs")
    parser.add_argument("--metric", default="eval/success", help="metrics.jsonl column")
    parser.add_argument("--group-by", default=None, help="config field(s), e.g. energy,loss")
    parser.add_argument(
        "--out",
        default="plot.png",
        help="image file to write: .png, .pdf, .svg, ... (by extension)",
    )


def run_command(args: argparse.Namespace) -> str:
    """Summarise, write the image and return the table of final values."""
    check_out_path(args.out)
    group_by = [g.strip() for g in (args.group_by or "").split(",") if g.strip()]
    summaries = summarise_runs(args.paths, args.metric, group_by)
    plot_curves(summaries, args.metric, args.out)
    return f"{format_table(summaries, args.metric)}\nwrote {args.out}"
