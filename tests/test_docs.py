"""Docs that are derived from the code stay equal to it."""

import importlib.util
import os

ROOT = os.path.join(os.path.dirname(__file__), "..")


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "scripts", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_the_commands_help(monkeypatch):
    cli_docs = load_script("cli_docs")
    monkeypatch.setenv("COLUMNS", cli_docs.COLUMNS)
    with open(os.path.join(ROOT, "docs", "cli.md")) as f:
        committed = f.read()
    assert committed == cli_docs.page(), "docs/cli.md is stale: run python scripts/cli_docs.py"


def test_every_resumable_flag_is_documented():
    from goalax.config import resumable_flags

    with open(os.path.join(ROOT, "docs", "run_directory.md")) as f:
        text = f.read()
    for flag in resumable_flags().split(", "):
        assert f"`{flag}`" in text, flag
