"""The policy artifact: what inference needs from a run, saved beside each checkpoint.

A checkpoint is the whole training state (replay buffer, optimisers, env carries); reading a
policy from it means rebuilding the training program to know its layout. The artifact is small
and self-describing instead: ``policies/<step>/policy.json`` (format version, goalax version,
the run's config, the task's sizes, the env step) and ``policies/<step>/params.msgpack`` (the
agent params of every seed, leaves ``[num_seeds, ...]``, flax's msgpack encoding). Reading it
needs the task and the agent's networks only.

Each save writes a temporary folder and renames it, so a crash leaves the previous artifact and
at worst a ``.tmp-*`` folder that the next save removes.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, NamedTuple

import jax
import numpy as np
from flax import serialization

from goalax.errors import ConfigError

__all__ = [
    "FOLDER",
    "FORMAT_VERSION",
    "ArtifactError",
    "Meta",
    "env_spec",
    "folder",
    "is_artifact",
    "prune",
    "read_meta",
    "read_params",
    "save",
    "steps",
]

#: Bumped whenever the files change meaning; a reader refuses a format it does not know.
FORMAT_VERSION = 1
FOLDER = "policies"
_META = "policy.json"
_PARAMS = "params.msgpack"
_TMP = ".tmp-"


class ArtifactError(Exception):
    """An artifact that cannot be read: damaged, incomplete, or not an artifact."""


class Meta(NamedTuple):
    """``policy.json``: everything about a saved policy except its parameters."""

    config: dict  # the run's TrainConfig as ``goalax.config.to_dict`` wrote it
    spec: dict  # the task's sizes: state_dim, goal_dim, action_dim, episode_length
    env_steps: int
    goalax_version: str


def folder(run_dir: str, step: int) -> str:
    return os.path.join(run_dir, FOLDER, str(step))


def env_spec(env: Any) -> dict:
    """The sizes a policy was trained for; a task that changed since is caught on load."""
    return {
        "state_dim": int(env.state_dim),
        "goal_dim": int(env.goal_dim),
        "action_dim": int(env.action_size),
        "episode_length": int(env.episode_length),
    }


def save(run_dir: str, step: int, config: dict, env: Any, params: Any) -> None:
    """Write the artifact of env step ``step`` (``params`` on the host, leaves
    ``[num_seeds, ...]``), replacing one of the same step."""
    from goalax import __version__

    root = os.path.join(run_dir, FOLDER)
    os.makedirs(root, exist_ok=True)
    tmp = os.path.join(root, f"{_TMP}{step}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        meta = {
            "format_version": FORMAT_VERSION,
            "goalax_version": __version__,
            "env_steps": int(step),
            "spec": env_spec(env),
            "config": config,
        }
        with open(os.path.join(tmp, _META), "w") as f:
            json.dump(meta, f, indent=1)
        with open(os.path.join(tmp, _PARAMS), "wb") as f:
            f.write(serialization.to_bytes(jax.tree.map(np.asarray, params)))
        target = folder(run_dir, step)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def steps(run_dir: str) -> list[int]:
    """Env steps that have an artifact folder, oldest first (temporary folders excluded)."""
    root = os.path.join(run_dir, FOLDER)
    if not os.path.isdir(root):
        return []
    return sorted(int(name) for name in os.listdir(root) if name.isdigit())


def prune(run_dir: str, keep: set[int] | None = None, above: int | None = None) -> None:
    """Remove leftover temporary folders, artifacts whose step is not in ``keep`` (the steps
    that still have a checkpoint), and with ``above`` every artifact newer than that step (a
    resumed run trains those steps again)."""
    root = os.path.join(run_dir, FOLDER)
    if not os.path.isdir(root):
        return
    for name in os.listdir(root):
        stale = name.startswith(_TMP)
        if name.isdigit():
            step = int(name)
            stale = (keep is not None and step not in keep) or (above is not None and step > above)
        if stale:
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def is_artifact(path: str) -> bool:
    """Whether ``path`` is one artifact's folder (e.g. a copied ``policies/<step>``)."""
    return os.path.isfile(os.path.join(path, _META))


def read_meta(path: str) -> Meta:
    """``policy.json`` of the artifact in folder ``path``. A format this goalax does not know is a
    ConfigError (the user needs another goalax); a damaged file is an ArtifactError (fall back to
    another)."""
    path = os.path.join(path, _META)
    try:
        with open(path) as f:
            data = json.load(f)
        version = data["format_version"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ArtifactError(f"{path} cannot be read ({type(err).__name__})") from err
    if version != FORMAT_VERSION:
        raise ConfigError(
            f"{path} is a policy of artifact format {version!r} (written by goalax "
            f"{data.get('goalax_version', '?')}); this goalax reads format {FORMAT_VERSION}: "
            "use that goalax version, or --resume the run with this one to write a new policy"
        )
    try:
        return Meta(data["config"], data["spec"], int(data["env_steps"]), data["goalax_version"])
    except (KeyError, TypeError, ValueError) as err:
        raise ArtifactError(f"{path} is incomplete ({type(err).__name__}: {err})") from err


def read_params(path: str, like: Any) -> Any:
    """The params of the artifact in folder ``path`` in the structure, shapes and dtypes of
    ``like`` (a pytree of arrays or ``jax.ShapeDtypeStruct``); anything else is an
    ArtifactError."""
    path = os.path.join(path, _PARAMS)
    try:
        with open(path, "rb") as f:
            params = serialization.from_bytes(like, f.read())
    except Exception as err:  # msgpack and flax raise assorted types for damaged bytes
        raise ArtifactError(f"{path} cannot be read ({type(err).__name__})") from err
    expected = [(tuple(x.shape), np.dtype(x.dtype)) for x in jax.tree.leaves(like)]
    got = [(np.shape(x), np.asarray(x).dtype) for x in jax.tree.leaves(params)]
    if jax.tree.structure(like) != jax.tree.structure(params) or expected != got:
        raise ArtifactError(f"{path} holds other shapes than the run's agent config describes")
    return params
