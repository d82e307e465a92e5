"""Tests of the trajectory ring buffer against a host-side reference of the episode structure.

Every stored row carries its true time step and episode id, so each sampled goal can be checked
against the truth: same env, same episode, strictly later, not overwritten, not past the write
pointer. Static shapes are few (each one recompiles); hypothesis varies the data.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from goalax import buffer

CAPACITY = 16
NUM_ENVS = 3
CHUNK_SIZES = (1, 3, 7, 16)  # 16 == CAPACITY: a whole-ring write in one call

jit_insert = jax.jit(buffer.insert)
jit_sample = jax.jit(
    buffer.sample, static_argnames=("batch_size", "max_episode_length", "strategy")
)
jit_num_future_offsets = jax.jit(buffer.num_future_offsets, static_argnames="max_episode_length")


def episode_stream(episode_lengths: list[list[int]], num_steps: int) -> np.ndarray:
    """Episode id ``[num_steps, num_envs]`` per env from its list of episode lengths.

    Env ``e`` starts at id ``10 * e`` (ids need not start at zero); its last listed episode runs
    on until ``num_steps``, which makes long episodes that the ring only partly holds.
    """
    episode = np.zeros((num_steps, len(episode_lengths)), np.int32)
    for env, lengths in enumerate(episode_lengths):
        ids = np.repeat(np.arange(len(lengths)), lengths)[:num_steps]
        ids = np.concatenate([ids, np.full(num_steps - len(ids), len(lengths) - 1)])
        episode[:, env] = 10 * env + ids
    return episode


def step_data(time: np.ndarray, episode: np.ndarray) -> dict:
    """Buffer rows that record the truth: leaves ``[T, num_envs, ...]``."""
    return {
        "time": jnp.asarray(time, jnp.int32),
        "episode": jnp.asarray(episode, jnp.int32),
        "written": jnp.ones(time.shape, jnp.bool_),
        "obs": jnp.asarray(time, jnp.float32)[..., None] * jnp.ones(2),
    }


def fill(chunks: list[int], episode: np.ndarray, capacity: int = CAPACITY):
    """Inserts the stream in the given chunk sizes; returns the state and the time stream."""
    num_steps, num_envs = episode.shape
    time = np.broadcast_to(np.arange(num_steps)[:, None], (num_steps, num_envs))
    state = buffer.init(step_data(time[0], episode[0]), capacity)
    start = 0
    for size in chunks:
        chunk = slice(start, start + size)
        state = jit_insert(state, step_data(time[chunk], episode[chunk]), episode[chunk])
        start += size
    return state, time


def reference_num_offsets(episode: np.ndarray, env: int, t: int, max_episode_length: int) -> int:
    """Counts offsets d with steps t..t+d in t's episode, written, and d < max_episode_length."""
    n = 1
    while (
        t + n < episode.shape[0]
        and n < max_episode_length
        and episode[t + n, env] == episode[t, env]
    ):
        n += 1
    return n


