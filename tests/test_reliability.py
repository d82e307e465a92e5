"""Interruptions, crashes, damaged checkpoints and divergence: the run directory always stays
resumable and readable."""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_logging import scalars
from test_training import small_config

import goalax
from goalax.agents.crl import CRLConfig
from goalax.cli import main
from goalax.config import ConfigError
from goalax.errors import GoalaxBug
from goalax.training import checkpoint
from goalax.training.loop import build
from goalax.training.run import TrainingDiverged, load_config, restore_state

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


#: SIGTERM takes SIGINT's handler (goalax.training.stops.SIGNALS), so it is slow here; the default
#: suite's SIGTERM is tests/test_faults.py's (before the first checkpoint, then resume).
@pytest.mark.parametrize(
    "sig", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)]
)
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


# --- damaged checkpoints, TensorBoard after a crash, what goalax.load reads ----------------------


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory):
    """A finished run with checkpoints at env steps 400 and 800 (rows and events at 0, 400, 800)."""
    run_dir = tmp_path_factory.mktemp("two") / "run"
    result = goalax.train(small_config(run_dir, total_env_steps=800, eval_every=400))
    assert checkpoints(str(run_dir)) == [400, 800]
    return result


@pytest.fixture
def copy_of(two_checkpoints, tmp_path):
    """A fresh copy of the two-checkpoint run for a test to damage."""
    path = str(tmp_path / "run")
    shutil.copytree(two_checkpoints.run_dir, path)
    return path


@pytest.fixture
def pre_artifact_copy(copy_of):
    """The copy as a goalax before policy artifacts wrote it (no ``policies/``): load, eval and
    render read its checkpoints."""
    shutil.rmtree(os.path.join(copy_of, "policies"))
    return copy_of


def damage(run_dir, step):
    """Truncate every array data file of one checkpoint to half its size (a torn copy)."""
    folder = os.path.join(run_dir, "checkpoints", str(step))
    files = glob.glob(os.path.join(folder, "**", "d", "*"), recursive=True)
    assert files
    for path in files:
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)


def one_warning_line(capfd, newer, used):
    """stderr is exactly one goalax warning naming the skipped and the used checkpoint."""
    err = capfd.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"goalax: warning: checkpoint {newer} in "), err
    assert f"cannot be read (ValueError); using checkpoint {used}" in err
    return err


def test_resume_skips_a_damaged_latest_checkpoint(copy_of, capfd):
    damage(copy_of, 800)
    capfd.readouterr()
    resumed = goalax.train(
        small_config("unused", total_env_steps=1200, eval_every=400, resume=copy_of)
    )
    err = one_warning_line(capfd, newer=800, used=400)
    assert "(kept as 800.unreadable)" in err
    # the rows of 800 written before were dropped; 800 and 1200 come from the resumed run
    assert [r["env_steps"] for r in resumed.metrics] == [800, 1200]
    assert [r["env_steps"] for r in rows(copy_of)] == [0, 400, 800, 1200]
    assert checkpoints(copy_of) == [400, 800, 1200]
    assert os.path.isdir(os.path.join(copy_of, "checkpoints", "800.unreadable"))


def test_load_and_eval_skip_a_damaged_latest_checkpoint(pre_artifact_copy, capfd):
    damage(pre_artifact_copy, 800)
    capfd.readouterr()
    assert goalax.load(pre_artifact_copy).env_steps == 400
    one_warning_line(capfd, newer=800, used=400)
    assert main(["eval", pre_artifact_copy, "--episodes", "2", "--json"]) == 0
    out, err = capfd.readouterr()
    assert json.loads(out)["env_steps"] == 400
    assert len(err.splitlines()) == 1 and "using checkpoint 400" in err, err
    assert checkpoints(pre_artifact_copy) == [400, 800]  # reading never moves anything


def test_no_intact_checkpoint_is_one_clear_error(pre_artifact_copy, capfd):
    damage(pre_artifact_copy, 400)
    damage(pre_artifact_copy, 800)
    with pytest.raises(
        ConfigError, match="checkpoints 800, 400 in .* cannot be read \\(ValueError\\)"
    ):
        goalax.load(pre_artifact_copy)
    capfd.readouterr()
    assert main(["eval", pre_artifact_copy]) == 2
    err = capfd.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("goalax: error: checkpoints 800, 400 in"), err


