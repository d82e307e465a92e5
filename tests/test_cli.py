"""Command line: bad input gets one clear line and exit code 2, and nothing is written."""

import json
import subprocess
import sys

import pytest

from goalax.cli import main
from goalax.config import RunConfig, TrainConfig, to_dict

SMALL = ["--num-envs", "4", "--unroll-length", "5", "--buffer-size", "2000", "--prefill-steps", "5"]
SMALL += ["--quiet"]


def saved_run(tmp_path, *, config_text=None, checkpoint=False):
    """A run directory with a config.json (optionally broken) and maybe a damaged checkpoint."""
    run_dir = tmp_path / "old_run"
    run_dir.mkdir()
    if config_text is None:
        config = TrainConfig(run=RunConfig(env="point", num_envs=4, unroll_length=5))
        config_text = json.dumps(to_dict(config))
    (run_dir / "config.json").write_text(config_text)
    if checkpoint:
        (run_dir / "checkpoints" / "100").mkdir(parents=True)
        (run_dir / "checkpoints" / "100" / "garbage").write_text("not a checkpoint")
    return str(run_dir)


CASES = [
    (["train", "crl", "--env", "reachr"], "closest: reacher"),
    (["train", "crl", "--env", "simple_umaze"], "simple_u_maze"),
    (["train", "clr", "--env", "reacher"], "unknown agent 'clr'; closest: crl"),
    (["trian"], "closest: train"),
    (["train", "crl", "--num-envs", "0"], "--num-envs must be a positive integer"),
    (["train", "crl", "--total-env-steps", "-5"], "--total-env-steps"),
    (["train", "crl", "--batch-size", "100000", "--buffer-size", "1000"], "--batch-size"),
    (["train", "crl", "--depth", "3", "--residual"], "--depth must be a multiple of 4"),
    (["train", "crl", "--env", "point", "--backend", "mjx"], "backend"),
    (["train", "crl", "--env", "ant", "--impl", "warp"], "has no backend on goalax's MJX base"),
    (["train", "crl", "--env", "reacher", "--impl", "warp"], "applies to --backend mjx only"),
    (["train", "crl", "--env", "reacher", "--impl", "cuda"], "--impl"),
    (["train", "crl", "--env", "reacher", "--backend", "mjx", "--impl", "warp"], "--impl warp"),
    # Replay settings of an on-policy agent would be ignored: refused (issue 21).
    (["train", "ppo", "--env", "point", "--batch-size", "256"], "--batch-size is not used by ppo"),
    (["train", "ppo", "--env", "point", "--utd-ratio", "0.5"], "--utd-ratio is not used by ppo"),
    (["bench", "--agent", "ppo", "--env", "point", "--buffer-size", "64"], "--buffer-size"),
    (["sweep", "ppo", "--env", "point", "--grid", "prefill-steps=0,5"], "--prefill-steps"),
    (["train", "crl", "--resume", "/nonexistent/run"], "does not exist"),
    (["envs", "extra"], "takes no arguments"),
    (["train", "crl", "--loss", "foo"], "invalid choice 'foo' for argument '--loss'"),
    (["train", "crl", "--num-envs", "abc"], "--num-envs"),
    (["train", "crl", "--no-such-flag", "3"], "Unrecognized options"),
    (["train", "crl", "--num-seeds", "0"], "--num-seeds"),
    (["train", "crl", "--eval-every", "0"], "--eval-every"),
    (["train", "crl", "--utd-ratio", "-1"], "--utd-ratio"),
    (["train", "crl", "--env", "point", "--num-devices", "64"], "--num-devices 64"),
    (["train", "crl", "--discount", "1.5"], "--discount"),
    (["train", "crl", "--critic-lr", "0"], "--critic-lr"),
    (
        ["train", "crl", "--coordinator-address", "localhost:1", "--num-processes", "2"],
        "--process-id",
    ),
    (["train", "crl", "--num-processes", "2", "--process-id", "5"], "--process-id 5"),
    (["bench", "--env", "point", "--iterations", "0"], "--iterations"),
    (["bench", "--agent", "nope"], "unknown agent 'nope'"),
    (["train", "sac", "--relabel-fraction", "2"], "--relabel-fraction"),
    (
        lambda tmp: ["train", "crl", "--resume", saved_run(tmp, config_text="{oops")],
        "not valid JSON",
    ),
    (lambda tmp: ["train", "crl", "--resume", saved_run(tmp, checkpoint=True)], "cannot be read"),
    (
        lambda tmp: ["train", "sac", "--resume", saved_run(tmp)],
        "is a 'crl' run; use goalax train crl",
    ),
]


def snapshot(path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


@pytest.mark.parametrize("argv, fragment", CASES)
def test_bad_input_exits_2_with_one_line(argv, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = argv(tmp_path) if callable(argv) else argv
    before = snapshot(tmp_path)
    if argv[0] == "train" and not any(a == "--resume" for a in argv):
        argv = argv[:2] + SMALL + argv[2:]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert fragment in err
    assert len(err.splitlines()) == 1 and err.startswith("goalax: error:")
    assert snapshot(tmp_path) == before  # nothing written (no runs/ folder, no new files)


def test_unwritable_run_dir_is_refused_before_compiling(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = main(["train", "crl", "--env", "point", "--run-dir", str(blocker / "run"), *SMALL])
    assert code == 2
    assert "not writable" in capsys.readouterr().err


def test_non_empty_run_dir_is_refused(tmp_path, capsys):
    (tmp_path / "old.txt").write_text("x")
    code = main(["train", "crl", "--env", "point", "--run-dir", str(tmp_path), *SMALL])
    assert code == 2
    assert "--resume" in capsys.readouterr().err


def test_envs_table_lists_tasks(capsys):
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    for name in ("reacher", "simple_u_maze", "simple_big_maze", "simple_hardest_maze", "point"):
        assert name in out
    assert "budget" in out
    reacher_row = next(line for line in out.splitlines() if " reacher " in line)
    assert "600,000" in reacher_row  # the default --total-env-steps of `goalax train --env reacher`


def test_console_script_exit_code():
    result = subprocess.run(
        [sys.executable, "-m", "goalax.cli", "train", "crl", "--env", "antt"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "goalax: error: unknown env 'antt'; closest: ant (run 'goalax envs' for the full list)"
    )
