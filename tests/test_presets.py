"""``--preset paper`` against the reference's own defaults (tests/data/reference_agent_facts.json,
recorded by running jaxgcrl 0.2.8: ``bash benchmarks/reference_agent_facts.sh``), the options it
needs (HER "final" scored on s_t, the actor stepped against the critic before its step, relu,
TD3's clipped exploration noise, PPO without gradient clipping) on hand-computed batches, and how
the CLI applies it (a flag given with the preset wins)."""

import dataclasses
import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from goalax import agents, presets, relabel
from goalax import buffer as replay
from goalax.agents import ppo, sac, td3
from goalax.cli import main
from goalax.config import BUFFER_STEPS_PER_ENV, RunConfig, TrainConfig, from_dict, to_dict

FACTS_PATH = os.path.join(os.path.dirname(__file__), "data", "reference_agent_facts.json")
with open(FACTS_PATH) as f:
    FACTS = json.load(f)
REF = FACTS["defaults"]
SIZES = dict(state_dim=4, goal_dim=2, action_dim=2)
#: The reference's names for values goalax spells differently.
NAMES = {"fwd_infonce": "infonce_forward", "norm": "l2"}


def paper(agent_name: str, env: str = "ant", **run) -> TrainConfig:
    config_class = agents.config_class(agent_name)
    base = TrainConfig(RunConfig(preset="paper", env=env, **run), config_class(), agent_name)
    return presets.apply(base)


#: Reference field -> the goalax fields (``run.x`` or ``agent.x``) that must hold its value.
SHARED = {"batch_size": ["run.batch_size"], "unroll_length": ["run.unroll_length"]}
MAPPED = {
    "CRL": {
        **SHARED,
        "policy_lr": ["agent.actor_lr"],
        "critic_lr": ["agent.critic_lr"],
        "alpha_lr": ["agent.alpha_lr"],
        "discounting": ["agent.discount"],
        "logsumexp_penalty_coeff": ["agent.logsumexp_penalty"],
        "min_replay_size": ["run.prefill_steps"],
        "h_dim": ["agent.width", "agent.actor_width"],
        "n_hidden": ["agent.depth", "agent.actor_depth"],
        "repr_dim": ["agent.repr_dim"],
        "use_ln": ["agent.layer_norm", "agent.actor_layer_norm"],
        "contrastive_loss_fn": ["agent.loss"],
        "energy_fn": ["agent.energy"],
    },
    "SAC": {
        **SHARED,
        "learning_rate": ["agent.critic_lr", "agent.actor_lr"],
        "discounting": ["agent.discount"],
        "tau": ["agent.tau"],
        "deterministic_eval": ["run.deterministic_eval"],
        "h_dim": ["agent.width", "agent.actor_width"],
        "n_hidden": ["agent.depth", "agent.actor_depth"],
        "use_ln": ["agent.layer_norm", "agent.actor_layer_norm"],
        "use_her": ["agent.her"],
    },
    "TD3": {
        **SHARED,
        "learning_rate": ["agent.critic_lr", "agent.actor_lr"],
        "discounting": ["agent.discount"],
        "tau": ["agent.tau"],
        "policy_delay": ["agent.policy_delay"],
        "noise_clip": ["agent.noise_clip", "agent.exploration_noise_clip"],
        "smoothing_noise": ["agent.policy_noise"],
        "exploration_noise": ["agent.exploration_noise"],
        "use_her": ["agent.her"],
    },
    "PPO": {
        "learning_rate": ["agent.learning_rate"],
        "entropy_cost": ["agent.entropy_coef"],
        "discounting": ["agent.discount"],
        "unroll_length": ["run.unroll_length"],
        "num_updates_per_batch": ["agent.num_epochs"],
        "normalize_observations": ["agent.normalize_observations"],
        "clipping_epsilon": ["agent.clip_epsilon"],
        "gae_lambda": ["agent.gae_lambda"],
        "deterministic_eval": ["run.deterministic_eval"],
    },
}


def one_pass_per_iteration(ref, config):  # train_step_multiplier: updates come from utd_ratio
    return ref == 1 and config.run.utd_ratio == presets.reference_utd_ratio(
        config.agent_name, config.run
    )