@settings(max_examples=40, deadline=None)
@given(
    chunks=st.lists(st.sampled_from(CHUNK_SIZES), min_size=1, max_size=10),
    episode_lengths=st.lists(
        st.lists(st.integers(1, 40), min_size=1, max_size=25), min_size=NUM_ENVS, max_size=NUM_ENVS
    ),
    max_episode_length=st.sampled_from((4, 64)),
    strategy=st.sampled_from(("geometric", "uniform", "random_state")),
    seed=st.integers(0, 2**31 - 1),
)
def test_goals_stay_in_episode_and_behind_write_pointer(
    chunks, episode_lengths, max_episode_length, strategy, seed
):
    total = sum(chunks)
    episode = episode_stream(episode_lengths, total)
    state, _ = fill(chunks, episode)
    size = min(total, CAPACITY)
    assert int(state.size) == size
    assert int(state.insert_pos) == total % CAPACITY
    oldest_time = total - size

    batch = jit_sample(
        state,
        jax.random.key(seed),
        batch_size=256,
        max_episode_length=max_episode_length,
        gamma=0.7,
        strategy=strategy,
    )
    now = jax.tree.map(np.asarray, buffer.gather(state, batch.env_idx, batch.row))
    goal = jax.tree.map(np.asarray, buffer.gather(state, batch.goal_env_idx, batch.goal_row))
    row, goal_row, offset = map(np.asarray, (batch.row, batch.goal_row, batch.offset))

    for sampled, rows in ((now, row), (goal, goal_row)):
        assert sampled["written"].all()
        assert ((sampled["time"] >= oldest_time) & (sampled["time"] < total)).all()
        assert (sampled["time"] % CAPACITY == rows).all()
    if strategy == "random_state":
        assert (offset == -1).all()
        return
    assert (np.asarray(batch.goal_env_idx) == np.asarray(batch.env_idx)).all()
    assert (goal["episode"] == now["episode"]).all()
    assert (offset >= 0).all()
    assert (goal["time"] - now["time"] == offset).all()  # goal achieved at t + d + 1 > t
    assert (goal_row == (row + offset) % CAPACITY).all()
    allowed = [
        reference_num_offsets(episode, env, t, max_episode_length)
        for env, t in zip(np.asarray(batch.env_idx), now["time"], strict=True)
    ]
    assert (offset < np.asarray(allowed)).all()


@settings(max_examples=30, deadline=None)
@given(
    chunks=st.lists(st.sampled_from(CHUNK_SIZES), min_size=1, max_size=10),
    episode_lengths=st.lists(
        st.lists(st.integers(1, 40), min_size=1, max_size=25), min_size=NUM_ENVS, max_size=NUM_ENVS
    ),
    max_episode_length=st.sampled_from((4, 64)),
)
def test_num_future_offsets_matches_reference_for_every_filled_row(
    chunks, episode_lengths, max_episode_length
):
    total = sum(chunks)
    episode = episode_stream(episode_lengths, total)
    state, _ = fill(chunks, episode)
    times = np.arange(total - min(total, CAPACITY), total)
    env_idx, t = (a.ravel() for a in np.meshgrid(np.arange(NUM_ENVS), times))
    n = jit_num_future_offsets(
        state, jnp.asarray(env_idx), jnp.asarray(t % CAPACITY), max_episode_length
    )
    expected = [
        reference_num_offsets(episode, e, s, max_episode_length)
        for e, s in zip(env_idx, t, strict=True)
    ]
    np.testing.assert_array_equal(np.asarray(n), expected)


def test_num_future_offsets_hand_worked_after_wraparound():
    # Capacity 5, 7 steps with episodes [0 0 0 1 1 1 1]: times 2..6 survive; row = time % 5.
    # row 2 (t2, ep 0, last of its episode) -> 1; row 3 (t3) -> t3..t6 = 4; row 4 -> 3;
    # row 0 (t5) -> 2; row 1 (t6, newest, behind the write pointer at row 2) -> 1.
    episode = np.array([[0], [0], [0], [1], [1], [1], [1]], np.int32)
    state, _ = fill([3, 4], episode, capacity=5)
    rows = jnp.array([2, 3, 4, 0, 1])
    env_idx = jnp.zeros(5, jnp.int32)
    np.testing.assert_array_equal(jit_num_future_offsets(state, env_idx, rows, 10), [1, 4, 3, 2, 1])
    # A bound of 3 steps caps row 3; a bound of 1 allows only d = 0.
    np.testing.assert_array_equal(jit_num_future_offsets(state, env_idx, rows, 3), [1, 3, 3, 2, 1])
    np.testing.assert_array_equal(jit_num_future_offsets(state, env_idx, rows, 1), [1] * 5)


