"""Command line: bad input gets one clear line and exit code 2, and nothing is written."""

import os
import subprocess
import sys

import pytest

from goalax.cli import main

SMALL = ["--num-envs", "4", "--unroll-length", "5", "--buffer-size", "2000", "--quiet"]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["train", "crl", "--env", "reachr"], "closest: reacher"),
        (["train", "crl", "--env", "simple_umaze"], "simple_u_maze"),
        (["train", "clr", "--env", "reacher"], "unknown agent 'clr'; closest: crl"),
        (["trian"], "closest: train"),
        (["train", "crl", "--num-envs", "0"], "--num-envs must be a positive integer"),
        (["train", "crl", "--total-env-steps", "-5"], "--total-env-steps"),
        (["train", "crl", "--batch-size", "100000", "--buffer-size", "1000"], "--batch-size"),
        (["train", "crl", "--depth", "3", "--residual"], "--depth must be a multiple of 4"),
        (["train", "crl", "--env", "point", "--backend", "mjx"], "backend"),
        (["train", "crl", "--resume", "/nonexistent/run"], "does not exist"),
        (["envs", "extra"], "takes no arguments"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(argv[:2] + SMALL + argv[2:] if argv[0] == "train" else argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert fragment in err
    assert len(err.splitlines()) == 1 and err.startswith("goalax: error:")
    assert os.listdir(tmp_path) == []  # nothing written (no runs/ folder)


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


def test_console_script_exit_code():
    result = subprocess.run(
        [sys.executable, "-m", "goalax.cli", "train", "crl", "--env", "antt"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "closest: ant" in result.stderr or "closest:" in result.stderr
