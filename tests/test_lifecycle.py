"""The life of a run as a user drives it from the command line, on one task of every family:
train -> ``goalax eval`` -> ``goalax render`` -> ``goalax.load`` and ``act`` -> ``--resume`` to a
larger budget (rows and params equal to an uninterrupted run) -> kill -9 during training and
resume -> a damaged newest checkpoint falls back to the previous one with one warning line.

Every step of a task shares one tiny config, so the compiled programs are reused through the
compilation cache. ``point`` runs the whole sequence in the default suite (its config is the one
of tests/test_reliability.py, whose programs the suite compiles anyway); the six MuJoCo families
compile for 1-4 minutes each on 2 CPU cores, so their sequence runs under ``-m slow``, and so
does point's kill -9 (the default suite kills a point run in tests/test_reliability.py);
docs/testing.md has the measured costs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

import imageio.v2 as imageio
import jax
import numpy as np
import pytest
from test_reliability import TRAIN, checkpoints, damage, one_warning_line, rows, wait_for_checkpoint

import goalax
from goalax import envs
from goalax.cli import main
from goalax.training.loop import build, init_state
from goalax.training.run import load_config, restore_state

#: Not compared between a resumed and an uninterrupted run: they measure time.
TIMING = ("wall_time_s", "sps")


@dataclass(frozen=True)
class Task:
    """One family's task and the tiny run every step of its lifecycle shares."""

    env: str
    flags: tuple[str, ...]
    eval_every: int
    first: int  # the first leg's budget (an evaluation point)
    full: int  # the uninterrupted run's budget

    def train_argv(self, budget: int, run_dir: str) -> list[str]:
        return [
            "train", "crl", "--env", self.env, *self.flags, "--eval-every", str(self.eval_every),
            "--total-env-steps", str(budget), "--run-dir", run_dir,
        ]  # fmt: skip


#: tests/test_reliability.py's flags: 8 envs x 10 steps, 3 prefill iterations.
POINT = Task("point", tuple(TRAIN[TRAIN.index("--num-envs") :]), 400, 800, 1200)
TINY = (
    "--num-envs", "4", "--unroll-length", "5", "--episode-length", "10", "--batch-size", "16",
    "--buffer-size", "80", "--prefill-steps", "5", "--utd-ratio", "0.05", "--num-eval-envs", "2",
    "--width", "16", "--actor-width", "16", "--repr-dim", "8", "--quiet",
)  # fmt: skip
MUJOCO_FAMILIES = ("reacher", "simple_u_maze", "ant", "humanoid", "pusher_easy", "arm_reach")
MUJOCO_TASKS = [
    pytest.param(Task(env, TINY, 40, 80, 160), id=env, marks=pytest.mark.slow)
    for env in MUJOCO_FAMILIES
] + [
    # Tasks on goalax's own MJX base: their state holds mjx.Data instead of a brax state.
    pytest.param(
        Task(env, (*TINY, "--backend", "mjx"), 40, 80, 160), id=f"{env}-mjx", marks=pytest.mark.slow
    )
    for env in envs.mjx_base_names()
]
TASKS = [pytest.param(POINT, id="point")] + MUJOCO_TASKS


def comparable(run_dir: str) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows(run_dir)]


