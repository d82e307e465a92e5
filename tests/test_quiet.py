"""Known dependency notices are silenced where they arise, and nothing else is.

mujoco.mjx's "Failed to import warp" lines, brax's "not actively being maintained" warning,
MuJoCo's "settotalmass is deprecated" and absl's "Waiting for previous save" never reach a user;
goalax's own warnings and other warnings still do.
"""

import glob
import os
import shutil
import subprocess
import sys
import time
import warnings

import mujoco
import numpy as np
import pytest
from brax.io import mjcf

import goalax
from goalax.envs import cheetah, notices
from goalax.training import checkpoint

NOTICES = ("warp", "not actively being maintained", "settotalmass", "absl", "Waiting for")
TRAIN = [
    sys.executable, "-m", "goalax.cli", "train", "crl", "--env", "point",
    "--num-envs", "8", "--unroll-length", "10", "--episode-length", "20",
    "--total-env-steps", "1000", "--eval-every", "200", "--batch-size", "32",
    "--buffer-size", "320", "--prefill-steps", "10", "--utd-ratio", "0.05",
    "--num-eval-envs", "4", "--width", "32", "--actor-width", "32", "--repr-dim", "16", "--quiet",
]  # fmt: skip


def fresh_process(args, cwd):
    """``args`` in a new Python process (dependencies imported for the first time), importing
    the goalax under test."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(goalax.__file__))
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_making_physics_tasks_prints_nothing(tmp_path):
    code = (
        "import goalax; goalax.envs.make('humanoid'); goalax.envs.make('cheetah'); "
        "goalax.envs.make('ant', backend='mjx')"
    )
    done = fresh_process([sys.executable, "-c", code], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == "" and done.stderr == "", (done.stdout, done.stderr)
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()  # MuJoCo logs its warnings there too


def test_other_mjx_output_is_printed_again():
    text = "Failed to import warp: No module\nsomething else\nFailed to import mujoco_warp: x\n"
    assert notices.without_mjx_notices(text) == "something else\n"


def test_only_the_brax_notice_is_filtered_and_only_while_loading(monkeypatch):
    def load_model(model):  # stands in for brax's: the notice plus another warning
        warnings.warn(
            "Brax System, piplines and environments are not actively being maintained. ...",
            UserWarning,
            stacklevel=1,
        )
        warnings.warn("a real problem with the model", UserWarning, stacklevel=1)
        return "system"

    monkeypatch.setattr(mjcf, "load_model", load_model)
    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert notices.load_model(None) == "system"
        outside = "Brax System, piplines and environments are not actively being maintained"
        warnings.warn(outside, stacklevel=1)
    assert [str(w.message) for w in caught] == [
        "a real problem with the model",
        "Brax System, piplines and environments are not actively being maintained",
    ]
    assert warnings.filters == filters


def test_cheetah_equals_the_settotalmass_compile(tmp_path, monkeypatch):
    """goalax's half_cheetah.xml writes the reference's ``settotalmass="14"`` scale into its
    density and its target's mass instead of the deprecated attribute: the same model compiles."""
    monkeypatch.chdir(tmp_path)  # MuJoCo writes MUJOCO_LOG.TXT for the deprecated attribute
    with open(cheetah.ASSET) as f:
        xml = f.read()
    assert "settotalmass" not in xml.split("-->", 1)[1]
    unscaled = (
        xml.replace('density="631.0935071511994"', 'density="1000"')
        .replace('mass="0.6310935071511994"', 'mass="1"')
        .replace("<compiler ", '<compiler settotalmass="14" ')
    )
    assert unscaled.count('density="1000"') == unscaled.count('mass="1"') == 1
    old = mujoco.MjModel.from_xml_string(mjcf.fuse_bodies(unscaled))  # warns: deprecated
    new, _ = cheetah.cheetah_system("mjx")
    assert old.body_mass.sum() == pytest.approx(14.0)
    np.testing.assert_allclose(new.mj_model.body_mass, old.body_mass, rtol=1e-12)
    np.testing.assert_allclose(new.mj_model.body_inertia, old.body_inertia, rtol=1e-12)
    np.testing.assert_allclose(new.mj_model.dof_invweight0, old.dof_invweight0, rtol=1e-12)
    assert new.mj_model.stat.meaninertia == pytest.approx(old.stat.meaninertia, rel=1e-12)
    assert new.mj_model.stat.meanmass == pytest.approx(old.stat.meanmass, rel=1e-12)


def test_checkpoint_saves_log_no_absl_wait_line(tmp_path, caplog):
    # orbax logs the line at a save when waiting for the previous one took over a second; with
    # asynchronous saves that wait is save()'s own wait for durability, so slow saves show it
    state = {"x": np.random.default_rng(0).random(64_000_000, dtype=np.float32)}  # 256 MB
    mngr = checkpoint.manager(str(tmp_path))
    durations = []
    for step in range(3):
        start = time.perf_counter()
        checkpoint.save(mngr, step, state)
        durations.append(time.perf_counter() - start)
    mngr.close()
    assert not [r for r in caplog.records if "Waiting for previous save" in r.getMessage()]
    if max(durations[:-1]) < 1.5:
        pytest.skip(f"saves took {max(durations):.2f}s at most: too fast to show the notice")


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("quiet") / "run"
    done = fresh_process(TRAIN + ["--run-dir", str(run_dir)], cwd=run_dir.parent)
    return str(run_dir), done


def test_training_from_the_cli_prints_no_dependency_notice(cli_run):
    _, done = cli_run
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == "", done.stdout  # --quiet
    for notice in NOTICES:
        assert notice not in done.stderr, done.stderr


def test_goalax_warnings_still_show(cli_run):
    run_dir, _ = cli_run
    steps = sorted(int(p) for p in os.listdir(os.path.join(run_dir, "checkpoints")))
    newest = os.path.join(run_dir, "checkpoints", str(steps[-1]))
    for path in glob.glob(os.path.join(newest, "**", "d", "*"), recursive=True):
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
    shutil.rmtree(os.path.join(run_dir, "policies"))  # eval reads the checkpoints, as of old
    cli = [sys.executable, "-m", "goalax.cli"]
    done = fresh_process([*cli, "eval", run_dir, "--episodes", "2"], cwd=run_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.splitlines() == [
        f"goalax: warning: checkpoint {steps[-1]} in {run_dir}/checkpoints cannot be read "
        f"(ValueError); using checkpoint {steps[-2]}"
    ]
