"""goalax: fast self-supervised goal-conditioned RL in JAX.

``goalax.train(config)``, ``goalax.load(run_dir)`` and ``goalax.envs`` are the public entry
points; they are imported lazily so ``import goalax`` stays cheap.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__version__ = "0.1.0"
__all__ = ["envs", "load", "train"]

#: XLA's CPU fusion emitters recompute shared subexpressions, which is exponential in the depth of
#: a kinematic chain: MJX's forward kinematics of the 7-joint Panda arm takes ~800 ms per step
#: for 16 envs with them and ~2 ms with the previous emitters. The flag only concerns the CPU
#: backend (GPU and TPU ignore it); XLA reads XLA_FLAGS when jax first starts a backend, so it
#: must be set at import. A value the user set in XLA_FLAGS wins.
CPU_XLA_FLAG = "--xla_cpu_use_fusion_emitters=false"


def _set_xla_flags() -> None:
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_use_fusion_emitters" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {CPU_XLA_FLAG}".strip()


_set_xla_flags()


def __getattr__(name: str) -> Any:
    if name == "train":
        return importlib.import_module("goalax.training.run").train
    if name == "load":
        return importlib.import_module("goalax.policy").load
    if name == "envs":
        return importlib.import_module("goalax.envs")
    raise AttributeError(f"module 'goalax' has no attribute {name!r}")
