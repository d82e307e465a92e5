"""Console progress: a rich bar (env steps, SPS, ETA, last success) on a terminal, one plain line
per evaluation otherwise (logs and CI), nothing with ``quiet``."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn


class Reporter:
    def __init__(self, total_env_steps: int, quiet: bool, start: int = 0):
        self.total = total_env_steps
        self.quiet = quiet
        self._bar: Progress | None = None
        if not quiet and sys.stdout.isatty():
            self._bar = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                TextColumn("{task.completed:,.0f}/{task.total:,.0f} env steps"),
                TextColumn("{task.fields[sps]:,.0f} sps"),
                TextColumn("success {task.fields[success]}"),
                TimeRemainingColumn(),
                console=Console(),
            )
            self._task = self._bar.add_task("train", total=total_env_steps, sps=0.0, success="-")
            self._bar.update(self._task, completed=start)
            self._bar.start()

    def message(self, text: str) -> None:
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.console.print(text)
        else:
            print(text, flush=True)

    def progress(self, env_steps: int) -> None:
        """Advance the bar between evaluations (no line in plain mode)."""
        if self._bar is not None:
            self._bar.update(self._task, completed=env_steps)

    def update(self, rows: list[dict[str, Any]]) -> None:
        """Report one evaluation (``rows``: one per seed)."""
        if self.quiet:
            return
        row = rows[0]
        success = sum(r["eval/success"] for r in rows) / len(rows)
        if self._bar is not None:
            self._bar.update(
                self._task,
                completed=row["env_steps"],
                sps=row["sps"] or 0.0,
                success=f"{success:.2f}",
            )
            return
        loss = row.get("train/critic_loss")
        loss_text = "" if loss is None else f" critic_loss {loss:.3f}"
        print(
            f"env_steps {row['env_steps']:>10,}/{self.total:,}  sps {row['sps'] or 0:,.0f}  "
            f"success {success:.3f}  dist {row['eval/dist']:.3f}{loss_text}",
            flush=True,
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
