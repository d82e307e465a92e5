"""goalax: fast self-supervised goal-conditioned RL in JAX.

``goalax.train(config)``, ``goalax.load(run_dir)`` and ``goalax.envs`` are the public entry
points; they are imported lazily so ``import goalax`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["envs", "load", "train"]


def __getattr__(name: str) -> Any:
    if name == "train":
        return importlib.import_module("goalax.training.run").train
    if name == "load":
        return importlib.import_module("goalax.policy").load
    if name == "envs":
        return importlib.import_module("goalax.envs")
    raise AttributeError(f"module 'goalax' has no attribute {name!r}")
