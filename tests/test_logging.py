"""Metric sinks: jsonl/csv rows, crash-torn files, and W&B only on request."""

import importlib.util
import json
import sys
import types

import pytest

from goalax.cli import main
from goalax.training.logging import MetricsLogger, open_wandb, read_jsonl

ROWS = [
    {"env_steps": 10, "seed": 0, "eval/success": 0.5, "train/critic_loss": float("nan")},
    {"env_steps": 10, "seed": 1, "eval/success": 1.0, "train/critic_loss": 2.0},
]
COLUMNS = ["env_steps", "seed", "eval/success", "train/critic_loss"]


def test_rows_go_to_jsonl_and_csv_and_nan_becomes_null(tmp_path):
    logger = MetricsLogger(str(tmp_path), COLUMNS, num_seeds=2, tensorboard=False)
    logger.write(ROWS)
    logger.close()
    rows = read_jsonl(str(tmp_path / "metrics.jsonl"))
    assert rows[0]["train/critic_loss"] is None and rows[1]["eval/success"] == 1.0
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS) and len(lines) == 3


def test_a_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps(ROWS[1]) + "\n" + '{"env_steps": 2')
    assert read_jsonl(str(path)) == [ROWS[1]]


class FakeRun:
    def __init__(self):
        self.logged, self.finished = [], False

    def log(self, payload, step):
        self.logged.append((step, payload))

    def finish(self):
        self.finished = True


def test_wandb_receives_seed_means_and_per_seed_values(tmp_path, monkeypatch):
    run = FakeRun()
    calls = {}

    def init(**kwargs):
        calls.update(kwargs)
        return run

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=init))
    wandb_run = open_wandb("proj", str(tmp_path / "my-run"), {"run": {}})
    assert calls["project"] == "proj" and calls["name"] == "my-run" and calls["resume"] == "allow"
    logger = MetricsLogger(str(tmp_path), COLUMNS, 2, tensorboard=False, wandb_run=wandb_run)
    logger.write(ROWS)
    logger.close()
    step, payload = run.logged[0]
    assert step == 10
    assert payload["eval/success"] == pytest.approx(0.75)
    assert payload["seed1/eval/success"] == 1.0
    assert payload["train/critic_loss"] == 2.0  # the NaN seed is left out of the mean
    assert run.finished


def test_wandb_is_not_imported_without_the_flag(tmp_path):
    sys.modules.pop("wandb", None)
    logger = MetricsLogger(str(tmp_path), COLUMNS, num_seeds=2, tensorboard=False)
    logger.write(ROWS)
    logger.close()
    assert "wandb" not in sys.modules


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed")
def test_wandb_flag_without_the_package_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["train", "crl", "--env", "point", "--wandb"])
    assert code == 2
    assert "pip install 'goalax[wandb]'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