def test_a_restore_failure_in_goalax_blames_goalax(pre_artifact_copy, capfd, monkeypatch):
    """Intact files and a defect in goalax's own restore code: the line says so (exit 1), names
    no file as damaged, and GOALAX_DEBUG=1 shows the traceback instead."""

    def broken(like, restored):
        raise KeyError("a defect")

    monkeypatch.setattr(checkpoint, "_with_empty", broken)
    capfd.readouterr()
    assert main(["eval", pre_artifact_copy, "--episodes", "2"]) == 1
    err = capfd.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("goalax: error: internal error: checkpoint 800 was read, then goalax"), (
        err
    )
    assert "not in your input or files" in err and "GOALAX_DEBUG=1" in err
    assert "cannot be read" not in err
    monkeypatch.setenv("GOALAX_DEBUG", "1")
    with pytest.raises(GoalaxBug):
        main(["eval", pre_artifact_copy, "--episodes", "2"])
    assert checkpoints(pre_artifact_copy) == [400, 800]


def test_tensorboard_holds_each_step_once_after_a_crash(copy_of):
    # a crash after the step-800 row and events were written but before its checkpoint
    shutil.rmtree(os.path.join(copy_of, "checkpoints", "800"))
    before = scalars(copy_of)
    assert max(step for _, step in before) == 800
    goalax.train(small_config("unused", total_env_steps=1200, eval_every=400, resume=copy_of))
    pairs = scalars(copy_of)
    assert len(pairs) == len(set(pairs)), "a (tag, step) is logged twice"
    assert sorted({step for _, step in pairs}) == [0, 400, 800, 1200]
    assert {tag for tag, _ in pairs} == {tag for tag, _ in before}


def test_eval_reads_the_policy_artifact_whatever_the_checkpoints(copy_of, capfd):
    damage(copy_of, 800)
    capfd.readouterr()
    assert goalax.load(copy_of).env_steps == 800
    assert capfd.readouterr().err == ""


def test_load_reads_the_params_and_never_the_buffer(two_checkpoints, copy_of, monkeypatch):
    loaded = goalax.load(two_checkpoints.run_dir)
    assert loaded.env_steps == 800
    jax.tree.map(np.testing.assert_array_equal, loaded.params, two_checkpoints.params)
    # A config whose buffer has another shape than the saved one: a full restore of the state
    # fails on the buffer's shape; loading the policy never looks at the buffer.
    config_path = os.path.join(copy_of, "config.json")
    with open(config_path) as f:
        config = json.load(f)
    config["run"]["buffer_size"] *= 2
    with open(config_path, "w") as f:
        json.dump(config, f)
    restored = []
    original = checkpoint.restore_latest_intact

    def spy(mngr, like):
        result = original(mngr, like)
        restored.append(result[1])
        return result

    monkeypatch.setattr(checkpoint, "restore_latest_intact", spy)
    shutil.rmtree(os.path.join(copy_of, "policies"))  # read the checkpoint, as before artifacts
    again = goalax.load(copy_of)
    jax.tree.map(np.testing.assert_array_equal, again.params, two_checkpoints.params)
    (state,) = restored
    assert all(leaf is checkpoint.SKIP for leaf in jax.tree.leaves(state.seeds.buffer))
    assert all(leaf is checkpoint.SKIP for leaf in jax.tree.leaves(state.seeds.env))
    # what a full restore would do: intact files, told apart from damaged ones
    with pytest.raises(ConfigError, match="hold another training state .*put back the run's"):
        restore_state(build(load_config(copy_of)), copy_of)


def test_checkpoint_holds_a_state_with_zero_size_arrays(tmp_path):
    """MJX states of models without actuator activations carry ``act`` of shape ``[N, 0]`` (the
    Panda arms); orbax refuses to save arrays with no elements, which crashed the arms' first
    checkpoint. Such leaves are left out of the files and come back as empty arrays."""
    state = {"act": jnp.zeros((4, 0)), "q": jnp.arange(6.0).reshape(2, 3), "n": jnp.int32(5)}
    mngr = checkpoint.manager(str(tmp_path))
    checkpoint.save(mngr, 7, state)
    mngr.close()
    step, restored = checkpoint.restore_run(str(tmp_path), jax.eval_shape(lambda: state))
    assert step == 7 and restored["act"].shape == (4, 0) and restored["act"].dtype == jnp.float32
    np.testing.assert_array_equal(restored["q"], state["q"])
    assert int(restored["n"]) == 5
