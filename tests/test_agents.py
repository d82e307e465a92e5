"""SAC, TD3 and PPO: update math against hand values and slow references, HER relabelling
against the true episode structure, end-to-end smoke runs and one learning run on ``point``."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tyro
from hypothesis import given, settings
from hypothesis import strategies as st
from test_training import small_config

import goalax
from goalax import agents, relabel
from goalax import buffer as replay
from goalax.agents import critics, ppo, sac, td3
from goalax.config import REPLAY_FIELDS, ConfigError, RunConfig, TrainConfig
from goalax.envs.base import goal_metrics
from goalax.networks import gaussian_log_prob, sample_tanh_gaussian

SIZES = dict(state_dim=4, goal_dim=2, action_dim=2)


# --- shared off-policy math --------------------------------------------------------------------


def test_td_target_hand_values():
    reward = jnp.array([1.0, 0.0, 1.0])
    terminated = jnp.array([0.0, 0.0, 1.0])
    next_value = jnp.array([2.0, -1.0, 5.0])
    y = critics.td_target(reward, terminated, next_value, discount=0.9)
    # 1 + 0.9 * 2 = 2.8; 0 + 0.9 * -1 = -0.9; terminated: the reward only, 1.
    np.testing.assert_allclose(y, [2.8, -0.9, 1.0], rtol=1e-6)


def test_twin_q_loss_hand_value():
    q = jnp.array([[1.0, 2.0], [0.0, 4.0]])  # [2 critics, 2 samples]
    target = jnp.array([1.0, 3.0])
    # critic 1: (0 + 1) / 2 = 0.5; critic 2: (1 + 1) / 2 = 1; half their sum: 0.75
    assert float(critics.twin_q_loss(q, target)) == pytest.approx(0.75)


def test_polyak_hand_values():
    target = {"w": jnp.array([0.0, 10.0]), "b": jnp.array(4.0)}
    online = {"w": jnp.array([1.0, 0.0]), "b": jnp.array(0.0)}
    moved = critics.polyak(target, online, tau=0.25)
    np.testing.assert_allclose(moved["w"], [0.25, 7.5])
    np.testing.assert_allclose(moved["b"], 3.0)
    unchanged = critics.polyak(target, online, tau=0.0)
    np.testing.assert_allclose(unchanged["w"], target["w"])


def test_td3_target_smoothing_is_clipped():
    action = jnp.array([[0.95, -0.95, 0.0, 0.3]] * 2000)
    smoothed = td3.smoothed_target_action(
        action, jax.random.PRNGKey(0), policy_noise=2.0, noise_clip=0.5
    )
    assert float(jnp.max(jnp.abs(smoothed))) <= 1.0
    assert float(jnp.max(jnp.abs(smoothed - action))) <= 0.5 + 1e-6
    # With noise 4x the clip most draws are clipped: the extremes are hit, nothing beyond.
    np.testing.assert_allclose(jnp.max(smoothed[:, 2]), 0.5, atol=1e-6)
    np.testing.assert_allclose(jnp.min(smoothed[:, 3]), -0.2, atol=1e-6)
    np.testing.assert_allclose(jnp.max(smoothed[:, 0]), 1.0)  # 0.95 + 0.5 clipped to the box
    no_noise = td3.smoothed_target_action(action, jax.random.PRNGKey(1), 0.0, 0.5)
    np.testing.assert_allclose(no_noise, action)


# --- PPO math ----------------------------------------------------------------------------------


def slow_gae(reward, value, next_value, terminated, truncated, valid, gamma, lam):
    """Per-env, per-step Python reference: walk each env backwards, reset at episode ends."""
    num_steps, num_envs = reward.shape
    advantages = np.zeros((num_steps, num_envs))
    for e in range(num_envs):
        running = 0.0
        for t in reversed(range(num_steps)):
            if not valid[t, e]:
                running = 0.0
                continue
            # truncated or ongoing: bootstrap from the true next state
            bootstrap = 0.0 if terminated[t, e] else gamma * next_value[t, e]
            target = reward[t, e] + bootstrap
            delta = target - value[t, e]
            if terminated[t, e] or truncated[t, e]:
                running = delta  # the next row belongs to another episode
            else:
                running = delta + gamma * lam * running
            advantages[t, e] = running
    return advantages


def test_gae_hand_example():
    # One env, 3 steps; step 1 is truncated (bootstrap 10, trace cut), step 2 terminates.
    reward = jnp.array([[1.0], [0.0], [2.0]])
    value = jnp.array([[0.5], [1.0], [3.0]])
    next_value = jnp.array([[1.0], [10.0], [7.0]])
    terminated = jnp.array([[0.0], [0.0], [1.0]])
    truncated = jnp.array([[0.0], [1.0], [0.0]])
    valid = jnp.ones((3, 1))
    adv = ppo.gae(reward, value, next_value, terminated, truncated, valid, 0.5, 0.8)
    # A2 = 2 - 3 = -1 (no bootstrap); A1 = 0 + 0.5 * 10 - 1 = 4 (trace cut);
    # A0 = (1 + 0.5 * 1 - 0.5) + 0.5 * 0.8 * 4 = 1 + 1.6 = 2.6
    np.testing.assert_allclose(adv[:, 0], [2.6, 4.0, -1.0], rtol=1e-6)


def test_gae_matches_slow_reference_with_resets_and_budget_mask():
    rng = np.random.default_rng(0)
    num_steps, num_envs = 9, 4
    reward = rng.normal(size=(num_steps, num_envs))
    value = rng.normal(size=(num_steps, num_envs))
    next_value = rng.normal(size=(num_steps, num_envs))
    ends = rng.random((num_steps, num_envs))
    terminated = (ends < 0.15).astype(np.float32)
    truncated = ((ends >= 0.15) & (ends < 0.3)).astype(np.float32)
    budget = 30  # step-major, env-minor like the loop: a suffix of each env's steps is invalid
    order = np.arange(num_steps)[:, None] * num_envs + np.arange(num_envs)[None]
    valid = (order < budget).astype(np.float32)
    assert terminated.any() and truncated.any() and not valid.all()
    args = (reward, value, next_value, terminated, truncated, valid)
    adv = ppo.gae(*(jnp.asarray(a, jnp.float32) for a in args), 0.97, 0.9)
    np.testing.assert_allclose(adv, slow_gae(*args, 0.97, 0.9), rtol=1e-5, atol=1e-5)
    assert np.all(np.asarray(adv)[valid == 0] == 0)


def test_clipped_surrogate_hand_example():
    log_ratio = jnp.log(jnp.array([1.5, 0.5, 1.1, 0.7, 2.0]))
    advantage = jnp.array([2.0, 2.0, -1.0, -1.0, 1.0])
    weight = jnp.array([1.0, 1.0, 1.0, 1.0, 0.0])
    loss = ppo.clipped_surrogate_loss(log_ratio, advantage, clip_epsilon=0.2, weight=weight)
    # min(ρA, clip(ρ)A): 1.2*2 = 2.4 (clipped); 0.5*2 = 1.0 (unclipped below);
    # -1.1 (inside); 0.8*-1 = -0.8 vs 0.7*-1 = -0.7 -> -0.8 (pessimistic). Weighted mean of
    # the first four: (2.4 + 1.0 - 1.1 - 0.8) / 4 = 0.375; the loss is its negative.
    assert float(loss) == pytest.approx(-0.375, rel=1e-6)


def test_log_prob_of_stored_action_matches_the_sampler_up_to_the_jacobian():
    key = jax.random.PRNGKey(0)
    mean = jax.random.normal(key, (64, 3))
    log_std = jnp.full((64, 3), -0.5)
    action, sampled_log_prob = sample_tanh_gaussian(mean, log_std, jax.random.PRNGKey(1))
    jacobian = jnp.sum(jnp.log1p(-jnp.square(action)), axis=-1)
    recovered = gaussian_log_prob(mean, log_std, action) - jacobian
    np.testing.assert_allclose(recovered, sampled_log_prob, rtol=1e-3, atol=1e-3)


def test_normaliser_merges_rollouts_exactly():
    rng = np.random.default_rng(1)
    first, second = rng.normal(2.0, 3.0, (50, 3)), rng.normal(-1.0, 0.5, (40, 3))
    w1, w2 = (rng.random(50) < 0.8).astype(np.float32), np.ones(40, np.float32)
    norm = ppo.ObsNormaliser(jnp.zeros(3), jnp.ones(3), jnp.zeros((), jnp.int32))
    norm = ppo.update_normaliser(norm, jnp.asarray(first, jnp.float32), jnp.asarray(w1))
    norm = ppo.update_normaliser(norm, jnp.asarray(second, jnp.float32), jnp.asarray(w2))
    kept = np.concatenate([first[w1 > 0], second])
    assert int(norm.count) == len(kept)
    np.testing.assert_allclose(norm.mean, kept.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(norm.var, kept.var(0), rtol=1e-4)
    empty = ppo.update_normaliser(norm, jnp.ones((5, 3)), jnp.zeros(5))
    np.testing.assert_allclose(empty.mean, norm.mean)
    np.testing.assert_allclose(empty.var, norm.var, rtol=1e-6)


# --- configs, registry, CLI flags ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, overrides, flag",
    [
        ("sac", {"relabel_fraction": 1.5}, "--relabel-fraction must be in \\[0, 1\\]"),
        ("sac", {"discount": 1.0}, "--discount"),
        ("sac", {"tau": 0.0}, "--tau"),
        ("sac", {"alpha_lr": 0.0}, "--alpha-lr"),
        ("sac", {"depth": 3, "residual": True}, "--depth must be a multiple of 4"),
        ("td3", {"policy_delay": 0}, "--policy-delay"),
        ("td3", {"noise_clip": -1.0}, "--noise-clip"),
        ("td3", {"actor_width": 0}, "--actor-width"),
        ("ppo", {"num_minibatches": 0}, "--num-minibatches"),
        ("ppo", {"gae_lambda": 1.5}, "--gae-lambda"),
        ("ppo", {"clip_epsilon": 0.0}, "--clip-epsilon"),
    ],
)
def test_bad_configs_name_the_flag(name, overrides, flag):
    config = agents.config_class(name)(**overrides)
    with pytest.raises(ValueError, match=flag):
        agents.make(name, config, **SIZES)


def test_registry_and_cli_flags():
    assert {"sac", "td3", "ppo"} <= set(agents.names())
    parsed = tyro.cli(
        agents.config_class("td3"),
        args=["--her", "--relabel-fraction", "0.5", "--goal-strategy", "geometric"],
    )
    assert parsed.her and parsed.relabel_fraction == 0.5 and parsed.goal_strategy == "geometric"
    assert sac.SACConfig().discount == 0.99 and not sac.SACConfig().her
    sac_agent = agents.make("sac", sac.SACConfig(), **SIZES)
    assert sac_agent.sample is not None and sac_agent.fields == critics.HER_FIELDS
    ppo_agent = agents.make("ppo", ppo.PPOConfig(num_epochs=3, num_minibatches=5), **SIZES)
    assert ppo_agent.sample is None and ppo_agent.grad_steps_per_update == 15  # on-policy


def synthetic_rollout(seed=0, num_steps=6, num_envs=4, budget=20):
    """A ``[T, E]`` rollout as the loop passes it, with a terminated and a truncated step.

    Built with numpy: eager ``jax.random`` calls would each compile a small program.
    """
    rng = np.random.default_rng(seed)
    order = np.arange(num_steps)[:, None] * num_envs + np.arange(num_envs)[None]
    data = {
        "state_obs": rng.normal(size=(num_steps, num_envs, 4)),
        "next_state_obs": rng.normal(size=(num_steps, num_envs, 4)),
        "goal": rng.normal(size=(num_steps, num_envs, 2)),
        "action": rng.uniform(-1, 1, size=(num_steps, num_envs, 2)),
        "reward": order % 3 == 0,
        "terminated": order == 5,
        "truncated": order == 10,
        "valid": order < budget,
    }
    return {k: jnp.asarray(v, jnp.float32) for k, v in data.items()}


def test_ppo_rejects_rollouts_that_do_not_split_into_minibatches():
    agent = agents.make("ppo", ppo.PPOConfig(num_minibatches=7), **SIZES)
    state = jax.eval_shape(agent.init, jax.random.PRNGKey(0))
    rollout = synthetic_rollout()  # 6 x 4 = 24 steps
    with pytest.raises(ConfigError, match="--num-minibatches 7"):
        jax.eval_shape(agent.update, state, rollout, jax.random.PRNGKey(2))


# --- updates: wiring of targets, delays, masks (one compiled program) --------------------------


def her_like_batch(seed=0, batch_size=16):
    rng = np.random.default_rng(seed)
    data = {
        "state_obs": rng.normal(size=(batch_size, 4)),
        "next_state_obs": rng.normal(size=(batch_size, 4)),
        "goal": rng.normal(size=(batch_size, 2)),
        "action": rng.uniform(-1, 1, size=(batch_size, 2)),
        "reward": rng.random(batch_size) < 0.3,
        "terminated": np.arange(batch_size) == 0,
        "relabelled": np.arange(batch_size) < 4,
    }
    return {k: jnp.asarray(v, jnp.float32) for k, v in data.items()}


@pytest.fixture(scope="module")
def update_results():
    """SAC one update, TD3 two updates, PPO on a rollout with and without garbage past the
    budget, PPO acting before and after: one compiled update per agent."""
    small = dict(width=16, actor_width=16)
    sac_agent = sac.make(sac.SACConfig(tau=0.1, **small), **SIZES)
    td3_agent = td3.make(td3.TD3Config(tau=0.1, policy_delay=2, **small), **SIZES)
    ppo_agent = ppo.make(ppo.PPOConfig(num_minibatches=4, num_epochs=2, **small), **SIZES)
    key = jax.random.PRNGKey(0)
    batch = her_like_batch()

    sac_before = sac_agent.init(key)
    sac_after, sac_metrics = jax.jit(sac_agent.update)(sac_before, batch, key)

    td3_update = jax.jit(td3_agent.update)
    td3_states = [td3_agent.init(key)]
    for i in range(2):
        td3_states.append(td3_update(td3_states[-1], batch, jax.random.fold_in(key, i))[0])

    ppo_before = ppo_agent.init(key)
    rollout = synthetic_rollout()
    # on-policy actions, as collected: stored actions come from the params that update starts at
    obs = jnp.concatenate([rollout["state_obs"], rollout["goal"]], axis=-1)
    rollout["action"] = ppo_agent.act(ppo_before.params, obs, key, False)
    past_budget = rollout["valid"] == 0
    garbage = {
        k: v
        if k == "valid"
        else jnp.where(past_budget.reshape(v.shape[:2] + (1,) * (v.ndim - 2)), 1e3, v)
        for k, v in rollout.items()
    }
    ppo_update = jax.jit(ppo_agent.update)
    ppo_after, ppo_metrics = ppo_update(ppo_before, rollout, key)
    ppo_garbage, _ = ppo_update(ppo_before, garbage, key)
    acts = [ppo_agent.act(p.params, obs[0], key, True) for p in (ppo_before, ppo_after)]
    return (sac_before, sac_after, sac_metrics, td3_states, ppo_before, ppo_after,
            ppo_metrics, ppo_garbage, acts)  # fmt: skip


def tree_max_diff(a, b) -> float:
    return max(
        float(jnp.max(jnp.abs(x - y)))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def test_sac_update_moves_targets_by_polyak(update_results):
    before, after, metrics = update_results[:3]
    assert set(metrics) == set(sac.METRICS)
    assert all(np.isfinite(float(v)) and np.ndim(v) == 0 for v in metrics.values())
    assert float(metrics["relabelled_fraction"]) == pytest.approx(0.25)
    expected = critics.polyak(before.target_critic, after.params.critic, 0.1)
    assert tree_max_diff(after.target_critic, expected) < 1e-6
    assert tree_max_diff(after.params.actor, before.params.actor) > 0
    assert float(after.params.log_alpha) != 0.0


def test_td3_actor_and_targets_move_only_every_policy_delay_updates(update_results):
    s0, s1, s2 = update_results[3]
    assert [int(s.step) for s in (s0, s1, s2)] == [0, 1, 2]
    assert tree_max_diff(s1.params.critic, s0.params.critic) > 0  # the critic moves every time
    assert tree_max_diff(s2.params.critic, s1.params.critic) > 0
    assert tree_max_diff(s1.params.actor, s0.params.actor) > 0  # step 0: delayed update runs
    assert tree_max_diff(s1.target_actor, s0.target_actor) > 0
    assert tree_max_diff(s2.params.actor, s1.params.actor) == 0  # step 1: held
    assert tree_max_diff(s2.target_actor, s1.target_actor) == 0
    assert tree_max_diff(s2.target_critic, s1.target_critic) == 0


def test_ppo_ignores_steps_past_the_budget(update_results):
    before, after, metrics, garbage, acts = update_results[4:]
    assert set(metrics) == set(ppo.METRICS)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert tree_max_diff(after.params, garbage.params) < 1e-5
    assert tree_max_diff(after.params.actor, before.params.actor) > 0
    assert int(after.params.obs_norm.count) == 20  # the valid steps only
    # act normalises with the statistics in params: new statistics, different actions
    assert tree_max_diff(acts[0], acts[1]) > 0


# --- HER relabelling against the true episode structure ------------------------------------------

NUM_ENVS, CAPACITY, CHUNK = 3, 16, 5
THRESHOLD = 0.5  # stored values are integers: distance < 0.5 means equal

her_sample = jax.jit(
    relabel.her_batch,
    static_argnames=(
        "batch_size",
        "max_episode_length",
        "gamma",
        "strategy",
        "relabel_fraction",
        "goal_reward",
    ),
)


def integer_goal_reward(achieved, goal):
    """Sparse reward of the HER test: stored values are integers, so < 0.5 means equal."""
    metrics = goal_metrics(achieved, goal, THRESHOLD, THRESHOLD)
    return metrics["success"], metrics


insert = jax.jit(replay.insert)


def episode_rows(episodes: list[tuple[int, bool]], env: int, num_steps: int) -> list[dict]:
    """One env's stream: per step the true episode uid, time, termination and goal.

    Every other episode's goal is the goal it achieves after step 1, so unrelabelled rows also
    earn reward 1 somewhere; the others have goals no state ever achieves.
    """
    rows = []
    for k, (length, terminates) in enumerate(episodes):
        uid = 100 * env + k
        goal = (uid, 2) if k % 2 == 0 else (-uid - 1, -1000)
        for t in range(length):
            rows.append({"uid": uid, "t": t, "end": terminates and t == length - 1, "goal": goal})
    last = rows[-1]
    while len(rows) < num_steps:  # the last episode runs on past the listed length
        rows.append({**last, "t": rows[-1]["t"] + 1, "end": False})
    return rows[:num_steps]


def stored(rows_per_env: list[list[dict]], t: int) -> dict:
    r = [rows[t] for rows in rows_per_env]
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    return {
        "state_obs": f32([[x["uid"], x["t"], x["end"], 0] for x in r]),
        "action": f32([[x["t"], 0] for x in r]),
        "next_goal": f32([[x["uid"], x["t"] + 1] for x in r]),
        "next_state_obs": f32([[x["uid"], x["t"] + 1, 0, 0] for x in r]),
        "goal": f32([x["goal"] for x in r]),
        "terminated": f32([x["end"] for x in r]),
    }


@settings(max_examples=12, deadline=None)
@given(
    episodes=st.lists(
        st.lists(st.tuples(st.integers(1, 9), st.booleans()), min_size=1, max_size=8),
        min_size=NUM_ENVS,
        max_size=NUM_ENVS,
    ),
    num_chunks=st.integers(1, 6),
    seed=st.integers(0, 2**31 - 1),
)
def test_her_goals_come_from_the_same_episode_later(episodes, num_chunks, seed):
    num_steps = num_chunks * CHUNK
    rows_per_env = [episode_rows(eps, e, num_steps) for e, eps in enumerate(episodes)]
    steps = [stored(rows_per_env, t) for t in range(num_steps)]
    uid = np.array([[rows[t]["uid"] for rows in rows_per_env] for t in range(num_steps)])
    buf = replay.init(steps[0], CAPACITY)
    for c in range(num_chunks):
        chunk = jax.tree.map(lambda *x: jnp.stack(x), *steps[c * CHUNK : (c + 1) * CHUNK])
        buf = insert(buf, chunk, jnp.asarray(uid[c * CHUNK : (c + 1) * CHUNK], jnp.int32))
    batch = jax.tree.map(
        np.asarray,
        her_sample(
            buf,
            jax.random.PRNGKey(seed),
            batch_size=256,
            max_episode_length=64,
            gamma=0.99,
            strategy="uniform",
            relabel_fraction=0.5,
            goal_reward=integer_goal_reward,
        ),
    )
    now_uid, now_t, now_end = (
        batch["state_obs"][:, 0],
        batch["state_obs"][:, 1],
        batch["state_obs"][:, 2],
    )
    relabelled = batch["relabelled"] > 0
    assert 0.3 < relabelled.mean() < 0.7
    goal = batch["goal"]
    # relabelled: an achieved goal (uid, t' + 1) of the same episode with t' >= t
    assert np.all(goal[relabelled, 0] == now_uid[relabelled])
    assert np.all(goal[relabelled, 1] >= now_t[relabelled] + 1)
    # kept: the episode's own goal
    own = {rows[t]["uid"]: rows[t]["goal"] for rows in rows_per_env for t in range(num_steps)}
    expected_goal = np.array([own[u] for u in now_uid[~relabelled].astype(int)])
    np.testing.assert_array_equal(goal[~relabelled], expected_goal)
    # reward = success of the achieved next goal against the goal used; terminations kept
    next_goal = np.stack([now_uid, now_t + 1], axis=-1)
    success = np.linalg.norm(next_goal - goal, axis=-1) < THRESHOLD
    np.testing.assert_array_equal(batch["reward"], success.astype(np.float32))
    np.testing.assert_array_equal(batch["terminated"], now_end)
    np.testing.assert_array_equal(batch["next_state_obs"][:, :2], next_goal)


def test_a_terminal_state_can_be_a_goal_but_nothing_past_it():
    # Decision (goalax/relabel.py, docs/parity.md): the terminal transition stores the achieved
    # goal of the terminal state (x = 3 here), a state the agent reached, so it may be a goal; the
    # reference never uses one (its auto-reset overwrites it). Episode 0: rows 0-2, terminated
    # at row 2; episode 1: rows 3-5 (achieved x = 4, 5, 6).
    t = jnp.arange(6, dtype=jnp.float32)
    data = {
        "state_obs": t[:, None, None],
        "action": jnp.zeros((6, 1, 1)),
        "next_goal": (t + 1)[:, None, None],
        "terminated": (t == 2).astype(jnp.float32)[:, None],
    }
    buf = replay.init(jax.tree.map(lambda x: x[0], data), 6)
    buf = replay.insert(buf, data, jnp.array([0, 0, 0, 1, 1, 1], jnp.int32)[:, None])
    batch = relabel.contrastive_batch(
        buf, jax.random.PRNGKey(0), 512, max_episode_length=6, gamma=0.5, strategy="geometric"
    )
    now, goal = np.asarray(batch["state_obs"][:, 0]), np.asarray(batch["goal"][:, 0])
    first = now <= 2
    assert set(goal[first]) == {1.0, 2.0, 3.0}  # the terminal state's x = 3 among them
    assert np.all(goal[now == 2] == 3.0)  # the terminal step's only future is its own end
    assert np.all(goal[~first] >= 4.0) and np.all(goal[~first] > now[~first])  # never episode 0


# --- end to end on point ----------------------------------------------------------------------


def read_rows(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


SMOKE = {
    "sac": sac.SACConfig(width=16, actor_width=16, depth=1, actor_depth=1),
    "td3+her": td3.TD3Config(her=True, width=16, actor_width=16, depth=1, actor_depth=1),
    "ppo": ppo.PPOConfig(width=16, actor_width=16, depth=1, actor_depth=1, num_minibatches=4),
}


@pytest.mark.parametrize("label", list(SMOKE))
def test_smoke_training_run(tmp_path, label):
    name = label.split("+")[0]
    run = small_config(tmp_path / "run", total_env_steps=500).run
    if name == "ppo":  # on-policy: the replay settings stay at their defaults (refused otherwise)
        run = dataclasses.replace(run, **{f: getattr(RunConfig(), f) for f in REPLAY_FIELDS})
    config = TrainConfig(run=run, agent=SMOKE[label], agent_name=name)
    result = goalax.train(config)
    rows = read_rows(result.run_dir)
    assert [r["env_steps"] for r in rows] == [0, 400, 500]
    program_metrics = agents.make(name, config.agent, **SIZES).metric_names
    for key in program_metrics:
        assert np.isfinite(rows[-1][f"train/{key}"]), key
    assert os.path.exists(os.path.join(result.run_dir, "config.json"))
    assert "500" in os.listdir(os.path.join(result.run_dir, "checkpoints"))
    loaded = goalax.load(result.run_dir)  # params hold everything acting needs (PPO: normaliser)
    obs = jax.vmap(loaded.env.reset)(jax.random.split(jax.random.PRNGKey(0), 3)).obs
    action = loaded.act(loaded.seed_params(0), obs, jax.random.PRNGKey(1))
    assert action.shape == (3, 2) and np.all(np.abs(np.asarray(action)) <= 1.0)


def test_her_reward_uses_the_task_success():
    # pusher2 succeeds when every puck is within 0.1 of its goal. Both pucks 0.09 off: a success,
    # though the joint 6-d distance (0.127) is over the threshold.
    env = goalax.envs.make("pusher2")
    achieved = jnp.zeros((1, 6))
    goal = jnp.array([[0.09, 0.0, 0.0, 0.0, 0.09, 0.0]])
    reward, metrics = env.goal_reward(achieved, goal)
    assert float(reward[0]) == 1.0 and float(metrics["success"][0]) == 1.0
    far = jnp.array([[0.09, 0.0, 0.0, 0.0, 0.11, 0.0]])
    assert float(env.goal_reward(achieved, far)[0][0]) == 0.0
    # her_batch takes its rewards from that function, for kept and relabelled goals alike.
    step = {
        "state_obs": jnp.zeros((1, 3)),
        "action": jnp.zeros((1, 2)),
        "next_goal": achieved,
        "next_state_obs": jnp.zeros((1, 3)),
        "goal": goal,
        "terminated": jnp.zeros((1,)),
    }
    buf = replay.init(step, 4)
    chunk = jax.tree.map(lambda x: jnp.stack([x] * 4), step)
    buf = replay.insert(buf, chunk, jnp.zeros((4, 1), jnp.int32))
    batch = relabel.her_batch(
        buf,
        jax.random.PRNGKey(0),
        8,
        max_episode_length=4,
        gamma=0.99,
        strategy="uniform",
        relabel_fraction=0.0,
        goal_reward=env.goal_reward,
    )
    np.testing.assert_array_equal(batch["reward"], 1.0)


@pytest.mark.parametrize("name", ["crl", "sac", "td3", "ppo", "gciql", "td_infonce", "cmd"])
def test_layer_norm_flags_reach_the_networks_they_name(name):
    """The predecessor never passed its LayerNorm flag to the actor. Here each flag reaches
    exactly its own network of a built agent (shapes only, nothing compiled)."""
    config_class = agents.config_class(name)
    for actor_ln in (True, False):
        config = config_class(actor_layer_norm=actor_ln, layer_norm=not actor_ln)
        agent = agents.make(name, config, **SIZES)
        params = jax.eval_shape(agent.init, jax.random.PRNGKey(0)).params
        fields = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}

        def has_layer_norm(tree) -> bool:
            paths = jax.tree_util.tree_flatten_with_path(tree)[0]
            return any("layer_norm" in jax.tree_util.keystr(path) for path, _ in paths)

        assert has_layer_norm(fields.pop("actor")) == actor_ln, (name, actor_ln)
        critics = [tree for tree in fields.values() if jax.tree.leaves(tree)]
        assert any(has_layer_norm(tree) for tree in critics) == (not actor_ln), (name, actor_ln)