def params_equal(a, b) -> None:
    """Bit-equal parameter trees."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def train(task: Task, budget: int, run_dir: str) -> None:
    assert main(task.train_argv(budget, run_dir)) == 0


def resume(run_dir: str, env: str, budget: int) -> None:
    argv = ["train", "crl", "--env", env, "--resume", run_dir, "--total-env-steps", str(budget)]
    assert main(argv) == 0


@dataclass(frozen=True)
class Runs:
    task: Task
    first: str  # trained to task.first
    full: str  # trained to task.full without a stop


@pytest.fixture(scope="module", params=TASKS)
def runs(request, tmp_path_factory) -> Runs:
    task = request.param
    root = tmp_path_factory.mktemp(task.env)
    first, full = str(root / "first"), str(root / "full")
    train(task, task.first, first)
    train(task, task.full, full)
    return Runs(task, first, full)


def copy(run_dir: str, tmp_path) -> str:
    path = str(tmp_path / "copy")
    shutil.copytree(run_dir, path)
    return path


def test_eval_reports_the_latest_checkpoint(runs, capsys):
    """``goalax eval RUN --json``: the first leg's final checkpoint, metrics in range."""
    capsys.readouterr()
    assert main(["eval", runs.first, "--episodes", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["env"] == runs.task.env and report["env_steps"] == runs.task.first
    assert report["episodes"] == 2 and len(report["seeds"]) == 1
    episode_length = int(runs.task.flags[runs.task.flags.index("--episode-length") + 1])
    assert report["episode_length"] == episode_length
    mean = report["mean"]
    for key in ("success", "success_easy", "success_at_end", "time_at_goal"):
        assert 0.0 <= mean[key] <= 1.0, (key, mean)
    assert np.isfinite(mean["dist"]) and mean["dist"] >= 0


def render(run_dir: str, out: str, env: str, monkeypatch, capsys) -> str:
    """``goalax render RUN --out OUT`` with 3 steps of 48x32 frames; its stdout. A MuJoCo task
    renders in a fresh process (the OpenGL platform is fixed when mujoco is first imported)."""
    flags = ["render", run_dir, "--out", out, "--steps", "3", "--width", "48", "--height", "32"]
    if env == "point":  # drawn in 2-D without OpenGL: in-process like every other step
        monkeypatch.setenv("MUJOCO_GL", "egl")  # the CLI sets it process-wide
        capsys.readouterr()
        assert main(flags) == 0
        return capsys.readouterr().out
    process_env = dict(os.environ)
    process_env.pop("MUJOCO_GL", None)
    done = subprocess.run(
        [sys.executable, "-m", "goalax.cli", *flags],
        env=process_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.filterwarnings("ignore:os.fork")  # imageio's reader starts ffmpeg (fork + exec)
def test_render_writes_a_video_of_the_policy(runs, tmp_path, monkeypatch, capsys):
    """``goalax render``: an mp4 of the reset state and each step (fewer if the episode ended),
    frames of the asked size that are not one flat colour, and the count it reports."""
    out = str(tmp_path / "run.mp4")
    said = render(runs.first, out, runs.task.env, monkeypatch, capsys)
    frames = [frame for frame in imageio.get_reader(out)]  # list() trusts its len(): inf
    assert f"({len(frames)} frames)" in said, said
    assert 2 <= len(frames) <= 3 + 1
    assert frames[0].shape == (32, 48, 3) and frames[0].std() > 2


def test_load_gives_a_policy_for_one_observation(runs):
    """``goalax.load``: the checkpoint's step, and ``act`` maps one observation to one bounded
    action, the same every call with the deterministic policy."""
    loaded = goalax.load(runs.first)
    assert loaded.env_steps == runs.task.first
    assert loaded.config.run.env == runs.task.env
    obs = loaded.env.reset(jax.random.PRNGKey(3)).obs
    assert obs.shape == (loaded.env.observation_size,)
    params = loaded.seed_params(0)
    action = np.asarray(loaded.act(params, obs, jax.random.PRNGKey(4)))
    assert action.shape == (loaded.env.action_size,)
    assert np.all(np.isfinite(action)) and np.all(np.abs(action) <= 1.0)
    again = np.asarray(loaded.act(params, obs, jax.random.PRNGKey(5)))
    np.testing.assert_array_equal(action, again)


def test_load_reads_the_policy_artifact_without_the_training_program(runs, tmp_path, monkeypatch):
    """eval, render and load read ``policies/<step>``; a run saved before artifacts existed
    (no ``policies/``) is read from its checkpoint to the same params."""
    from goalax.training import loop

    old_run = copy(runs.first, tmp_path)
    shutil.rmtree(os.path.join(old_run, "policies"))
    from_checkpoint = goalax.load(old_run)
    with monkeypatch.context() as patch:
        patch.setattr(loop, "build", lambda *a: pytest.fail("load built the training program"))
        from_artifact = goalax.load(runs.first)
    assert from_artifact.env_steps == from_checkpoint.env_steps == runs.task.first
    assert from_artifact.config == from_checkpoint.config
    params_equal(from_artifact.params, from_checkpoint.params)


def test_resume_to_a_larger_budget_equals_an_uninterrupted_run(runs, tmp_path):
    """``--resume RUN --total-env-steps FULL`` after the first leg: every row (but timings)
    and the final params are those of a run trained to FULL without a stop."""
    run_dir = copy(runs.first, tmp_path)
    resume(run_dir, runs.task.env, runs.task.full)
    assert comparable(run_dir) == comparable(runs.full)
    assert rows(run_dir)[-1]["env_steps"] == runs.task.full
    params_equal(goalax.load(run_dir).params, goalax.load(runs.full).params)


def test_a_resumed_state_reuses_the_compiled_program(runs):
    """A restored state lowers to the program a fresh one does, so a resume finds the compiled
    chunk of the run it continues in the compilation cache (it compiled it again before)."""
    program = build(load_config(runs.first))
    target = jax.numpy.int32(0)
    fresh = jax.jit(program.chunk).lower(init_state(program), target).as_text()
    restored = jax.jit(program.chunk).lower(restore_state(program, runs.first), target).as_text()
    assert restored == fresh


def test_resume_of_a_finished_run_says_there_is_nothing_to_train(runs, tmp_path, capsys):
    """README's ``--resume RUN`` without a larger budget on a finished run: exit 0, the line
    saying how to continue, the summary of its last evaluation, no row or checkpoint added."""
    run_dir = copy(runs.first, tmp_path)
    before, saved = rows(run_dir), checkpoints(run_dir)
    capsys.readouterr()
    assert main(["train", "crl", "--env", runs.task.env, "--resume", run_dir, "--no-quiet"]) == 0
    out = capsys.readouterr().out
    assert f"already at --total-env-steps {runs.task.first:,}: nothing to train" in out
    assert f"final env_steps {runs.task.first:,}: eval/success" in out
    assert f"run directory: {run_dir}" in out
    assert rows(run_dir) == before and checkpoints(run_dir) == saved


#: point's kill -9 and damaged checkpoint are slow here too: the default suite has
#: tests/test_reliability.py's on point (kill -9 and resume; load, eval and resume past a damaged
#: newest checkpoint, each with its one warning line).
POINT_SLOW = [pytest.param(POINT, id="point", marks=pytest.mark.slow)] + MUJOCO_TASKS


@pytest.mark.parametrize("runs", POINT_SLOW, indirect=True)
def test_kill_9_during_training_then_resume_equals_an_uninterrupted_run(runs, tmp_path):
    """kill -9 of ``goalax train`` once a checkpoint exists; ``--resume`` continues from the
    last checkpoint, and rows and params equal those of a run trained without a stop."""
    task = runs.task
    run_dir = str(tmp_path / "killed")
    argv = task.train_argv(100_000_000, run_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "goalax.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for_checkpoint(proc, run_dir, timeout=600)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -9
    last = checkpoints(run_dir)[-1]
    budget = max(task.full, last + task.eval_every)
    if budget == task.full:
        uninterrupted = runs.full
    else:  # the killed run got past the fixture's budget: train as far without a stop
        uninterrupted = str(tmp_path / "uninterrupted")
        train(task, budget, uninterrupted)
    resume(run_dir, task.env, budget)
    assert comparable(run_dir) == comparable(uninterrupted)
    params_equal(goalax.load(run_dir).params, goalax.load(uninterrupted).params)


@pytest.mark.parametrize("runs", POINT_SLOW, indirect=True)
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(runs, tmp_path, capfd):
    """Truncated files in the newest checkpoint: ``goalax.load``, ``goalax eval`` and
    ``--resume`` each say so in one warning line and use the previous checkpoint; the resumed
    run redoes the lost interval exactly (rows and params of the uninterrupted run)."""
    task = runs.task
    run_dir = copy(runs.full, tmp_path)
    newest, previous = checkpoints(run_dir)[-1], checkpoints(run_dir)[-2]
    assert (newest, previous) == (task.full, task.full - task.eval_every)
    damage(run_dir, newest)
    capfd.readouterr()
    assert goalax.load(run_dir).env_steps == previous
    one_warning_line(capfd, newer=newest, used=previous)
    assert main(["eval", run_dir, "--episodes", "2", "--json"]) == 0
    out, err = capfd.readouterr()
    assert json.loads(out)["env_steps"] == previous
    assert len(err.splitlines()) == 1 and f"using checkpoint {previous}" in err, err
    resume(run_dir, task.env, task.full)
    err = one_warning_line(capfd, newer=newest, used=previous)
    assert f"(kept as {newest}.unreadable)" in err
    assert comparable(run_dir) == comparable(runs.full)
    params_equal(goalax.load(run_dir).params, goalax.load(runs.full).params)


def test_resume_from_a_budget_off_the_evaluation_points_keeps_them(tmp_path):
    """A first leg whose budget is neither an evaluation point nor a whole step of all envs
    (1,003 steps of 8 envs): the resumed run keeps that leg's final row, then evaluates at the
    points of an uninterrupted run (1,200, 1,600), not 197 rounded up to 200 steps later."""
    run_dir = str(tmp_path / "run")
    train(POINT, 1003, run_dir)
    resume(run_dir, "point", 1600)
    assert [r["env_steps"] for r in rows(run_dir)] == [0, 400, 800, 1003, 1200, 1600]


def test_the_default_eval_spacing_is_recorded_and_kept_on_resume(tmp_path):
    """Without ``--eval-every`` the spacing is a tenth of the first budget (80 of 800), written
    to config.json, and a resume to 1,200 keeps it instead of switching to 120."""
    run_dir = str(tmp_path / "run")
    argv = POINT.train_argv(800, run_dir)
    at = argv.index("--eval-every")
    assert main(argv[:at] + argv[at + 2 :]) == 0
    assert load_config(run_dir).run.eval_every == 80
    resume(run_dir, "point", 1200)
    assert [r["env_steps"] for r in rows(run_dir)] == list(range(0, 1201, 80))
    assert load_config(run_dir).run.eval_every == 80
