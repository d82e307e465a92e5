"""Whole-file rewrites that a crash cannot tear: the metrics tables, config.json, a sweep's
manifest, the reference fixtures. Standard library only, so that benchmarks/reference_facts.py
can load this file by path inside the reference's own environment."""

from __future__ import annotations

import json
import os
from typing import Any


def replace_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a durable temporary file beside it: a crash leaves
    the old file or the new one, never neither and never half of one."""
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f".{name}.rewrite")
    try:
        with open(temporary, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def replace_json(path: str, value: Any, indent: int | None = None) -> None:
    """``replace_text`` of ``value`` as JSON with a final newline."""
    replace_text(path, json.dumps(value, indent=indent) + "\n")
