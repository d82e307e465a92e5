"""The policy artifact (``goalax.artifact``) read by ``goalax.load``, ``eval`` and ``render``:
every agent's params round-trip without the training program; a format this goalax does not
know, a task that changed, and damaged files each give one clear line or a fallback."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import jax
import numpy as np
import pytest

import goalax
from goalax import agents, artifact
from goalax.cli import main
from goalax.config import ConfigError, RunConfig, TrainConfig, resolve_defaults, to_dict
from goalax.training import loop

#: Small networks: these tests build and initialise agents, never train them.
SMALL = {"width": 8, "actor_width": 8}


def small_config(name: str, run_dir: str, num_seeds: int = 2) -> TrainConfig:
    config_class = agents.config_class(name)
    fields = {f.name for f in dataclasses.fields(config_class)}
    agent = config_class(**{k: v for k, v in SMALL.items() if k in fields})
    run = RunConfig(env="point", episode_length=20, num_seeds=num_seeds, run_dir=run_dir)
    return resolve_defaults(TrainConfig(run=run, agent=agent, agent_name=name))


def write(config: TrainConfig, step: int, seed: int = 0):
    """Save the artifact of freshly initialised params (distinct per seed) and return them."""
    env = loop.make_env(config)
    agent = loop.make_agent(config, env)
    keys = jax.random.split(jax.random.PRNGKey(seed), config.run.num_seeds)
    params = jax.device_get(jax.vmap(agent.init)(keys).params)
    artifact.save(config.run.run_dir, step, to_dict(config), env, params)
    return params


def leaves_equal(a, b) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture
def no_training_program(monkeypatch):
    monkeypatch.setattr(loop, "build", lambda *a: pytest.fail("load built the training program"))


@pytest.mark.parametrize("name", agents.names())
def test_every_agents_policy_round_trips_without_the_training_program(
    name, tmp_path, no_training_program
):
    config = small_config(name, str(tmp_path))
    params = write(config, 1000)
    loaded = goalax.load(str(tmp_path))
    assert loaded.env_steps == 1000 and loaded.config == config
    leaves_equal(loaded.params, params)
    obs = loaded.env.reset(jax.random.PRNGKey(1)).obs
    for seed in range(config.run.num_seeds):
        action = np.asarray(loaded.act(loaded.seed_params(seed), obs, jax.random.PRNGKey(2)))
        assert action.shape == (loaded.env.action_size,) and np.all(np.abs(action) <= 1)


def test_the_newest_artifact_is_read_and_old_ones_pruned(tmp_path):
    config = small_config("crl", str(tmp_path), num_seeds=1)
    write(config, 500, seed=1)
    newest = write(config, 1500, seed=2)
    write(config, 1000, seed=3)
    os.makedirs(tmp_path / "policies" / ".tmp-2000-1")  # a save killed mid-write
    assert artifact.steps(str(tmp_path)) == [500, 1000, 1500]
    leaves_equal(goalax.load(str(tmp_path)).params, newest)
    artifact.prune(str(tmp_path), keep={1000, 1500})
    assert sorted(os.listdir(tmp_path / "policies")) == ["1000", "1500"]
    artifact.prune(str(tmp_path), above=1000)
    assert artifact.steps(str(tmp_path)) == [1000]


def test_a_copied_artifact_folder_is_a_policy_on_its_own(tmp_path, capsys, no_training_program):
    """Sharing a policy means copying ``policies/<step>``: load and eval read it alone."""
    config = small_config("crl", str(tmp_path / "run"), num_seeds=1)
    params = write(config, 1000)
    shared = str(tmp_path / "shared")
    shutil.copytree(artifact.folder(config.run.run_dir, 1000), shared)
    leaves_equal(goalax.load(shared).params, params)
    assert main(["eval", shared, "--episodes", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["env_steps"] == 1000
    with open(os.path.join(shared, "params.msgpack"), "wb") as f:
        f.write(b"torn")
    assert main(["eval", shared]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "params.msgpack cannot be read" in err


def edit_meta(run_dir: str, step: int, edit) -> None:
    path = os.path.join(artifact.folder(run_dir, step), "policy.json")
    with open(path) as f:
        meta = json.load(f)
    edit(meta)
    with open(path, "w") as f:
        json.dump(meta, f)


def test_another_format_version_is_one_clear_line(tmp_path, capsys):
    config = small_config("crl", str(tmp_path), num_seeds=1)
    write(config, 1000)
    edit_meta(str(tmp_path), 1000, lambda meta: meta.update(format_version=99))
    with pytest.raises(ConfigError, match="artifact format 99 .* reads format 1"):
        goalax.load(str(tmp_path))
    capsys.readouterr()
    assert main(["eval", str(tmp_path), "--episodes", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("goalax: error:") and "format 99" in err


def test_a_task_that_changed_since_training_is_named(tmp_path):
    config = small_config("crl", str(tmp_path), num_seeds=1)
    write(config, 1000)
    edit_meta(str(tmp_path), 1000, lambda meta: meta["spec"].update(state_dim=7))
    with pytest.raises(ConfigError, match="state_dim 7 -> 4"):
        goalax.load(str(tmp_path))


@pytest.mark.parametrize("damage", ["params", "meta", "shapes"])
def test_a_damaged_newest_artifact_falls_back_with_one_warning(damage, tmp_path, capsys):
    config = small_config("crl", str(tmp_path), num_seeds=1)
    older = write(config, 1000, seed=1)
    write(config, 2000, seed=2)
    folder = artifact.folder(str(tmp_path), 2000)
    if damage == "params":
        with open(os.path.join(folder, "params.msgpack"), "r+b") as f:
            f.truncate(100)
    elif damage == "meta":
        with open(os.path.join(folder, "policy.json"), "w") as f:
            f.write('{"format_version": 1, "conf')
    else:  # params written for other network sizes than the config describes
        edit_meta(str(tmp_path), 2000, lambda meta: meta["config"]["agent"].update(width=16))
    capsys.readouterr()
    loaded = goalax.load(str(tmp_path))
    assert loaded.env_steps == 1000
    leaves_equal(loaded.params, older)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("goalax: warning:")
    assert "env step 1000" in err
