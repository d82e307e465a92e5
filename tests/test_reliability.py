"""Interruptions, crashes and divergence: the run directory always stays resumable."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from test_training import small_config

import goalax
from goalax.agents.crl import CRLConfig
from goalax.training.run import TrainingDiverged

TRAIN = [
    sys.executable, "-m", "goalax.cli", "train", "crl", "--env", "point",
    "--num-envs", "8", "--unroll-length", "10", "--episode-length", "20",
    "--batch-size", "32", "--buffer-size", "320", "--prefill-steps", "25", "--utd-ratio", "0.05",
    "--num-eval-envs", "4", "--width", "32", "--actor-width", "32", "--repr-dim", "16",
    "--quiet",
]  # fmt: skip


def rows(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def checkpoints(run_dir):
    path = os.path.join(run_dir, "checkpoints")
    if not os.path.isdir(path):
        return []
    return sorted(int(p) for p in os.listdir(path) if p.isdigit())


def start_long_run(run_dir):
    args = TRAIN + ["--total-env-steps", "100000000", "--eval-every", "800", "--run-dir", run_dir]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_checkpoint(proc, run_dir, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if checkpoints(run_dir):
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.stdout.read()}")
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("no checkpoint appeared")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_a_checkpoint_and_exits_cleanly(tmp_path, sig):
    run_dir = str(tmp_path / "run")
    proc = start_long_run(run_dir)
    wait_for_checkpoint(proc, run_dir)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 128 + sig, out
    assert f"{sig.name}: stopped with a checkpoint" in out
    saved = checkpoints(run_dir)[-1]
    assert saved > 0
    # the stop checkpoint is the latest state: resuming continues from it
    resumed = goalax.train(
        small_config(
            "unused", total_env_steps=saved + 160, eval_every=800, resume=run_dir, quiet=True
        )
    )
    assert resumed.metrics[-1]["env_steps"] == saved + 160
    steps = [r["env_steps"] for r in rows(run_dir)]
    assert steps == sorted(set(steps)), "rows duplicated or out of order after resume"


def test_kill_9_then_resume_from_last_checkpoint(tmp_path):
    run_dir = str(tmp_path / "run")
    proc = start_long_run(run_dir)
    wait_for_checkpoint(proc, run_dir)
    time.sleep(1.0)
    proc.kill()
    proc.wait()
    last = checkpoints(run_dir)[-1]
    resumed = goalax.train(
        small_config("unused", total_env_steps=last + 800, eval_every=800, resume=run_dir)
    )
    assert resumed.metrics[0]["env_steps"] > last
    steps = [r["env_steps"] for r in rows(run_dir)]
    assert steps == sorted(set(steps))
    assert steps[-1] == last + 800


def test_non_finite_loss_stops_with_a_clear_message(tmp_path):
    broken = CRLConfig(
        width=32, actor_width=32, repr_dim=16, critic_lr=1e30, actor_lr=1e30, alpha_lr=1e30
    )
    config = small_config(tmp_path / "run", total_env_steps=4000, eval_every=4000)
    config = type(config)(run=config.run, agent=broken)
    with pytest.raises(TrainingDiverged, match="became non-finite .* by env step"):
        goalax.train(config)
