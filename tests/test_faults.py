"""The run lifecycle under faults and bad input: a second writer, torn metrics, a full disk, a
diverged run, a run without a checkpoint and early Ctrl-C. Each ends in one line, the right exit
code and a run directory that still resumes."""

import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from test_logging import scalars
from test_training import small_config

import goalax
from goalax.cli import main

#: Every in-process run here is this config (or a resume of it), so the test session compiles it
#: once (test_reliability.py's ``two_checkpoints`` is the same program).
TOTAL, EVERY = 800, 400


def files(run_dir) -> dict[str, str]:
    """``{relative path: sha1}`` of every file under ``run_dir``."""
    out = {}
    for folder, _, names in os.walk(run_dir):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, run_dir)] = hashlib.sha1(f.read()).hexdigest()
    return out


def steps(run_dir, name="metrics.jsonl") -> list[int]:
    with open(os.path.join(run_dir, name)) as f:
        if name.endswith(".csv"):
            return [int(line.split(",")[0]) for line in f.read().splitlines()[1:]]
        return [json.loads(line)["env_steps"] for line in f]


def checkpoints(run_dir) -> list[str]:
    """Every entry of the checkpoint folder, steps first in numeric order."""
    names = os.listdir(os.path.join(run_dir, "checkpoints"))
    return sorted(names, key=lambda n: (not n.isdigit(), int(n) if n.isdigit() else 0, n))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run: checkpoints and rows at 400 and 800 (and a row at 0)."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    goalax.train(small_config(run_dir, total_env_steps=TOTAL, eval_every=EVERY))
    return str(run_dir)


@pytest.fixture
def copy_of(finished, tmp_path):
    path = str(tmp_path / "run")
    shutil.copytree(finished, path)
    return path


def resume_argv(run_dir, *flags):
    return ["train", "crl", "--resume", run_dir, "--quiet", *flags]


def one_error(capfd) -> str:
    err = capfd.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("goalax: error: "), err
    return err


# --- 1. two processes on one run directory -------------------------------------------------------


