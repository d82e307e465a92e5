"""Metric sinks: jsonl/csv rows, crash-torn files, TensorBoard after a resume, and W&B only on
request."""

import glob
import importlib.util
import json
import os
import struct
import sys
import types
from pathlib import Path

import pytest
from tensorboardX import SummaryWriter
from tensorboardX.proto.event_pb2 import Event

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
    """In a fresh interpreter where ``import wandb`` would succeed (a stand-in module on the
    path), importing every goalax module and logging rows leaves wandb unimported: a
    module-level import anywhere in the package fails this."""
    import subprocess

    (tmp_path / "wandb.py").write_text("")
    script = (
        "import importlib, pkgutil, sys, goalax\nnan = float('nan')\n"
        "names = [m.name for m in pkgutil.walk_packages(goalax.__path__, 'goalax.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "from goalax.training.logging import MetricsLogger\n"
        f"logger = MetricsLogger({str(tmp_path)!r}, {COLUMNS!r}, 2, tensorboard=False)\n"
        f"logger.write({ROWS!r})\n"
        "logger.close()\n"
        "print('wandb' in sys.modules, len(names))\n"
    )
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    imported, modules = out.stdout.split()
    assert imported == "False"
    assert int(modules) > 20  # the walk really imported the package


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed")
def test_wandb_flag_without_the_package_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["train", "crl", "--env", "point", "--wandb"])
    assert code == 2
    assert "pip install 'goalax[wandb]'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def tensorboard_events(run_dir):
    """Every event of every TensorBoard file of a run directory, checking each record's framing
    (8-byte length, 4-byte CRC, data, 4-byte CRC): a torn or badly rewritten file fails here."""
    events = []
    for path in sorted(glob.glob(os.path.join(run_dir, "tb", "*", "*tfevents*"))):
        with open(path, "rb") as f:
            data = f.read()
        start = 0
        while start < len(data):
            (length,) = struct.unpack("<Q", data[start : start + 8])
            payload = data[start + 12 : start + 12 + length]
            assert len(payload) == length and start + 16 + length <= len(data), f"torn: {path}"
            events.append(Event.FromString(payload))
            start += 16 + length
    return events


def scalars(run_dir):
    """(tag, step) of every scalar logged in the run directory's event files."""
    return [(v.tag, e.step) for e in tensorboard_events(run_dir) for v in e.summary.value]


def test_resume_drops_tensorboard_events_after_its_checkpoint(tmp_path):
    # what a crashed run leaves: events up to step 20, the last record torn by the kill
    for seed, steps in (("seed0", (0, 10, 20)), ("seed1", (0, 10))):
        writer = SummaryWriter(str(tmp_path / "tb" / seed))
        for step in steps:
            writer.add_scalar("eval/success", step / 20, step)
        writer.close()
    (seed0,) = glob.glob(str(tmp_path / "tb" / "seed0" / "*tfevents*"))
    with open(seed0, "ab") as f:
        f.write(struct.pack("<Q", 40) + b"torn")
    (seed1,) = glob.glob(str(tmp_path / "tb" / "seed1" / "*tfevents*"))
    untouched = Path(seed1).read_bytes()
    # the run resumes from its checkpoint at step 10 and logs step 20 again
    logger = MetricsLogger(str(tmp_path), COLUMNS, 2, tensorboard=True, resume_step=10)
    logger.write([{"env_steps": 20, "seed": s, "eval/success": 1.0} for s in (0, 1)])
    logger.close()
    pairs = scalars(str(tmp_path))
    assert sorted(pairs) == [("eval/success", s) for s in (0, 0, 10, 10, 20, 20)]
    assert Path(seed1).read_bytes() == untouched  # nothing to drop: the file is left alone
    # the new writers tell a TensorBoard that already read the old events to drop them
    purges = [e.step for e in tensorboard_events(str(tmp_path)) if e.HasField("session_log")]
    assert purges == [11, 11]


def test_a_fresh_run_has_no_purge_event(tmp_path):
    logger = MetricsLogger(str(tmp_path), COLUMNS, 1, tensorboard=True)
    logger.write([{"env_steps": 0, "seed": 0, "eval/success": 0.0}])
    logger.close()
    assert not [e for e in tensorboard_events(str(tmp_path)) if e.HasField("session_log")]
    assert scalars(str(tmp_path)) == [("eval/success", 0)]