#: Reference fields goalax has no field for: the check that goalax acts as that value does.
EXPLAINED = {
    "train_step_multiplier": one_pass_per_iteration,
    "max_replay_size": lambda ref, c: c.run.buffer_size is None and ref == BUFFER_STEPS_PER_ENV,
    "reward_scaling": lambda ref, c: ref == 1.0,  # goalax never scales rewards
    "normalize_observations": lambda ref, c: ref is False,  # SAC/TD3 have no normaliser
    "disable_entropy_actor": lambda ref, c: ref is False,  # CRL's actor keeps its entropy term
    "use_relu": lambda ref, c: ref is False,  # CRL is swish only
    # skips every 4 layers never fire in a 2-layer network
    "skip_connections": lambda ref, c: c.agent.depth <= ref and not c.agent.residual,
    # SAC/TD3 prefill one unroll: min_replay_size // unroll_length + 1 collections
    "min_replay_size": lambda ref, c: (
        c.run.prefill_steps == (ref // c.run.unroll_length + 1) * c.run.unroll_length
    ),
    # TD3 evaluates with exploration noise 0: its deterministic policy
    "deterministic_eval": lambda ref, c: c.run.deterministic_eval,
    # PPO minibatches of batch_size sequences of unroll_length steps
    "batch_size": lambda ref, c: (
        c.run.num_envs * c.run.unroll_length // c.agent.num_minibatches == ref * c.run.unroll_length
    ),
    "num_minibatches": lambda ref, c: (
        c.agent.num_minibatches == presets.reference_num_minibatches(c.run)
    ),
    "num_resets_per_eval": lambda ref, c: ref == 0,  # goalax never resets envs in between
    "normalize_advantage": lambda ref, c: ref is True,  # goalax always normalises advantages
    "restore_checkpoint_path": lambda ref, c: ref is None,
}


def value_of(config: TrainConfig, path: str):
    section, name = path.split(".")
    return getattr(getattr(config, section), name)


@pytest.mark.parametrize("ref_agent", ["CRL", "SAC", "TD3", "PPO"])
def test_paper_preset_holds_every_reference_default(ref_agent):
    config = paper(ref_agent.lower())
    for field, ref in REF[ref_agent].items():
        if field in MAPPED[ref_agent]:
            for path in MAPPED[ref_agent][field]:
                assert value_of(config, path) == NAMES.get(ref, ref), (ref_agent, field, path)
        else:
            assert field in EXPLAINED, f"{ref_agent}.{field} is neither mapped nor explained"
            assert EXPLAINED[field](ref, config), (ref_agent, field, ref)


def test_paper_preset_runs_the_reference_evaluation_and_networks():
    nets = FACTS["networks"]
    assert REF["RunConfig"]["num_eval_envs"] == presets.REFERENCE_EVAL_ENVS
    for name in ("crl", "sac", "td3", "ppo"):
        assert paper(name).run.num_eval_envs == presets.REFERENCE_EVAL_ENVS
    assert paper("sac").agent.activation == nets["sac_activation"] == "relu"
    assert paper("td3").agent.activation == nets["td3_activation"] == "relu"
    # Layer widths of each actor (mean and scale heads last) and of PPO's value network
    action_dim = SIZES["action_dim"]

    def widths(name):
        init = agents.make(name, paper(name).agent, **SIZES).init
        params = jax.eval_shape(init, jax.random.key(0)).params
        leaves = jax.tree_util.tree_leaves_with_path(params)
        found = {}
        for part in ("actor", "value"):
            found[part] = [leaf.shape[-1] for path, leaf in leaves
                           if f".{part}" in jax.tree_util.keystr(path)
                           and "kernel" in jax.tree_util.keystr(path)]  # fmt: skip
        return found

    def reference(key, heads):  # the reference's widths for our action_dim (probed with 3)
        return nets[key][:-1] + [heads * action_dim]

    assert widths("sac")["actor"] == reference("sac_policy_widths", 2)
    assert widths("td3")["actor"] == reference("td3_policy_widths", 1)
    ppo_widths = widths("ppo")
    assert ppo_widths["actor"] == reference("ppo_policy_widths", 2)
    assert ppo_widths["value"] == nets["ppo_value_widths"]


def test_derived_values_follow_the_reference_formulas():
    # ant: 1000-step episodes. SAC: 256 windows x 1000 steps / batch 256 = 1000 updates per
    # iteration of 256 envs x 50 steps: 1000 / 12800. CRL drops each window's last step: 999.
    assert paper("sac").run.utd_ratio == pytest.approx(1000 / (256 * 50))
    assert paper("crl").run.utd_ratio == pytest.approx(999 / (256 * 62))
    assert paper("td3", episode_length=101).run.utd_ratio == pytest.approx(101 / (256 * 50))
    assert paper("sac").run.prefill_steps == 50 and paper("crl").run.prefill_steps == 1000
    # PPO: minibatches of 32 sequences x 10 steps = 320 transitions
    assert paper("ppo", num_envs=512).agent.num_minibatches == 16  # the reference's own rollout
    assert paper("ppo", num_envs=256).agent.num_minibatches == 8
    assert paper("ppo", num_envs=100).agent.num_minibatches == 4  # divisor of 1000 nearest 3.1


def test_kept_fields_win_and_derived_values_use_them():
    base = paper("sac")
    changed = dataclasses.replace(
        base,
        run=dataclasses.replace(base.run, unroll_length=100),
        agent=dataclasses.replace(base.agent, discount=0.99),
    )
    again = presets.apply(changed, keep={"unroll_length", "discount"})
    assert again.run.unroll_length == 100 and again.agent.discount == 0.99
    assert again.run.utd_ratio == pytest.approx(1000 / (256 * 100))
    assert again.run.prefill_steps == 100  # one unroll
    assert presets.apply(dataclasses.replace(base, run=RunConfig(env="ant"))).run == RunConfig(
        env="ant"
    )  # the goalax preset changes nothing


def test_given_fields():
    argv = ["--discount", "0.9", "--no-her", "--unroll-length=3", "ant"]
    assert presets.given_fields(argv) >= {"discount", "her", "unroll_length"}
    assert "ant" not in presets.given_fields(argv)


def test_preset_is_recorded_and_old_configs_read_as_goalax():
    config = paper("td3")
    data = json.loads(json.dumps(to_dict(config)))
    assert data["run"]["preset"] == "paper" and data["agent"]["exploration_noise_clip"] == 0.5
    assert from_dict(data) == config
    del data["run"]["preset"], data["run"]["deterministic_eval"]
    assert from_dict(data).run.preset == "goalax"


# --- the CLI ----------------------------------------------------------------------------------


class _Stop(Exception):
    pass


@pytest.fixture
def parsed(monkeypatch):
    """``goalax train ...`` up to the config it would train."""
    seen = []

    def fake_train(config):
        seen.append(config)
        raise _Stop

    monkeypatch.setattr("goalax.training.run.train", fake_train)

    def parse(*argv):
        with pytest.raises(_Stop):
            main(["train", *argv])
        return seen[-1]

    return parse


def test_cli_flag_given_with_the_preset_wins(parsed):
    config = parsed("sac", "--env", "ant", "--preset", "paper", "--discount", "0.99",
                    "--unroll-length", "100")  # fmt: skip
    assert config.agent.discount == 0.99 and config.run.unroll_length == 100
    assert config.agent.critic_lr == 1e-4 and config.agent.activation == "relu"
    assert config.run.utd_ratio == pytest.approx(1000 / (256 * 100))
    goalax_config = parsed("sac", "--env", "ant")
    assert goalax_config.agent.discount == 0.99 and goalax_config.run.preset == "goalax"


def test_cli_help_shows_the_preset_values(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "ppo", "--preset", "paper", "--env", "ant", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    defaults = dict(re.findall(r"--([a-z][a-z-]*) (?:(?! --[a-z]).)*?\(default: ([^)]*)\)", text))
    assert defaults["learning-rate"] == "0.0001" and defaults["num-epochs"] == "2"
    assert defaults["unroll-length"] == "10" and defaults["actor-width"] == "32"
    assert "A flag given with --preset wins over the preset's value" in text


def test_cli_unknown_preset_is_one_line(capsys):
    assert main(["train", "crl", "--preset", "papr"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("goalax: error:") and "paper" in err


def test_an_agent_the_paper_lacks_is_refused_in_one_line(monkeypatch, capsys):
    """Agents added beyond the paper's four have no paper values: the preset names the ones it
    has instead of failing with a KeyError."""
    monkeypatch.delitem(presets._PAPER_AGENT, "td3")
    assert main(["train", "td3", "--preset", "paper", "--env", "point"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("goalax: error:")
    assert "no td3" in err and "crl, ppo, sac" in err


# --- the options the preset needs -------------------------------------------------------------


def _window_buffer(window: dict, terminated_at: set[int]) -> replay.BufferState:
    """The reference's HER window as one env's rows: state x = t, achieved goal of s_{t+1} is
    x = t + 1, the episode goal x = 100."""
    steps = len(window["traj_id"])
    t = np.arange(steps, dtype=np.float32)
    zeros = np.zeros(steps, np.float32)
    data = {
        "state_obs": np.stack([t, zeros], -1),
        "action": zeros[:, None],
        "next_goal": np.stack([t + 1, zeros], -1),
        "next_state_obs": np.stack([t + 1, zeros], -1),
        "goal": np.full((steps, 2), 100.0, np.float32),
        "terminated": np.array([float(i in terminated_at) for i in range(steps)], np.float32),
    }
    data = {k: jnp.asarray(v)[:, None] for k, v in data.items()}  # [T, 1 env, ...]
    buf = replay.init(jax.tree.map(lambda x: x[0], data), steps)
    return replay.insert(buf, data, jnp.asarray(window["traj_id"], jnp.int32)[:, None])


def _final_batch(buf, steps, achieved_at):
    def success(achieved, goal):
        return (jnp.linalg.norm(achieved - goal, axis=-1) < 0.5).astype(jnp.float32), {}

    batch = relabel.her_batch(buf, jax.random.PRNGKey(0), 512, max_episode_length=steps,
                              gamma=0.9, strategy="final", relabel_fraction=1.0,
                              goal_reward=success, achieved_at=achieved_at,
                              achieved_goal=lambda s: s[..., :2])  # fmt: skip
    t = np.asarray(batch["state_obs"][:, 0]).astype(int)
    goal_x, reward = np.full(steps, np.nan), np.full(steps, np.nan)
    goal_x[t], reward[t] = np.asarray(batch["goal"][:, 0]), np.asarray(batch["reward"])
    assert not np.isnan(goal_x).any()  # every row was drawn
    return goal_x, reward


@pytest.mark.parametrize("index", [0, 2])
def test_her_final_scored_on_s_t_equals_the_reference_on_its_windows(index):
    # Windows without a termination: the reference relabels each row of an episode that ended at
    # its time limit to the achieved goal of that episode's last observation and scores the
    # reward on s_t; the episode still running keeps its goal. goalax draws the same, row by row.
    window = FACTS["her"]["windows"][index]
    buf = _window_buffer(window, terminated_at=set())
    goal_x, reward = _final_batch(buf, len(window["traj_id"]), "state")
    np.testing.assert_array_equal(goal_x, window["goal_x"])
    np.testing.assert_array_equal(reward, window["reward"])


def test_her_final_hand_values_with_a_termination_and_on_the_next_state():
    # traj 0 0 | 1 1 1 1 | 2 2: episode 0 terminated at row 1, episode 1 ended by the time limit
    # at row 5, episode 2 runs. Scored on s_t: rows 0-1 -> x(s_1) = 1, rows 2-5 -> x(s_5) = 5.
    # (The reference gives rows 0-3 goal 5 and rows 4-5 their own: its nonzero() fills row by
    # row in order and shifts the goals onto the terminated episode, see docs/parity.md.)
    window = FACTS["her"]["windows"][1]
    buf = _window_buffer(window, terminated_at={1})
    goal_x, reward = _final_batch(buf, 8, "state")
    np.testing.assert_array_equal(goal_x, [1, 1, 5, 5, 5, 5, 100, 100])
    np.testing.assert_array_equal(reward, [0, 1, 0, 0, 0, 1, 0, 0])
    # Scored on s_{t+1} (goalax's default): the final goal is the last state, x(s_2) and x(s_6),
    # a terminal state included, and the last transition of each episode is the success.
    goal_x, reward = _final_batch(buf, 8, "next_state")
    np.testing.assert_array_equal(goal_x, [2, 2, 6, 6, 6, 6, 100, 100])
    np.testing.assert_array_equal(reward, [0, 1, 0, 0, 0, 1, 0, 0])


def _actor_after_one_update(name, critic_lr, actor_critic):
    config_class = agents.config_class(name)
    small = dict(width=4, actor_width=4, depth=1, actor_depth=1)
    config = config_class(critic_lr=critic_lr, actor_critic=actor_critic, **small)
    agent = agents.make(name, config, **SIZES)
    key = jax.random.PRNGKey(0)
    rng = np.random.default_rng(0)
    batch = {
        "state_obs": rng.normal(size=(16, 4)),
        "next_state_obs": rng.normal(size=(16, 4)),
        "goal": rng.normal(size=(16, 2)),
        "action": rng.uniform(-1, 1, size=(16, 2)),
        "reward": rng.random(16) < 0.3,
        "terminated": np.zeros(16),
        "relabelled": np.zeros(16),
    }
    batch = {k: jnp.asarray(v, jnp.float32) for k, v in batch.items()}
    state, _ = agent.update(agent.init(key), batch, key)
    return state.params.actor


@pytest.mark.parametrize("name", ["sac", "td3"])
def test_actor_critic_previous_ignores_this_updates_critic_step(name):
    # The critic's step size changes the updated critic; an actor that climbs the critic before
    # that step cannot see it (TD3's first update takes its delayed actor step), one that climbs
    # the updated critic does.
    previous = [_actor_after_one_update(name, lr, "previous") for lr in (1e-4, 1.0)]
    jax.tree.map(np.testing.assert_array_equal, previous[0], previous[1])
    updated = _actor_after_one_update(name, 1.0, "updated")
    diffs = jax.tree.leaves(
        jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), updated, previous[1])
    )
    assert max(diffs) > 0


def test_relu_activation_reaches_the_twin_critic():
    config = sac.SACConfig(width=3, depth=1, activation="relu")
    twin_q = sac.build_nets(config, 1).twin_q
    s, g, a = jnp.array([[1.0, -2.0]]), jnp.array([[0.5]]), jnp.array([[-1.0]])
    params = twin_q.init(jax.random.PRNGKey(1), s, g, a)["params"]["q"]
    x = np.array([1.0, -2.0, 0.5, -1.0])
    for head in range(2):
        hidden = x @ params["dense_0"]["kernel"][head] + params["dense_0"]["bias"][head]
        q = (
            np.maximum(hidden, 0.0) @ params["output"]["kernel"][head]
            + params["output"]["bias"][head]
        )
        np.testing.assert_allclose(twin_q.apply({"params": {"q": params}}, s, g, a)[head], q,
                                   rtol=1e-5)  # fmt: skip


def test_td3_exploration_noise_is_clipped():
    config = td3.TD3Config(
        width=8, actor_width=8, exploration_noise=0.4, exploration_noise_clip=0.5
    )
    agent = agents.make("td3", config, **SIZES)
    params = agent.init(jax.random.PRNGKey(0)).params
    obs = jnp.zeros((4000, 6))
    key = jax.random.PRNGKey(3)
    mean = agent.act(params, obs, key, True)
    noise = np.asarray(agent.act(params, obs, key, False) - mean)
    expected = np.clip(0.4 * np.asarray(jax.random.normal(key, mean.shape)), -0.5, 0.5)
    inside = np.abs(np.asarray(mean) + expected) < 1.0  # where the final [-1, 1] clip is idle
    np.testing.assert_allclose(noise[inside], expected[inside], atol=1e-6)
    assert np.abs(noise).max() <= 0.5 + 1e-6 and (np.abs(expected) == 0.5).any()


def test_ppo_without_gradient_clipping_is_plain_adam():
    nets = ppo.build_nets(ppo.PPOConfig(max_grad_norm=None, learning_rate=0.1), 1)
    params = {"w": jnp.array([1.0, 2.0])}
    grads = {"w": jnp.array([300.0, -400.0])}  # norm 500, far over the default 0.5
    got, _ = nets.tx.update(grads, nets.tx.init(params), params)
    want, _ = optax.adam(0.1).update(grads, optax.adam(0.1).init(params), params)
    np.testing.assert_allclose(got["w"], want["w"])


def test_paper_preset_builds_the_reference_model_and_a_flag_keeps_goalax_s():
    """``--preset paper`` sets ``--reference-model``: the ant's lower legs leave the floor's
    contacts (feet only, as the reference's) in the env the training program builds."""
    from goalax.envs import facts
    from goalax.training import loop

    def shin_contacts(config: TrainConfig) -> set[str]:
        colliders = facts.floor_colliders(loop.make_env(config).sys.mj_model)
        return {name for name in colliders if "ankle" in name}

    assert all(paper(name).run.reference_model for name in ("crl", "sac", "td3", "ppo"))
    assert shin_contacts(paper("crl")) == set()
    goalax_model = TrainConfig(RunConfig(env="ant"), agents.config_class("crl")(), "crl")
    assert not goalax_model.run.reference_model
    assert len(shin_contacts(goalax_model)) == 4
    # --preset paper --no-reference-model: the flag given wins over the preset.
    base = TrainConfig(RunConfig(preset="paper", env="ant"), agents.config_class("crl")(), "crl")
    assert not presets.apply(base, keep={"reference_model"}).run.reference_model
