"""Metric sinks of a run directory: metrics.jsonl, metrics.csv and TensorBoard event files.

Each evaluation produces one row per seed. Rows are flushed as they are written so a crashed run
keeps everything up to its last evaluation.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from typing import Any


def _clean(value: Any) -> Any:
    """JSON-safe scalar: numpy/jax scalars become Python numbers; NaN becomes null."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


class MetricsLogger:
    """Writes rows to jsonl + csv (fixed columns) + TensorBoard (one writer per seed)."""

    def __init__(
        self,
        run_dir: str,
        columns: Sequence[str],
        num_seeds: int,
        tensorboard: bool,
        enabled: bool = True,
        wandb_run: Any = None,
    ):
        """``enabled=False`` makes a logger that writes nothing (non-primary processes);
        ``wandb_run`` (from ``open_wandb``) also receives every row."""
        self.columns = list(columns)
        self.enabled = enabled
        self._wandb = wandb_run
        if not enabled:
            return
        self._jsonl = open(  # noqa: SIM115 (closed in close())
            os.path.join(run_dir, "metrics.jsonl"), "a", encoding="utf-8"
        )
        csv_path = os.path.join(run_dir, "metrics.csv")
        new_csv = not os.path.exists(csv_path) or os.path.getsize(csv_path) == 0
        self._csv_file = open(  # noqa: SIM115
            csv_path, "a", newline="", encoding="utf-8"
        )
        self._csv = csv.DictWriter(self._csv_file, fieldnames=self.columns, extrasaction="ignore")
        if new_csv:
            self._csv.writeheader()
        self._tb = []
        if tensorboard:
            from tensorboardX import SummaryWriter

            for seed_index in range(num_seeds):
                log_dir = os.path.join(run_dir, "tb", f"seed{seed_index}")
                self._tb.append(SummaryWriter(log_dir=log_dir))

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append one row per seed (``rows[i]`` is seed index i)."""
        if not self.enabled:
            return
        for seed_index, row in enumerate(rows):
            clean = {k: _clean(v) for k, v in row.items()}
            self._jsonl.write(json.dumps(clean) + "\n")
            self._csv.writerow({k: ("" if v is None else v) for k, v in clean.items()})
            if self._tb:
                step = int(row["env_steps"])
                for key, value in clean.items():
                    if "/" in key and isinstance(value, (int, float)):
                        self._tb[seed_index].add_scalar(key, value, step)
        if self._wandb is not None and rows:
            self._wandb.log(_wandb_payload(rows), step=int(rows[0]["env_steps"]))
        self._jsonl.flush()
        self._csv_file.flush()
        for writer in self._tb:
            writer.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        self._jsonl.close()
        self._csv_file.close()
        if self._wandb is not None:
            self._wandb.finish()
        for writer in self._tb:
            writer.close()


def _wandb_payload(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Mean over seeds under each metric's name, and each seed under ``seed<i>/<name>``."""
    payload: dict[str, float] = {}
    for key in rows[0]:
        if "/" not in key:
            continue
        values = [_clean(r[key]) for r in rows]
        numbers = [v for v in values if isinstance(v, (int, float))]
        if numbers:
            payload[key] = sum(numbers) / len(numbers)
        if len(rows) > 1:
            for seed_index, value in enumerate(values):
                if isinstance(value, (int, float)):
                    payload[f"seed{seed_index}/{key}"] = value
    return payload


def open_wandb(project: str, run_dir: str, config: dict) -> Any:
    """A W&B run for ``run_dir`` (resumed runs continue the same W&B run). wandb is imported only
    here, so it is never needed unless --wandb is given."""
    import wandb

    name = os.path.basename(os.path.abspath(run_dir))
    return wandb.init(
        project=project,
        name=name,
        id=name[-64:],
        dir=run_dir,
        config=config,
        resume="allow",
    )


def read_jsonl(path: str) -> list[dict[str, Any]]:
    """All complete rows of a metrics.jsonl (a torn last line from a crash is skipped)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows
