"""Checkpoint round trips: every task's training state (CRL and PPO) saved and restored equals
itself leaf by leaf, both as a resume reads it (the whole state) and as ``goalax.load``,
``goalax eval`` and ``goalax render`` read it (params only); random pytrees with ``None`` fields,
zero-size arrays, nested dataclasses and skipped leaves; damaged files told apart from intact
files of another layout, and goalax's own failures told apart from both.

The per-task states have the exact layout of the real training program (``jax.eval_shape`` of
its ``init``: no compilation) filled with distinct random values, which also catches two leaves
of the same shape swapped on the way back. Tracing an env costs up to ~5 s on 2 cores, so the
default suite covers one task of every family (CRL and PPO) and ``-m slow`` the other 24 tasks.
"""

from __future__ import annotations

import os
import shutil

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from hypothesis import HealthCheck, given, settings

from goalax import envs
from goalax.agents.ppo import PPOConfig
from goalax.config import ConfigError, RunConfig, TrainConfig
from goalax.errors import GoalaxBug
from goalax.policy import params_only
from goalax.training import checkpoint
from goalax.training.loop import build, seed_keys

#: One task of every family (the run-lifecycle tests use the same ones).
FAMILIES = ("point", "reacher", "simple_u_maze", "ant", "humanoid", "pusher_easy", "arm_reach")


def tiny_config(env: str, agent: str, backend: str | None = None) -> TrainConfig:
    replay = {} if agent == "ppo" else {"buffer_size": 40, "batch_size": 4, "prefill_steps": 0}
    run = RunConfig(
        env=env,
        backend=backend,
        num_envs=2,
        num_eval_envs=2,
        episode_length=10,
        unroll_length=10,
        total_env_steps=1000,
        **replay,
    )
    if agent == "ppo":
        return TrainConfig(run=run, agent=PPOConfig(num_minibatches=1), agent_name="ppo")
    return TrainConfig(run=run)


def random_like(like, seed: int = 0):
    """A concrete tree of ``like``'s layout (``None`` fields and empty leaves kept) whose every
    element is drawn at random, so no two leaves hold the same values."""
    rng = np.random.default_rng(seed)

    def draw(leaf):
        dtype = np.dtype(leaf.dtype)
        if dtype == np.bool_:
            return jnp.asarray(rng.integers(0, 2, leaf.shape).astype(bool))
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            return jnp.asarray(
                rng.integers(max(info.min, -(2**30)), min(info.max, 2**30), leaf.shape).astype(
                    dtype
                )
            )
        return jnp.asarray(rng.standard_normal(leaf.shape).astype(dtype))

    return jax.tree.map(draw, like)


def assert_same_tree(got, want):
    """Same structure (``None`` fields where they were), same shapes, dtypes and values."""
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for (path, a), b in zip(
        jax.tree_util.tree_flatten_with_path(got)[0], jax.tree.leaves(want), strict=True
    ):
        name = jax.tree_util.keystr(path)
        if b is checkpoint.SKIP:
            assert a is checkpoint.SKIP, name
            continue
        a, b = np.asarray(a), np.asarray(b)
        assert (a.shape, a.dtype) == (b.shape, b.dtype), name
        np.testing.assert_array_equal(a, b, err_msg=name)


def save_one(run_dir: str, step: int, state) -> None:
    mngr = checkpoint.manager(run_dir)
    checkpoint.save(mngr, step, state)
    mngr.close()


def round_trip(env: str, agent: str, tmp_path, backend: str | None = None) -> None:
    config = tiny_config(env, agent, backend)
    like = jax.eval_shape(build(config).init, seed_keys(config))
    state = random_like(like)
    run_dir = str(tmp_path)
    save_one(run_dir, 7, state)
    step, full = checkpoint.restore_run(run_dir, like)  # what --resume reads
    assert step == 7
    assert_same_tree(full, state)
    wanted = params_only(like)  # what goalax.load, eval and render read
    step, partial = checkpoint.restore_run(run_dir, wanted)
    expected = jax.tree.map(lambda w, s: w if w is checkpoint.SKIP else s, wanted, state)
    assert_same_tree(partial, expected)
    assert jax.tree.leaves(partial.seeds.agent.params)  # the params did come back