def test_a_second_writer_is_refused_and_reading_needs_no_lock(copy_of, capfd):
    before = files(copy_of)
    with open(os.path.join(copy_of, ".lock"), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242\n")
        held.flush()
        capfd.readouterr()
        assert main(resume_argv(copy_of, "--total-env-steps", "1200")) == 2
        err = one_error(capfd)
        assert f"run directory {copy_of} is in use by process 4242; wait for it" in err
        # a new run into the directory says the same, not "pass --resume"
        assert main(["train", "crl", "--env", "point", "--run-dir", copy_of]) == 2
        assert "is in use by process 4242" in one_error(capfd)
        assert files(copy_of) == {**before, ".lock": files(copy_of)[".lock"]}
        assert goalax.load(copy_of).env_steps == TOTAL  # reading never takes the lock
    # kill -9 of a holder leaves its file but no lock: the next writer takes it and removes it
    goalax.train(small_config("unused", total_env_steps=TOTAL + EVERY, resume=copy_of))
    assert steps(copy_of)[-1] == TOTAL + EVERY
    assert not os.path.exists(os.path.join(copy_of, ".lock"))


# --- 2. a torn last line of metrics.jsonl --------------------------------------------------------


def test_resume_keeps_every_intact_row_and_says_what_was_torn(copy_of, capfd):
    # a crash before the 800 checkpoint was durable: the jsonl row of 800 is torn and a row of
    # 400 only the csv still holds (power loss), so the resume continues from 400
    shutil.rmtree(os.path.join(copy_of, "checkpoints", "800"))
    jsonl = os.path.join(copy_of, "metrics.jsonl")
    with open(jsonl) as f:
        lines = f.read().splitlines(keepends=True)
    with open(jsonl, "w") as f:
        f.write(lines[0] + lines[2][:25])
    capfd.readouterr()
    goalax.train(small_config("unused", total_env_steps=TOTAL, resume=copy_of))
    err = capfd.readouterr().err
    assert err == (
        "goalax: warning: metrics.jsonl ended in a torn line (25 bytes, a crash mid-write); "
        "dropped it; 1 row(s) missing from metrics.jsonl restored from metrics.csv\n"
    )
    assert steps(copy_of) == steps(copy_of, "metrics.csv") == [0, 400, 800]
    assert [n for n in os.listdir(copy_of) if n.endswith(".rewrite")] == []


def test_metrics_rewrite_replaces_files_atomically(copy_of, monkeypatch):
    """A crash while the rows are rewritten leaves the old files whole."""
    from goalax.training import logging

    before = files(copy_of)

    def crash(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(logging.os, "replace", crash)
    with pytest.raises(OSError):
        logging.rewrite_metrics(copy_of, ["env_steps"], EVERY)
    assert files(copy_of) == before


# --- 5. a run directory without a checkpoint ----------------------------------------------------


def test_resume_without_a_checkpoint_starts_again_from_step_0(copy_of, capfd):
    # killed before its first checkpoint was complete: rows, events and a save's leftovers
    shutil.rmtree(os.path.join(copy_of, "checkpoints"))
    os.makedirs(os.path.join(copy_of, "checkpoints", "400.orbax-checkpoint-tmp-1"))
    capfd.readouterr()
    assert main(resume_argv(copy_of)) == 0
    err = capfd.readouterr().err
    assert err == f"goalax: {copy_of} has no checkpoint; starting it again from env step 0\n"
    assert steps(copy_of) == steps(copy_of, "metrics.csv") == [0, EVERY, TOTAL]
    assert checkpoints(copy_of) == [str(EVERY), str(TOTAL)]
    pairs = scalars(copy_of)
    assert len(pairs) == len(set(pairs)), "a (tag, step) is logged twice"


# --- 4. a diverged run continues with lower learning rates ---------------------------------------


def test_a_diverged_run_continues_with_the_command_its_message_gives(copy_of, capfd):
    huge = ["--critic-lr", "1e30", "--actor-lr", "1e30", "--alpha-lr", "1e30"]
    capfd.readouterr()
    assert main(resume_argv(copy_of, "--total-env-steps", str(TOTAL + EVERY), *huge)) == 1
    err = one_error(capfd)
    assert f"became non-finite (seed index 0) by env step {TOTAL + EVERY}" in err
    assert f"the last good checkpoint is env step {TOTAL} in {copy_of}/checkpoints" in err
    command = err.split("with lower learning rates: ")[1].split()
    assert command[:4] == ["goalax", "train", "crl", "--resume"] and "--critic-lr" in command
    assert checkpoints(copy_of) == [str(EVERY), str(TOTAL)]  # nothing of the chunk was saved
    assert main([*command[1:], "--quiet"]) == 0
    assert steps(copy_of) == [0, EVERY, TOTAL, TOTAL + EVERY]
    with open(os.path.join(copy_of, "config.json")) as f:
        agent = json.load(f)["agent"]
    assert agent["critic_lr"] == agent["actor_lr"] == agent["alpha_lr"] == 3e-4


# --- 6. Ctrl-C and SIGTERM at any time -----------------------------------------------------------

TRAIN = [
    sys.executable, "-m", "goalax.cli", "train", "crl", "--env", "point",
    "--num-envs", "8", "--unroll-length", "10", "--episode-length", "20",
    "--batch-size", "32", "--buffer-size", "320", "--prefill-steps", "25", "--utd-ratio", "0.05",
    "--num-eval-envs", "4", "--width", "32", "--actor-width", "32", "--repr-dim", "16",
    "--quiet", "--eval-every", str(EVERY),
]  # fmt: skip


def wait_for_stop_handlers(proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Until ``proc`` catches SIGTERM (its ``SigCgt`` mask in /proc), i.e. goalax's stop handlers
    are installed: a fixed sleep raced the imports on a loaded machine."""
    bit = 1 << (signal.SIGTERM - 1)
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(f"/proc/{proc.pid}/status") as f:
            caught = next(line for line in f if line.startswith("SigCgt:"))
        if int(caught.split()[1], 16) & bit:
            return
        time.sleep(0.005)
    raise AssertionError("goalax did not install its stop handlers")


def test_ctrl_c_during_the_imports_stops_with_130_and_one_line(tmp_path):
    """Python's own KeyboardInterrupt could land in a gc callback of JAX's and be dropped (the
    run went on and exited 0) or print a traceback; the CLI's handler is in place first."""
    run_dir = str(tmp_path / "run")
    proc = subprocess.Popen(
        [*TRAIN, "--run-dir", run_dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for_stop_handlers(proc)  # goalax.cli is imported, jax not yet
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err == "SIGINT: stopped before training started\n" and out == ""
    assert not os.path.exists(run_dir)


def test_sigterm_before_the_first_checkpoint_stops_and_the_run_resumes(tmp_path, capfd):
    run_dir = str(tmp_path / "run")
    proc = subprocess.Popen(
        [*TRAIN, "--total-env-steps", "100000000", "--run-dir", run_dir],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not os.path.exists(os.path.join(run_dir, "config.json")) and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)  # while the program is built or compiled
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    saved = [int(s) for s in checkpoints(run_dir) if s.isdigit()]
    if saved:  # the machine was fast: the first chunk ran before the signal
        expected = f"with a checkpoint at env step {saved[-1]}; continue"
    else:
        expected = "before the first checkpoint; start it again"
    assert err == f"SIGTERM: stopped {expected} with --resume {run_dir}\n"
    total = max(saved, default=0) + EVERY
    assert main(resume_argv(run_dir, "--total-env-steps", str(total))) == 0
    assert steps(run_dir)[-1] == total


# --- 3. a full disk -----------------------------------------------------------------------------


def test_a_full_disk_during_a_checkpoint_is_one_line_and_the_run_resumes(
    copy_of, capfd, monkeypatch
):
    """Simulated: orbax's writer threads report ENOSPC as a ValueError quoting the OS error,
    after creating the step's temporary folder (seen on a 4 MiB tmpfs, which a test cannot
    mount without root)."""
    from goalax.training import checkpoint

    def full(mngr, step, **_):
        partial = os.path.join(mngr.directory, f"{step}.orbax-checkpoint-tmp-1", "default")
        os.makedirs(partial)
        raise ValueError(
            f'RESOURCE_EXHAUSTED: Error writing local file "{partial}/_sharding": Failed to '
            "write 11963 bytes to file 16: No space left on device [os_error_code='28']"
        )

    monkeypatch.setattr(checkpoint.ocp.CheckpointManager, "save", full)
    capfd.readouterr()
    assert main(resume_argv(copy_of, "--total-env-steps", str(TOTAL + EVERY))) == 1
    assert one_error(capfd) == (
        f"goalax: error: no space left on device while writing checkpoint {TOTAL + EVERY} in "
        f"{copy_of}; the newest intact checkpoint is {TOTAL}; free space and resume with "
        f"--resume {copy_of}\n"
    )
    assert checkpoints(copy_of) == [str(EVERY), str(TOTAL)]  # no partial folder left
    monkeypatch.undo()  # space is back
    assert main(resume_argv(copy_of)) == 0
    assert steps(copy_of) == [0, EVERY, TOTAL, TOTAL + EVERY]
    assert checkpoints(copy_of) == [str(EVERY), str(TOTAL), str(TOTAL + EVERY)]
