"""Checks that read a config dataclass's fields generically, so a field added to RunConfig or an
agent's config is covered without a line of its own.

Two kinds of bad value get past the per-field checks otherwise: non-finite floats from the command
line (``--critic-lr inf`` passes ``> 0`` and burns a run), and values of the wrong JSON type in a
hand-edited ``config.json`` (``"num_envs": "8"`` fails deep inside training).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any, Literal, Union

from goalax.errors import ConfigError

__all__ = ["check_finite", "check_types", "flag", "float_fields"]


def flag(name: str) -> str:
    """The command-line spelling of a config field, for error messages."""
    return "--" + name.replace("_", "-")


def float_fields(config: Any) -> list[str]:
    """Names of the fields of dataclass ``config`` (instance or class) annotated ``float``."""
    hints = typing.get_type_hints(config if isinstance(config, type) else type(config))
    return [f.name for f in dataclasses.fields(config) if hints.get(f.name) is float]


def check_finite(config: Any) -> None:
    """Raise ConfigError naming the first field of ``config`` holding a NaN or infinite float:
    such a value passes range checks (``inf > 0``) and only shows up as a diverged run."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{flag(field.name)} must be a finite number, got {value}")


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return isinstance(value, str) and value in typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return True


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(arg) for arg in typing.get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    return names.get(hint, "null" if hint is type(None) else str(hint))


def check_types(cls: type, data: Any, where: str) -> dict:
    """``data`` (a JSON object read for dataclass ``cls``) checked against ``cls``'s annotations,
    with integers in float fields made floats; ConfigError names ``where`` (e.g.
    ``runs/x/config.json: run``), the field and the type it needs.

    Integers are strict (``8.0``, ``"8"`` and ``true`` are refused): a float size fails deep
    inside JAX, and JSON keeps the distinction, so the file was edited by hand.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a JSON object, got {json.dumps(data)}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{where} has unknown field(s) {', '.join(unknown)} that {cls.__name__} does not "
            "have; remove them (was the file edited, or written by another goalax version?)"
        )
    checked = {}
    for name, value in data.items():
        hint = hints[name]
        if not _matches(value, hint):
            raise ConfigError(
                f"{where}.{name} must be {_describe(hint)}, got {json.dumps(value)}; correct "
                "the file"
            )
        checked[name] = _as_float(value, f"{where}.{name}") if hint is float else value
    return checked


def _as_float(value: Any, where: str) -> Any:
    """An integer read for a float field, as a float (``None`` and floats unchanged)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return value
    try:
        return float(value)
    except OverflowError:
        raise ConfigError(f"{where} is too large for a float ({value}); correct the file") from None