def long_episode_offsets(strategy: str, gamma: float, truncation: int, num_samples: int):
    """Offsets of samples whose row has all ``truncation`` offsets available (one long episode)."""
    capacity = 128
    episode = np.zeros((capacity, 1), np.int32)
    state, _ = fill([capacity], episode, capacity=capacity)
    sample = jax.jit(
        lambda key: buffer.sample(
            state, key, num_samples, max_episode_length=truncation, gamma=gamma, strategy=strategy
        )
    )(jax.random.key(0))
    row, offset = np.asarray(sample.row), np.asarray(sample.offset)
    assert (offset <= np.minimum(truncation - 1, capacity - 1 - row)).all()
    return offset[row <= capacity - truncation]


def test_geometric_offsets_follow_truncated_geometric():
    gamma, truncation = 0.9, 30
    offset = long_episode_offsets("geometric", gamma, truncation, num_samples=20_000)
    frequency = np.bincount(offset, minlength=truncation) / len(offset)
    expected = gamma ** np.arange(truncation) * (1 - gamma) / (1 - gamma**truncation)
    # ~15k samples: the standard error of each frequency is at most 0.0025.
    assert np.abs(frequency - expected).max() < 0.012
    # The tolerance has power: a discount of 0.85 or an untruncated geometric would fail.
    wrong = 0.85 ** np.arange(truncation) * 0.15 / (1 - 0.85**truncation)
    assert np.abs(wrong - expected).max() > 0.04
    assert len(frequency) == truncation


def test_uniform_offsets_are_uniform():
    truncation = 30
    offset = long_episode_offsets("uniform", 0.9, truncation, num_samples=20_000)
    counts = np.bincount(offset, minlength=truncation)
    assert len(counts) == truncation
    assert stats.chisquare(counts).pvalue > 1e-4


@pytest.mark.parametrize("chunks", [[7, 7, 7, 7, 7, 5], [16, 16, 3, 16, 9]])
def test_rows_uniform_over_filled_rows(chunks):
    # 40 steps in a 64-row ring (partly filled), then 60 steps (wrapped, write pointer at 60 % 64).
    capacity = 64
    total = sum(chunks)
    episode = np.zeros((total, 2), np.int32)
    state, _ = fill(chunks, episode, capacity=capacity)
    sample = jit_sample(
        state, jax.random.key(1), batch_size=20_000, max_episode_length=4, gamma=0.9
    )
    cells = np.asarray(sample.env_idx) * capacity + np.asarray(sample.row)
    counts = np.bincount(cells, minlength=2 * capacity).reshape(2, capacity)
    filled = np.zeros(capacity, bool)
    filled[np.arange(total - min(total, capacity), total) % capacity] = True
    assert counts[:, ~filled].sum() == 0
    assert stats.chisquare(counts[:, filled].ravel()).pvalue > 1e-4


def test_truncated_geometric_is_float_safe():
    truncated_geometric = jax.jit(buffer.truncated_geometric, static_argnames="gamma")
    key = jax.random.key(2)
    n = jnp.full((50_000,), 4000, jnp.int32)
    for gamma in (1.0, 1.0 - 1e-9, 1.0 - 1e-6, 0.99, 0.5, 1e-30):
        offset = np.asarray(truncated_geometric(key, n, gamma=gamma))
        assert ((offset >= 0) & (offset < 4000)).all(), gamma
    # gamma -> 1 is the uniform limit: mean (n - 1) / 2, standard error ~5.
    for gamma in (1.0, 1.0 - 1e-9):
        assert abs(np.asarray(truncated_geometric(key, n, gamma=gamma)).mean() - 1999.5) < 30
    # Small gamma: almost all mass at d = 0; gamma = 0.5: P(0) = 1/2.
    assert (np.asarray(truncated_geometric(key, n, gamma=1e-30)) == 0).all()
    assert abs((np.asarray(truncated_geometric(key, n, gamma=0.5)) == 0).mean() - 0.5) < 0.01
    # A single valid offset is always 0, and a traced gamma gives the same answers.
    ones = jnp.ones((100,), jnp.int32)
    assert (np.asarray(truncated_geometric(key, ones, gamma=0.9)) == 0).all()
    traced = jax.jit(buffer.truncated_geometric)(key, n, jnp.float32(0.5))
    assert (np.asarray(traced) == np.asarray(truncated_geometric(key, n, gamma=0.5))).mean() > 0.99