OTHER_TASKS = tuple(n for n in envs.names() if n not in FAMILIES)


@pytest.mark.parametrize("agent", ["crl", "ppo"])
@pytest.mark.parametrize("env", FAMILIES)
def test_state_round_trip_every_family(env, agent, tmp_path):
    round_trip(env, agent, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["crl", "ppo"])
@pytest.mark.parametrize("env", OTHER_TASKS)
def test_state_round_trip_other_tasks(env, agent, tmp_path):
    round_trip(env, agent, tmp_path)


#: The MJX-base round trip in the default suite: reacher's (the pushers' compile takes minutes).
MJX_BASE_DEFAULT_SUITE = ("reacher",)


@pytest.mark.parametrize("agent", ["crl", pytest.param("ppo", marks=pytest.mark.slow)])
@pytest.mark.parametrize(
    "env",
    [
        pytest.param(n, marks=() if n in MJX_BASE_DEFAULT_SUITE else pytest.mark.slow)
        for n in envs.mjx_base_names()
        if n in FAMILIES
    ],
)
def test_state_round_trip_on_the_mjx_base(env, agent, tmp_path):
    """``mjx.Data`` in the state: zero-size contact arrays and implementation sub-structures
    (a family's task with an MJX-base backend besides its default; tasks on the base by default,
    such as cheetah, are in the round trips above)."""
    round_trip(env, agent, tmp_path, backend="mjx")


def test_the_round_trip_covers_every_registered_task():
    assert set(FAMILIES) | set(OTHER_TASKS) == set(envs.names())
    assert len(envs.names()) == 31


# --- random pytrees ------------------------------------------------------------------------------


@struct.dataclass
class Inner:
    a: object
    b: object


@struct.dataclass
class Outer:
    inner: object
    rest: object
    none: object = None


DTYPES = (np.float32, np.int32, np.uint32, np.bool_)
shapes = st.lists(st.integers(0, 3), min_size=0, max_size=3).map(tuple)
arrays = st.tuples(shapes, st.sampled_from(DTYPES)).map(
    lambda sd: jax.ShapeDtypeStruct(sd[0], sd[1])
)


