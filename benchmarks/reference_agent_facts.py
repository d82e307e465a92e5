"""Record the reference's agent and evaluation facts by running jaxgcrl 0.2.8's own objects.

Runs in the reference's venv (never goalax's): ``bash benchmarks/reference_agent_facts.sh``.
Output: ``tests/data/reference_agent_facts.json`` (numbers and names only), which
``tests/test_presets.py`` and ``tests/test_tools.py`` hold goalax's paper preset, HER "final"
and evaluation metrics to. Recorded:

- ``defaults``: every field of the reference's agent dataclasses (CRL, SAC, TD3, PPO) and of its
  run config, as instantiated.
- ``networks``: layer widths of each agent's networks as initialised, their hidden activation
  (evaluated on a probe vector), and the actor's standard-deviation map at probe inputs.
- ``her``: SAC's hindsight relabelling (``flatten_batch`` with ``use_her``) on synthetic windows
  whose states are their own time index: the goals and rewards it produces.
- ``evaluator``: brax's ``EvalWrapper`` (the reference's evaluator) on a scripted two-episode env
  with a termination mid-episode: the per-episode sums it reports.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = "bash benchmarks/reference_agent_facts.sh"
#: The scripted evaluation episodes: per-step metrics after step k (k = 1..6) of two envs; env 0
#: terminates on its 4th step, env 1 runs to the 6-step time limit.
EVAL_SUCCESS = [[0, 1, 1, 0, 1, 1], [1, 0, 0, 0, 0, 1]]
EVAL_SUCCESS_EASY = [[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 1]]
EVAL_DIST = [[3.0, 0.2, 0.1, 1.0, 0.1, 0.1], [0.3, 2.0, 2.0, 2.0, 2.0, 0.4]]
EVAL_DONE_AT = [4, 99]
EVAL_LENGTH = 6
#: HER windows: (name, traj_id per step, truncation per step).
HER_WINDOWS = [
    ("time_limit_at_2", [0, 0, 0, 1, 1, 1, 1, 1], [0, 0, 1, 0, 0, 0, 0, 0]),
    ("terminated_at_1_then_time_limit_at_5", [0, 0, 1, 1, 1, 1, 2, 2], [0, 0, 0, 0, 0, 1, 0, 0]),
    ("time_limit_at_4", [0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 0, 0, 0]),
]


def _plain(value):
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return repr(value)


def defaults() -> dict:
    from jaxgcrl.agents import CRL, PPO, SAC, TD3
    from jaxgcrl.utils.config import RunConfig

    out = {}
    for cls in (CRL, SAC, TD3, PPO):
        obj = cls()
        out[cls.__name__] = {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    out["RunConfig"] = {
        f.name: _plain(f.default)
        for f in dataclasses.fields(RunConfig)
        if f.default is not dataclasses.MISSING
    }
    return out


def _widths(params: dict) -> list[int]:
    """Output widths of the Dense layers, in order (kernel shapes' last axis)."""
    layers = sorted(
        (name for name in params if "kernel" in params[name]),
        key=lambda n: int(n.rsplit("_", 1)[1]),
    )
    return [int(params[name]["kernel"].shape[-1]) for name in layers]


def _activation_name(fn) -> str:
    probe = jnp.array([-1.0, 0.5])
    out = np.asarray(fn(probe))
    if np.allclose(out, [0.0, 0.5]):
        return "relu"
    if np.allclose(out, np.asarray(jax.nn.swish(probe)), atol=1e-6):
        return "swish"
    return "other"


def networks() -> dict:
    import inspect

    from brax.training.agents.ppo import networks as ppo_networks
    from jaxgcrl.agents.crl.networks import Actor
    from jaxgcrl.agents.sac import networks as sac_networks
    from jaxgcrl.agents.td3 import networks as td3_networks

    key = jax.random.PRNGKey(0)
    obs_size, action_size = 10, 3
    sac = sac_networks.make_sac_networks(obs_size, action_size, hidden_layer_sizes=[256, 256])
    ppo = ppo_networks.make_ppo_networks(obs_size, action_size)
    td3 = td3_networks.make_td3_networks(obs_size, action_size)
    crl_actor = Actor(action_size=action_size, network_width=256, network_depth=2)
    crl_params = crl_actor.init(key, jnp.ones((1, obs_size)))
    raw_scale = jnp.array([-10.0, 0.0, 10.0])
    sac_std = sac.parametric_action_distribution.create_dist(
        jnp.concatenate([jnp.zeros(3), raw_scale])
    ).scale
    _, crl_log_std = crl_actor.apply(crl_params, 1e3 * jnp.ones((1, obs_size)))

    def default_activation(fn) -> str:
        return _activation_name(inspect.signature(fn).parameters["activation"].default)

    return {
        "sac_policy_widths": _widths(sac.policy_network.init(key)["params"]),
        "sac_activation": default_activation(sac_networks.make_sac_networks),
        "td3_policy_widths": _widths(td3.policy_network.init(key)["params"]),
        "td3_activation": default_activation(td3_networks.make_td3_networks),
        "ppo_policy_widths": _widths(ppo.policy_network.init(key)["params"]),
        "ppo_value_widths": _widths(ppo.value_network.init(key)["params"]),
        "ppo_activation": default_activation(ppo_networks.make_ppo_networks),
        "sac_ppo_std_at_raw_minus10_0_10": np.asarray(sac_std).tolist(),
        "crl_actor_widths": _widths(crl_params["params"]),
        "crl_log_std_bounds": [crl_actor.LOG_STD_MIN, crl_actor.LOG_STD_MAX],
        "crl_log_std_at_large_input": float(np.max(np.asarray(crl_log_std))),
    }


def her() -> dict:
    """SAC's ``flatten_batch`` on windows whose state is ``(t, 0)`` and goal ``(100, 100)``;
    ``td3_same`` says whether TD3's gives the same goals and rewards."""
    from jaxgcrl.agents.sac.sac import Transition, flatten_batch
    from jaxgcrl.agents.td3.td3 import flatten_batch as td3_flatten_batch

    class Config:
        use_her = True

    class Env:
        state_dim = 2
        goal_indices = jnp.array([0, 1])
        goal_reach_thresh = 0.5

    out = {"state": "x = t", "original_goal_x": 100.0, "goal_reach_thresh": 0.5, "windows": []}
    td3_same = True
    for name, traj, trunc in HER_WINDOWS:
        steps = len(traj)
        t = jnp.arange(steps, dtype=jnp.float32)
        obs = jnp.stack([t, jnp.zeros(steps), jnp.full(steps, 100.0), jnp.full(steps, 100.0)], 1)
        transition = Transition(
            observation=obs,
            next_observation=obs.at[:, 0].add(1.0),
            action=jnp.zeros((steps, 1)),
            reward=jnp.zeros(steps),
            discount=jnp.ones(steps),
            extras={
                "state_extras": {
                    "traj_id": jnp.array(traj, jnp.float32),
                    "truncation": jnp.array(trunc, jnp.float32),
                },
                "policy_extras": {},
            },
        )
        result = flatten_batch(Config(), Env(), transition, jax.random.PRNGKey(0))
        td3 = td3_flatten_batch(Config(), Env(), transition, jax.random.PRNGKey(0))
        td3_same &= bool(
            np.array_equal(result.observation, td3.observation)
            and np.array_equal(result.reward, td3.reward)
        )
        out["windows"].append(
            {
                "name": name,
                "traj_id": traj,
                "truncation": trunc,
                "goal_x": np.asarray(result.observation[:, 2]).tolist(),
                "reward": np.asarray(result.reward).tolist(),
            }
        )
    out["td3_same"] = td3_same
    return out


def evaluator() -> dict:
    """brax's EvalWrapper over brax's training wrappers, as the reference evaluates."""
    from brax import envs
    from brax.envs.base import Env, State

    success = jnp.array(EVAL_SUCCESS, jnp.float32)
    easy = jnp.array(EVAL_SUCCESS_EASY, jnp.float32)
    dist, done_at = jnp.array(EVAL_DIST), jnp.array(EVAL_DONE_AT)

    class Scripted(Env):
        def reset(self, rng):
            zero = jnp.zeros(())
            metrics = {"success": zero, "success_easy": zero, "dist": zero}
            info = {"k": jnp.zeros((), jnp.int32), "i": rng[0].astype(jnp.int32)}
            return State(None, jnp.zeros(1), zero, zero, metrics, info)

        def step(self, state, action):
            k, i = state.info["k"], state.info["i"]
            metrics = {
                **state.metrics,
                "success": success[i, k],
                "success_easy": easy[i, k],
                "dist": dist[i, k],
            }
            done = (k + 1 == done_at[i]).astype(jnp.float32)
            info = {**state.info, "k": k + 1}
            return state.replace(reward=success[i, k], done=done, metrics=metrics, info=info)

        observation_size = 1
        action_size = 1
        backend = "scripted"

    env = envs.training.EvalWrapper(envs.training.wrap(Scripted(), episode_length=EVAL_LENGTH))
    state = env.reset(jnp.array([[0, 0], [1, 1]], jnp.uint32))
    for _ in range(EVAL_LENGTH):
        state = env.step(state, jnp.zeros((2, 1)))
    metrics = state.info["eval_metrics"]
    sums = {k: np.asarray(v).tolist() for k, v in metrics.episode_metrics.items()}
    return {
        "success": EVAL_SUCCESS,
        "success_easy": EVAL_SUCCESS_EASY,
        "dist": EVAL_DIST,
        "done_at_step": EVAL_DONE_AT,
        "episode_length": EVAL_LENGTH,
        "per_episode_sums": {k: sums[k] for k in ("success", "success_easy", "dist")},
        "episode_steps": np.asarray(metrics.episode_steps).tolist(),
        "eval/episode_success": float(np.mean(sums["success"])),
        "eval/episode_success_easy": float(np.mean(sums["success_easy"])),
        "eval/episode_dist": float(np.mean(sums["dist"])),
        "eval/episode_success_any": float(np.mean(np.asarray(sums["success"]) > 0)),
        "eval/avg_episode_length": float(np.mean(np.asarray(metrics.episode_steps))),
    }


def main() -> None:
    out_path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/reference_agent_facts.json"
    facts = {
        "generated_by": COMMAND,
        "versions": {p: importlib.metadata.version(p) for p in ("jaxgcrl", "brax", "jax")},
        "defaults": defaults(),
        "networks": networks(),
        "her": her(),
        "evaluator": evaluator(),
    }
    with open(os.path.join(ROOT, out_path), "w") as f:
        json.dump(facts, f, indent=1)
        f.write("\n")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
