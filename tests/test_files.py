"""goalax.files: whole-file rewrites leave the old file or the new one, and no debris."""

import ast
import json
import os
import sys

import pytest

from goalax import files


def test_replace_json_writes_the_value_with_a_final_newline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    files.replace_json("a.json", {"x": [1, 2]}, indent=2)  # a bare relative name
    assert (tmp_path / "a.json").read_text().endswith("}\n")
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": [1, 2]}
    assert os.listdir(tmp_path) == ["a.json"]


def test_a_failed_rewrite_keeps_the_old_file_and_removes_the_temporary(tmp_path, monkeypatch):
    path = tmp_path / "metrics.csv"
    path.write_text("old\n")

    def crash(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        files.replace_text(str(path), "new\n")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["metrics.csv"]


def test_only_the_standard_library_is_imported():
    """benchmarks/reference_facts.py loads this file by path in the reference's venv."""
    with open(files.__file__) as f:
        tree = ast.parse(f.read())
    names = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}  # fmt: skip
    names |= {node.module.split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module}  # fmt: skip
    assert names <= set(sys.stdlib_module_names) | {"__future__"}, names