def trees(leaves):
    """Nested dicts, tuples and two dataclass types, with ``None`` fields anywhere."""
    return st.recursive(
        st.one_of(leaves, st.none()),
        lambda children: st.one_of(
            st.dictionaries(st.sampled_from("xyzuvw"), children, min_size=1, max_size=3),
            st.tuples(children, children),
            st.builds(Inner, children, children),
            st.builds(Outer, st.builds(Inner, children, children), children, st.none()),
        ),
        max_leaves=8,
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(like=trees(arrays), skip_seed=st.integers(0, 2**16), seed=st.integers(0, 2**16))
def test_random_pytrees_round_trip_with_skipped_leaves(like, skip_seed, seed, tmp_path_factory):
    """Any layout of ``None`` fields, empty arrays, nested dataclasses and skipped leaves comes
    back leaf by leaf: the full tree, and a partial restore that skips a random subset."""
    # a state is a container holding at least one array (orbax saves no bare array or empty tree)
    like = {"tree": like, "anchor": jax.ShapeDtypeStruct((2,), np.float32)}
    state = random_like(like, seed)
    run_dir = str(tmp_path_factory.mktemp("tree"))
    save_one(run_dir, 3, state)
    _, full = checkpoint.restore_run(run_dir, like)
    assert_same_tree(full, state)
    rng = np.random.default_rng(skip_seed)
    wanted = jax.tree.map(lambda x: checkpoint.SKIP if rng.random() < 0.5 else x, like)
    _, partial = checkpoint.restore_run(run_dir, wanted)
    expected = jax.tree.map(lambda w, s: w if w is checkpoint.SKIP else s, wanted, state)
    assert_same_tree(partial, expected)


# --- what a failure blames ----------------------------------------------------------------------

LIKE = {
    "params": {
        "w": jax.ShapeDtypeStruct((3, 2), np.float32),
        "act": jax.ShapeDtypeStruct((4, 0), np.float32),
    },
    "buffer": jax.ShapeDtypeStruct((5, 2), np.float32),
    "contact": None,
    "step": jax.ShapeDtypeStruct((), np.int32),
}


@pytest.fixture
def two_steps(tmp_path):
    """A run directory with checkpoints 1 and 2 of ``LIKE``'s layout; returns (dir, states)."""
    run_dir = str(tmp_path / "run")
    states = [random_like(LIKE, seed) for seed in (1, 2)]
    mngr = checkpoint.manager(run_dir)
    for step, state in enumerate(states, start=1):
        checkpoint.save(mngr, step, state)
    mngr.close()
    return run_dir, states


def truncate_data(run_dir: str, step: int) -> None:
    folder = os.path.join(run_dir, "checkpoints", str(step))
    for root, _, names in os.walk(folder):
        if os.path.basename(root) == "d":
            for name in names:
                path = os.path.join(root, name)
                with open(path, "r+b") as f:
                    f.truncate(os.path.getsize(path) // 2)


def test_damaged_newest_falls_back_and_is_called_damaged(two_steps, capfd):
    run_dir, states = two_steps
    truncate_data(run_dir, 2)
    capfd.readouterr()
    step, state = checkpoint.restore_run(run_dir, LIKE)
    assert step == 1
    assert_same_tree(state, states[0])
    err = capfd.readouterr().err
    assert err.splitlines() == [
        f"goalax: warning: checkpoint 2 in {run_dir}/checkpoints cannot be read (ValueError); "
        "using checkpoint 1"
    ]


def test_intact_checkpoints_of_another_layout_are_not_called_damaged(two_steps):
    run_dir, _ = two_steps
    other = dict(LIKE, buffer=jax.ShapeDtypeStruct((10, 2), np.float32))
    with pytest.raises(ConfigError) as info:
        checkpoint.restore_run(run_dir, other)
    message = str(info.value)
    assert "cannot be read" not in message
    assert (
        f"checkpoints 2, 1 in {run_dir}/checkpoints hold another training state than config.json "
        "describes (buffer is float32[5, 2] in the checkpoint but float32[10, 2] for this config"
    ) in message
    missing = dict(LIKE, extra=jax.ShapeDtypeStruct((1,), np.float32))
    with pytest.raises(ConfigError, match="hold another training state .*it has no extra"):
        checkpoint.restore_run(run_dir, missing)


def test_checkpoints_without_metadata_are_damaged(two_steps):
    run_dir, _ = two_steps
    truncate_data(run_dir, 2)
    shutil.rmtree(os.path.join(run_dir, "checkpoints", "1", "default"))  # metadata gone too
    with pytest.raises(ConfigError, match=r"checkpoints 2, 1 in .* cannot be read"):
        checkpoint.restore_run(run_dir, LIKE)


def test_a_failure_in_goalax_code_blames_goalax_not_the_files(two_steps, monkeypatch):
    run_dir, _ = two_steps

    def broken(like, restored):
        raise ValueError("a defect")

    monkeypatch.setattr(checkpoint, "_with_empty", broken)
    with pytest.raises(GoalaxBug, match="checkpoint 2 was read, then goalax failed .*a defect"):
        checkpoint.restore_run(run_dir, LIKE)
    assert sorted(os.listdir(os.path.join(run_dir, "checkpoints"))) == ["1", "2"]


def test_layout_names_follow_orbax_metadata(two_steps):
    run_dir, _ = two_steps
    mngr = checkpoint.manager(run_dir, create=False)
    saved = checkpoint.saved_layout(mngr, 2)
    mngr.close()
    # the empty leaf is not saved; every other array leaf is, under the same name
    assert saved == {k: v for k, v in checkpoint.layout(LIKE).items() if k != "params.act"}
