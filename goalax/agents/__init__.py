"""Agents and their registry: name -> (config class, builder)."""

from __future__ import annotations

import importlib
from typing import Any

from goalax.agents.base import Agent, SampleContext
from goalax.errors import closest
from goalax.fields import check_finite

#: name -> (module, config class name). Modules are imported on first use.
_REGISTRY: dict[str, tuple[str, str]] = {
    "crl": ("goalax.agents.crl", "CRLConfig"),
    "cmd": ("goalax.agents.cmd", "CMDConfig"),
    "sac": ("goalax.agents.sac", "SACConfig"),
    "td3": ("goalax.agents.td3", "TD3Config"),
    "ppo": ("goalax.agents.ppo", "PPOConfig"),
    "td_infonce": ("goalax.agents.td_infonce", "TDInfoNCEConfig"),
    "gcsl": ("goalax.agents.gcsl", "GCSLConfig"),
    "gciql": ("goalax.agents.gciql", "GCIQLConfig"),
}


def names() -> list[str]:
    return sorted(_REGISTRY)


def _module(name: str):
    if name not in _REGISTRY:
        raise ValueError(f"unknown agent '{name}'; closest: {closest(name, names())}")
    return importlib.import_module(_REGISTRY[name][0])


def config_class(name: str) -> type:
    """The frozen config dataclass of agent ``name``."""
    return getattr(_module(name), _REGISTRY[name][1])


def make(name: str, config: Any, *, state_dim: int, goal_dim: int, action_dim: int) -> Agent:
    """Build agent ``name`` for a task's sizes; every agent's floats must be finite (checked here,
    once for all agents, before the agent's own range checks)."""
    check_finite(config)
    return _module(name).make(config, state_dim=state_dim, goal_dim=goal_dim, action_dim=action_dim)


__all__ = ["Agent", "SampleContext", "config_class", "make", "names"]