@settings(max_examples=40, deadline=None)
@given(
    insert_pos=st.integers(0, 7),
    size=st.integers(0, 8),
    num_steps=st.sampled_from((1, 3, 8)),
    seed=st.integers(0, 2**31 - 1),
)
def test_insert_writes_only_its_rows(insert_pos, size, num_steps, seed):
    rng = np.random.default_rng(seed)
    capacity, num_envs = 8, 2
    old = rng.normal(size=(capacity, num_envs, 3)).astype(np.float32)
    old_episode = rng.integers(0, 100, (capacity, num_envs)).astype(np.int32)
    state = buffer.BufferState(
        data={"x": jnp.asarray(old)},
        episode_id=jnp.asarray(old_episode),
        insert_pos=jnp.int32(insert_pos),
        size=jnp.int32(size),
    )
    new = rng.normal(size=(num_steps, num_envs, 3)).astype(np.float32)
    new_episode = rng.integers(0, 100, (num_steps, num_envs)).astype(np.int32)
    state = jit_insert(state, {"x": jnp.asarray(new)}, jnp.asarray(new_episode))

    rows = (insert_pos + np.arange(num_steps)) % capacity
    expected, expected_episode = old.copy(), old_episode.copy()
    expected[rows], expected_episode[rows] = new, new_episode
    np.testing.assert_array_equal(np.asarray(state.data["x"]), expected)
    np.testing.assert_array_equal(np.asarray(state.episode_id), expected_episode)
    assert int(state.insert_pos) == (insert_pos + num_steps) % capacity
    assert int(state.size) == min(size + num_steps, capacity)


def test_jit_and_vmap_over_seeds_match_single_seed():
    num_seeds, capacity, num_steps = 3, 8, 13
    rng = np.random.default_rng(3)
    episode = np.cumsum(rng.random((num_seeds, num_steps, 2)) < 0.3, axis=1).astype(np.int32)
    time = np.broadcast_to(np.arange(num_steps)[None, :, None], episode.shape)
    data = jax.vmap(step_data)(time, episode)
    example = jax.tree.map(lambda leaf: leaf[:, 0], data)

    def train_like(example, data, episode, key):
        state = buffer.init(example, capacity)
        state = buffer.insert(state, jax.tree.map(lambda x: x[:8], data), episode[:8])
        state = buffer.insert(state, jax.tree.map(lambda x: x[8:], data), episode[8:])
        sample = buffer.sample(state, key, 64, max_episode_length=5, gamma=0.9)
        return state, sample

    keys = jax.random.split(jax.random.key(4), num_seeds)
    states, samples = jax.jit(jax.vmap(train_like))(example, data, episode, keys)
    assert states.episode_id.shape == (num_seeds, capacity, 2)
    for seed in range(num_seeds):
        args = jax.tree.map(lambda x, s=seed: x[s], (example, data, episode, keys))
        state, sample = jax.jit(train_like)(*args)
        for batched, single in zip(
            jax.tree.leaves((states, samples)), jax.tree.leaves((state, sample)), strict=True
        ):
            np.testing.assert_array_equal(np.asarray(batched[seed]), np.asarray(single))


def _walk(jaxpr):
    """Yields every equation of a jaxpr, descending into scan/while/pjit/cond bodies."""
    for eqn in jaxpr.eqns:
        yield eqn
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _walk(inner)


