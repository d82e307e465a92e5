"""Termination of the ant and humanoid families, through the whole pipeline, and physical validity
of every state an agent can reach (no body through the floor).

Every task's own contract run (``tests/test_envs*.py``) checks that its terminations follow the
healthy torso range and that its reachable states stay above the floor; the tests here check the
rule itself, the pipeline after a termination (on a cheap pure-JAX task that terminates) and,
with ``-m slow``, long random rollouts of every variant and backend.
"""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from goalax import buffer as replay
from goalax import envs
from goalax.envs.point import PointEnv
from goalax.evaluate import evaluate_episodes
from goalax.training import rollout

#: Deepest a body (link frame) may sit below the floor: a few centimetres of contact softness.
FLOOR_TOLERANCE = 0.05


def random_rollout(env, num_envs: int, num_steps: int, seed: int = 0):
    """One episode per env under uniform random actions, without time limit or reset:
    ``(torso_z, lowest_link_z, alive, done)``, each ``[num_steps, num_envs]``. ``alive`` marks
    the states the agent reaches (a terminal state is reached; what follows it is not)."""

    @jax.jit
    def run(key):
        state = jax.vmap(env.reset)(jax.random.split(key, num_envs))

        def step(carry, k):
            s, alive = carry
            action = jax.random.uniform(k, (num_envs, env.action_size), minval=-1, maxval=1)
            nxt = jax.vmap(env.step)(s, action)
            z = nxt.pipeline_state.x.pos[..., 2]
            return (nxt, alive * (1.0 - nxt.done)), (z[:, 0], z.min(-1), alive, nxt.done)

        ones = jnp.ones(num_envs)
        return jax.lax.scan(step, (state, ones), jax.random.split(key, num_steps))[1]

    return jax.device_get(run(jax.random.PRNGKey(seed)))


def torso_at(z: float) -> SimpleNamespace:
    """The part of a physics state ``GoalPipelineEnv.terminated`` reads: the root joint's
    height ``q[2]`` at z (link 0's ``x.pos``, which MJX computes before the step, elsewhere)."""
    return SimpleNamespace(
        q=jnp.array([0.0, 0.0, z, 1.0, 0.0, 0.0, 0.0]),
        x=SimpleNamespace(pos=jnp.array([[0.0, 0.0, 0.6], [0.0, 0.0, 0.0]])),
    )


@pytest.mark.parametrize(
    "name, low, high", [("ant", 0.2, 1.0), ("ant_u_maze", 0.2, 1.0), ("humanoid", 1.0, 2.0)]
)
def test_terminated_outside_the_healthy_range_only_when_on(name, low, high):
    on, off = envs.make(name), envs.make(name, termination=False)
    for z, expected in (
        (low - 0.01, 1.0),
        (low + 0.01, 0.0),
        (high - 0.01, 0.0),
        (high + 0.01, 1.0),
    ):
        assert float(on.terminated(torso_at(z))) == expected, (name, z)
        assert float(off.terminated(torso_at(z))) == 0.0


@pytest.mark.slow
def test_humanoid_under_random_actions_falls_and_terminates():
    humanoid = envs.make("humanoid")
    torso_z, _, alive, done = random_rollout(humanoid, num_envs=6, num_steps=300)
    first = done.argmax(0)
    assert done.any(0).all(), "every random humanoid falls within 300 steps"
    assert np.all(first > 5), first  # it starts healthy (torso at 1.4)
    terminal_z = torso_z[first, np.arange(6)]
    assert np.all(terminal_z < 1.0), terminal_z  # ended by the healthy range (1.0, 2.0)
    assert np.all(torso_z[first - 1, np.arange(6)] >= 1.0)  # and not before
    print(f"\nhumanoid first terminations {first.tolist()}, terminal torso z {terminal_z.round(2)}")


@pytest.mark.slow
def test_termination_off_keeps_the_fallen_humanoid_running():
    env = envs.make("humanoid", termination=False)
    torso_z, _, _, done = random_rollout(env, num_envs=6, num_steps=300)
    assert not done.any()
    assert torso_z.min() < 1.0  # it did fall


@pytest.mark.slow
def test_ant_knees_no_longer_sink_with_termination_off():
    # The lower legs collide with the floor, so even a fallen ant keeps its bodies above it.
    env = envs.make("ant", termination=False)
    _, lowest_z, _, done = random_rollout(env, num_envs=16, num_steps=400, seed=3)
    assert not done.any()
    assert lowest_z.min() > -0.1, lowest_z.min()


def test_registry_and_spec_show_the_termination_rule():
    assert envs.spec("ant").termination == "torso z outside (0.2, 1.0)"
    assert envs.spec("humanoid_u_maze").termination == "torso z outside (1.0, 2.0)"
    assert envs.spec("reacher").termination == "-"
    assert envs.make("ant_ball_u_maze", termination=False).termination is False
    assert envs.make("point", termination=False).episode_length == 50  # ignored where moot


