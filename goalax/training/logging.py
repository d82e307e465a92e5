"""Metric sinks of a run directory: metrics.jsonl, metrics.csv and TensorBoard event files.

Each evaluation produces one row per seed. Rows are flushed as they are written so a crashed run
keeps everything up to its last evaluation; a resumed run first removes what was logged after
the checkpoint it continues from, so no step is logged twice.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import struct
from collections.abc import Iterator, Sequence
from typing import Any

from goalax.files import replace_text


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
        resume_step: int | None = None,
    ):
        """``enabled=False`` makes a logger that writes nothing (non-primary processes);
        ``wandb_run`` (from ``open_wandb``) also receives every row. ``resume_step`` is the env
        step of the checkpoint a resumed run continues from: TensorBoard events after it, written
        before the run was interrupted, are removed from the event files, and the new writers
        carry ``purge_step`` so a TensorBoard that already loaded them drops them too."""
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

            purge_step, suffix = None, ""
            if resume_step is not None:
                drop_events_after(os.path.join(run_dir, "tb"), resume_step)
                purge_step = resume_step + 1  # TensorBoard hides events at or after purge_step
                # event files are named by the second they were opened: a suffix keeps a resume
                # within the same second from overwriting the file it continues
                suffix = f".resume{resume_step}"
            for seed_index in range(num_seeds):
                log_dir = os.path.join(run_dir, "tb", f"seed{seed_index}")
                writer = SummaryWriter(log_dir, purge_step=purge_step, filename_suffix=suffix)
                self._tb.append(writer)

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
        # durable before the checkpoint of this step is saved: a run dir never holds a
        # checkpoint whose rows a power loss took back
        for file in (self._jsonl, self._csv_file):
            file.flush()
            os.fsync(file.fileno())
        for writer in self._tb:
            writer.flush()

    def close(self) -> None:
        """Close every sink, even when one cannot flush (a full device); the first such error
        is raised once all are closed."""
        if not self.enabled:
            return
        closers = [self._jsonl.close, self._csv_file.close, *(w.close for w in self._tb)]
        if self._wandb is not None:
            closers.append(self._wandb.finish)
        errors = []
        for close in closers:
            try:
                close()
            except OSError as err:
                errors.append(err)
        if errors:
            raise errors[0]


def event_records(path: str) -> Iterator[tuple[bytes, bytes]]:
    """``(record, payload)`` of each complete record of a TensorBoard event file.

    The file is a TFRecord stream: ``uint64 length``, ``uint32`` CRC of the length, ``length``
    bytes of a serialised ``Event``, ``uint32`` CRC of the data. A record torn by a crash (the
    file ends inside it) ends the stream.
    """
    with open(path, "rb") as f:
        data = f.read()
    start = 0
    while start + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[start : start + 8])
        end = start + 12 + length + 4
        if end > len(data):
            return
        yield data[start:end], data[start + 12 : start + 12 + length]
        start = end


def drop_events_after(tb_dir: str, step: int) -> None:
    """Rewrite every event file under ``tb_dir`` without its events of steps after ``step`` (and
    without a record torn by a crash). Files with nothing to drop are left as they are; each
    rewrite goes through a temporary file, so an interruption leaves the old or the new file."""
    from tensorboardX.proto.event_pb2 import Event

    for folder, _, names in os.walk(tb_dir):
        for name in names:
            if "tfevents" not in name:
                continue
            path = os.path.join(folder, name)
            kept = [
                r for r, payload in event_records(path) if Event.FromString(payload).step <= step
            ]
            if sum(map(len, kept)) == os.path.getsize(path):
                continue
            temporary = os.path.join(folder, ".rewrite")  # no "tfevents": TensorBoard ignores it
            with open(temporary, "wb") as f:
                f.write(b"".join(kept))
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, path)


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


def _scan_jsonl(path: str) -> tuple[list[dict[str, Any]], list[int]]:
    """The rows of a metrics.jsonl and the byte length of each line that is not a row (torn by
    a crash mid-write)."""
    rows, torn = [], []
    with open(path, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    for line in lines:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            row = None
        if isinstance(row, dict) and "env_steps" in row:
            rows.append(row)
        else:
            torn.append(len(line))
    return rows, torn


def _csv_value(key: str, text: str) -> Any:
    if text == "":
        return None
    if key in ("env_steps", "grad_steps", "seed"):
        return int(text)
    return float(text)


def _scan_csv(path: str, columns: Sequence[str]) -> list[dict[str, Any]]:
    """The complete rows of a metrics.csv with ``columns`` (a line without its newline is torn
    and left out; so is every row of a file with another header)."""
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        lines = f.read().splitlines(keepends=True)
    complete = [line for line in lines if line.endswith("\n")]
    reader = csv.reader(complete)
    if next(reader, None) != list(columns):
        return []
    rows = []
    for cells in reader:
        if len(cells) != len(columns):
            continue
        try:
            rows.append({k: _csv_value(k, v) for k, v in zip(columns, cells, strict=True)})
        except ValueError:
            continue
    return rows


def _torn_warning(torn: list[int], recovered: int) -> str | None:
    parts = []
    if len(torn) == 1:
        parts.append(
            f"metrics.jsonl ended in a torn line ({torn[0]} bytes, a crash mid-write); dropped it"
        )
    elif torn:
        parts.append(
            f"metrics.jsonl had {len(torn)} torn lines ({sum(torn)} bytes, a crash mid-write); "
            "dropped them"
        )
    if recovered:
        parts.append(f"{recovered} row(s) missing from metrics.jsonl restored from metrics.csv")
    return "goalax: warning: " + "; ".join(parts) if parts else None


def rewrite_metrics(run_dir: str, columns: Sequence[str], last_step: int) -> str | None:
    """Keep only the rows of metrics.jsonl and metrics.csv up to env step ``last_step`` (a
    resumed run writes the later ones again), and every intact row of either file.

    A crash can tear the last line of either file, or (power loss) lose a row of one but not of
    the other: rows are matched by ``(env_steps, seed)``, a row only the csv still holds goes
    back into both, and torn lines are dropped. Each file is replaced atomically. Returns one
    warning line when something was torn or restored, else ``None``.
    """
    jsonl_path = os.path.join(run_dir, "metrics.jsonl")
    csv_path = os.path.join(run_dir, "metrics.csv")
    rows, torn = _scan_jsonl(jsonl_path) if os.path.exists(jsonl_path) else ([], [])
    known = {(r["env_steps"], r.get("seed")) for r in rows}
    extra = []
    if os.path.exists(csv_path):
        extra = [
            r for r in _scan_csv(csv_path, columns) if (r["env_steps"], r["seed"]) not in known
        ]
    kept = sorted(
        (r for r in rows + extra if r["env_steps"] <= last_step),
        key=lambda r: (r["env_steps"], r.get("seed") or 0),
    )
    if os.path.exists(jsonl_path) or os.path.exists(csv_path):
        replace_text(
            jsonl_path,
            "".join(json.dumps({k: _clean(v) for k, v in r.items()}) + "\n" for r in kept),
        )
        table = io.StringIO()
        writer = csv.DictWriter(table, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in kept:
            writer.writerow({k: ("" if v is None else _clean(v)) for k, v in row.items()})
        replace_text(csv_path, table.getvalue())
    return _torn_warning(torn, sum(r["env_steps"] <= last_step for r in extra))