def _sample_structure(max_episode_length: int):
    state = buffer.init({"goal": jnp.zeros((2, 3))}, 64)
    closed = jax.make_jaxpr(
        lambda state, key: buffer.sample(
            state, key, 32, max_episode_length=max_episode_length, gamma=0.99
        )
    )(state, jax.random.key(0))
    eqns = list(_walk(closed.jaxpr))
    gathers = sum(eqn.primitive.name == "gather" for eqn in eqns)
    variables = [v for eqn in eqns for v in (*eqn.invars, *eqn.outvars)]
    dims = [d for v in variables for d in getattr(v.aval, "shape", ())]
    loop_lengths = [eqn.params["length"] for eqn in eqns if eqn.primitive.name == "scan"]
    return gathers, max(dims), loop_lengths


def test_sample_cost_does_not_grow_with_episode_length():
    gathers_short, largest_short, loops_short = _sample_structure(1000)
    gathers_long, largest_long, loops_long = _sample_structure(4000)
    assert gathers_short == gathers_long > 0
    # No array is episode-length sized: the largest is the 64-row ring.
    assert largest_short == largest_long == 64
    # The binary search runs ceil(log2(L)) steps: 10 for L = 1000, 12 for L = 4000.
    assert loops_short == [math.ceil(math.log2(1000))]
    assert loops_long == [math.ceil(math.log2(4000))]


def test_invalid_arguments_raise_value_error():
    example = {"x": jnp.zeros((2, 3))}
    with pytest.raises(ValueError, match="capacity"):
        buffer.init(example, 0)
    state = buffer.init(example, 4)
    with pytest.raises(ValueError, match="T=5"):
        buffer.insert(state, {"x": jnp.zeros((5, 2, 3))}, jnp.zeros((5, 2), jnp.int32))
    with pytest.raises(ValueError, match="data leaf"):
        buffer.insert(state, {"x": jnp.zeros((2, 2, 4))}, jnp.zeros((2, 2), jnp.int32))
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="geometric, uniform, random_state"):
        buffer.sample(state, key, 4, max_episode_length=3, gamma=0.9, strategy="future")
    with pytest.raises(ValueError, match="gamma"):
        buffer.sample(state, key, 4, max_episode_length=3, gamma=1.5)
    with pytest.raises(ValueError, match="max_episode_length"):
        buffer.sample(state, key, 4, max_episode_length=0, gamma=0.9)


def test_sampling_an_empty_buffer_does_not_crash():
    state = buffer.init({"x": jnp.zeros((2, 3))}, 4)
    for strategy in ("geometric", "uniform", "random_state"):
        sample = jit_sample(
            state,
            jax.random.key(0),
            batch_size=8,
            max_episode_length=3,
            gamma=0.9,
            strategy=strategy,
        )
        for index in (sample.row, sample.goal_row):
            assert ((np.asarray(index) >= 0) & (np.asarray(index) < 4)).all()
        assert np.isfinite(np.asarray(buffer.gather(state, sample.env_idx, sample.row)["x"])).all()


def test_insert_writes_in_place_without_a_buffer_copy():
    """The predecessor shifted its whole buffer on every insert. Our insert is a scatter: under
    jit with the state donated (as the training loop compiles it) the output aliases the buffer
    and the program needs no temporary the size of the buffer; a shifting insert needs one."""
    state = buffer.init({"x": jnp.zeros((16, 32))}, 5000)
    data, episode_id = {"x": jnp.ones((7, 16, 32))}, jnp.zeros((7, 16), jnp.int32)
    buffer_bytes = state.data["x"].nbytes

    def memory(insert):
        lowered = jax.jit(insert, donate_argnums=0).lower(state, data, episode_id)
        return lowered.compile().memory_analysis()

    ours = memory(buffer.insert)
    assert ours.temp_size_in_bytes < buffer_bytes / 100
    assert ours.alias_size_in_bytes >= buffer_bytes

    def shifting_insert(state, data, episode_id):  # what the test must tell apart
        shifted = jnp.concatenate([state.data["x"][7:], data["x"]])
        return state.replace(data={"x": shifted})

    assert memory(shifting_insert).temp_size_in_bytes >= buffer_bytes