class _TerminatingPoint(PointEnv):
    """The point mass, ending its episode once ``x >= 0.45``."""

    def terminated(self, pipeline_state):
        return (pipeline_state.pos[0] >= 0.45).astype(jnp.float32)


def test_collect_ends_episodes_at_termination_and_goals_never_cross_it():
    # The point mass driven towards +x terminates at x >= 0.45 (5 steps from the start) and
    # restarts: terminations every 5 steps, far from the 1000-step time limit.
    env = _TerminatingPoint(episode_length=1000, start_noise=0.0)
    num_envs, steps = 3, 23
    carry = rollout.reset(env, jax.random.PRNGKey(0), num_envs)

    def forward(obs, key):
        noise = 0.2 * jax.random.uniform(key, obs.shape[:-1] + (2,), minval=-1.0)
        return jnp.clip(jnp.array([1.0, 0.0]) + noise, -1.0, 1.0)

    collect = jax.jit(
        lambda c, k: rollout.collect(
            env,
            forward,
            c,
            k,
            unroll_length=steps,
            episode_length=1000,
            budget=jnp.int32(num_envs * steps),
            fields=("state_obs", "action", "next_goal", "terminated", "truncated"),
        )
    )
    _, transitions, episode_ids = jax.device_get(collect(carry, jax.random.PRNGKey(1)))
    terminated, truncated = transitions["terminated"], transitions["truncated"]
    assert terminated.sum(axis=0).min() >= 3  # every env ended at least three episodes
    assert not truncated.any()  # terminations are not truncations
    rows, cols = np.nonzero(terminated[:-1])
    np.testing.assert_array_equal(episode_ids[rows + 1, cols], episode_ids[rows, cols] + 1)
    quiet = np.nonzero(terminated[:-1] == 0)
    np.testing.assert_array_equal(episode_ids[quiet[0] + 1, quiet[1]], episode_ids[quiet])
    # The terminal transition stores the terminal state's achieved goal; the next starts over.
    assert np.all(transitions["next_goal"][rows, cols, 0] >= 0.45)
    assert np.all(np.abs(transitions["state_obs"][rows + 1, cols, 0]) < 1e-6)

    buf = replay.init(jax.tree.map(lambda x: x[0], transitions), steps)
    buf = replay.insert(buf, transitions, jnp.asarray(episode_ids))
    sample = jax.device_get(
        replay.sample(buf, jax.random.PRNGKey(2), 2048, max_episode_length=1000, gamma=0.99)
    )
    same = episode_ids[sample.goal_row, sample.env_idx] == episode_ids[sample.row, sample.env_idx]
    assert same.all()
    at_end = terminated[sample.row, sample.env_idx] > 0
    assert at_end.any() and np.all(sample.offset[at_end] == 0)  # a terminal step's only future


def test_evaluation_stops_counting_at_termination():
    # Moving +0.1 in x per step from the origin towards the goal (0.25, 0): distances
    # .15 .05 .05 .15 .25, then the step to x = 0.5 terminates (step 5 of 10).
    env = _TerminatingPoint(episode_length=10, start_noise=0.0)
    result = evaluate_episodes(
        env,
        lambda obs, key: jnp.broadcast_to(jnp.array([1.0, 0.0]), obs.shape[:-1] + (2,)),
        jax.random.PRNGKey(0),
        num_envs=2,
        episode_length=10,
        goals=jnp.array([[0.25, 0.0]]),
    )
    np.testing.assert_allclose(result["success"], 1.0)  # reached before the termination
    np.testing.assert_allclose(result["success_at_end"], 0.0)  # not at the terminal step
    np.testing.assert_allclose(result["time_at_goal"], 2 / 10)  # the lost steps are not at goal
    np.testing.assert_allclose(result["episode_length"], 5.0)
    np.testing.assert_allclose(result["dist"], (0.15 + 0.05 + 0.05 + 0.15 + 0.25) / 5, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, backend",
    [
        ("ant", "mjx"),
        ("ant_ball", "spring"),
        ("ant_u_maze", "spring"),
        ("ant_push", "mjx"),
        ("humanoid", "mjx"),
        ("humanoid_u_maze", "spring"),
    ],
)
def test_reachable_states_stay_above_the_floor_every_variant(name, backend):
    env = envs.make(name, backend=backend)
    torso_z, lowest_z, alive, _ = random_rollout(env, num_envs=16, num_steps=1000, seed=5)
    reached = alive > 0
    assert torso_z[reached].min() > 0.0
    assert lowest_z[reached].min() > -FLOOR_TOLERANCE
