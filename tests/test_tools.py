"""goalax eval / render / plot / sweep: one tiny trained ``point`` run shared by the module."""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace
from typing import NamedTuple

import imageio.v2 as imageio
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import goalax
from goalax import evaluate, sweep
from goalax.agents.crl import CRLConfig
from goalax.cli import main
from goalax.config import ConfigError, RunConfig, TrainConfig
from goalax.envs.point import PointEnv
from goalax.evaluate import evaluate_episodes
from goalax.viz import plots, stats

METRIC_KEYS = {"success", "success_easy", "success_at_end", "time_at_goal", "dist"}
TINY_FLAGS = [
    "--env", "point", "--num-envs", "8", "--unroll-length", "10", "--episode-length", "20",
    "--total-env-steps", "400", "--eval-every", "400", "--batch-size", "32",
    "--buffer-size", "320", "--prefill-steps", "10", "--utd-ratio", "0.05",
    "--num-eval-envs", "4", "--num-seeds", "2",
    "--width", "32", "--actor-width", "32", "--repr-dim", "16", "--quiet",
]  # fmt: skip


def tiny_config(run_dir) -> TrainConfig:
    """The config TINY_FLAGS describe, so the sweep test reuses the fixture's compiled programs."""
    run = RunConfig(
        env="point",
        num_envs=8,
        unroll_length=10,
        episode_length=20,
        total_env_steps=400,
        eval_every=400,
        batch_size=32,
        buffer_size=320,
        prefill_steps=10,
        utd_ratio=0.05,
        num_eval_envs=4,
        num_seeds=2,
        run_dir=str(run_dir),
        quiet=True,
    )
    return TrainConfig(run=run, agent=CRLConfig(width=32, actor_width=32, repr_dim=16))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tools") / "point-run"
    goalax.train(tiny_config(path))
    return str(path)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("goalax: error:"), err
    return err


# --- eval --------------------------------------------------------------------------------------


def test_eval_json_keys_and_ranges(run_dir, capsys):
    assert main(["eval", run_dir, "--episodes", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["env"] == "point" and report["env_steps"] == 400 and report["episodes"] == 8
    assert [s["seed"] for s in report["seeds"]] == [0, 1]
    for metrics in [report["mean"], *report["seeds"]]:
        assert set(metrics) >= METRIC_KEYS
        for key in ("success", "success_easy", "success_at_end", "time_at_goal"):
            assert 0.0 <= metrics[key] <= 1.0
        for key in ("success", "success_easy", "success_at_end"):  # fractions of 8 episodes
            assert metrics[key] * 8 == pytest.approx(round(metrics[key] * 8))
        assert 0.0 <= metrics["dist"] <= 2 * np.sqrt(2)  # the arena is [-1, 1]^2
    assert report["mean"]["dist"] == pytest.approx(np.mean([s["dist"] for s in report["seeds"]]))


def test_eval_table_one_seed(run_dir, capsys):
    assert main(["eval", run_dir, "--episodes", "4", "--seed-index", "1"]) == 0
    out = capsys.readouterr().out
    assert "seed 1" in out and "seed 0" not in out and "success_at_end" in out


def test_goal_set_per_goal_success_with_a_goal_at_the_start():
    env = PointEnv(episode_length=10, start_noise=0.0)  # starts exactly at the origin
    goals = jnp.array([[0.0, 0.0], [0.9, 0.9]])

    def stay(obs, key):
        return jnp.zeros(obs.shape[:-1] + (2,))

    result = evaluate_episodes(
        env, stay, jax.random.PRNGKey(0), num_envs=4, episode_length=10, goals=goals
    )
    np.testing.assert_allclose(result["success_per_goal"], [1.0, 0.0])
    assert float(result["success"]) == pytest.approx(0.5)


class _PointWithGoals(PointEnv):
    def eval_goal_sets(self):
        return {"centre_and_corner": np.array([[0.0, 0.0], [0.9, 0.9]], np.float32)}


def _fake_run(env):
    run = SimpleNamespace(num_seeds=1, seed=3, env="point", deterministic_eval=True)
    config = SimpleNamespace(run=run, agent_name="x")
    return SimpleNamespace(
        env=env,
        config=config,
        env_steps=0,
        seed_params=lambda i: None,
        act=lambda params, obs, key, deterministic: jnp.zeros(obs.shape[:-1] + (2,)),
    )


def test_evaluate_run_reports_each_goal_of_a_set():
    run = _fake_run(_PointWithGoals(episode_length=10, start_noise=0.0))
    report = evaluate.evaluate_run(
        run, run_dir="fake", episodes=3, goal_set_name="centre_and_corner", key=jax.random.key(0)
    )
    per_goal = report["seeds"][0]["per_goal"]
    assert [g["success"] for g in per_goal] == [1.0, 0.0]
    assert per_goal[1]["dist"] == pytest.approx(0.9 * np.sqrt(2), rel=1e-5)
    assert report["mean"]["success"] == pytest.approx(0.5)
    assert "centre_and_corner" in evaluate.format_report(report)
    with pytest.raises(ConfigError, match="available: centre_and_corner"):
        evaluate.evaluate_run(run, run_dir="fake", goal_set_name="far", key=jax.random.key(0))


REFERENCE_FACTS = os.path.join(os.path.dirname(__file__), "data", "reference_agent_facts.json")


class _Scripted(NamedTuple):
    """State of ``_ScriptedEnv``: which scripted episode (``row``) and how many steps taken."""

    obs: jax.Array
    reward: jax.Array
    done: jax.Array
    metrics: dict
    row: jax.Array
    steps: jax.Array


class _ScriptedEnv:
    """Plays back per-step ``success``, ``success_easy`` and ``dist`` tables ``[episodes, steps]``;
    episode ``row`` is chosen by its goal (``with_goal``) and terminates on step ``done_at``."""

    def __init__(self, script: dict):
        self.tables = {
            k: jnp.asarray(script[k], jnp.float32) for k in ("success", "success_easy", "dist")
        }
        self.done_at = jnp.asarray(script["done_at_step"])

    def reset(self, key):
        zero = jnp.zeros(())
        metrics = {k: zero for k in self.tables}
        return _Scripted(
            jnp.zeros(1), zero, zero, metrics, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32)
        )

    def with_goal(self, state, goal):
        return state._replace(row=goal[0].astype(jnp.int32))

    def step(self, state, action):
        metrics = {k: table[state.row, state.steps] for k, table in self.tables.items()}
        done = (state.steps + 1 == self.done_at[state.row]).astype(jnp.float32)
        return state._replace(
            reward=metrics["success"], done=done, metrics=metrics, steps=state.steps + 1
        )


def test_reference_metrics_equal_the_reference_evaluator_on_a_scripted_episode():
    # The reference's evaluator (brax's EvalWrapper) ran on this script, recorded in
    # tests/data/reference_agent_facts.json: episode 0 terminates on its 4th of 6 steps.
    with open(REFERENCE_FACTS) as f:
        script = json.load(f)["evaluator"]
    result = evaluate_episodes(
        _ScriptedEnv(script),
        lambda obs, key: jnp.zeros(obs.shape[:-1] + (1,)),
        jax.random.PRNGKey(0),
        num_envs=2,
        episode_length=script["episode_length"],
        goals=jnp.array([[0.0], [1.0]]),
    )
    for name in evaluate.REFERENCE_METRICS:
        assert float(result[name]) == pytest.approx(script[f"eval/{name}"], rel=1e-6), name
    assert float(result["episode_length"]) == script["eval/avg_episode_length"]
    # By hand: steps at goal 0+1+1+0 | 1+0+0+0+0+1 = 2 | 2, summed distances 3 + .2 + .1 + 1 =
    # 4.3 | 8.7 (the steps after the termination never count); goalax's own: fractions and means.
    assert float(result["episode_success"]) == pytest.approx(2.0)
    assert float(result["episode_dist"]) == pytest.approx((4.3 + 8.7) / 2)
    assert float(result["time_at_goal"]) == pytest.approx((2 / 6 + 2 / 6) / 2)
    assert float(result["dist"]) == pytest.approx((4.3 / 4 + 8.7 / 6) / 2)
    assert float(result["success_easy"]) == 1.0 and float(result["success_at_end"]) == 0.5
    assert float(result["time_at_goal"]) * 6 == pytest.approx(float(result["episode_success"]))


# --- render ------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:os.fork")  # imageio's reader starts ffmpeg (fork + exec)
def test_render_mp4_has_one_frame_per_state(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "egl")  # the CLI sets it process-wide
    out = str(tmp_path / "run.mp4")
    argv = ["render", run_dir, "--out", out, "--episodes", "2", "--steps", "6"]
    assert main([*argv, "--width", "64", "--height", "48"]) == 0
    assert "14 frames" in capsys.readouterr().out
    reader = imageio.get_reader(out)
    frames = [frame for frame in reader]
    assert len(frames) == 2 * (6 + 1)  # each episode: its reset state, then one per step
    assert frames[0].shape == (48, 64, 3) and frames[0].std() > 5


def render_in_fresh_process(*flags: str) -> subprocess.CompletedProcess:
    """``goalax render FLAGS`` in a new process: the CLI must pick the OpenGL platform before
    mujoco is imported, which an in-process call after other tests cannot guarantee."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("MUJOCO_GL", None)
    return subprocess.run(
        [sys.executable, "-m", "goalax.cli", "render", *flags],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_png_snapshot_of_a_maze_is_not_blank(tmp_path):
    out = tmp_path / "maze.png"
    done = render_in_fresh_process(
        "--env", "simple_u_maze", "--out", str(out), "--width", "64", "--height", "64"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    image = imageio.imread(out)
    assert image.shape[:2] == (64, 64)
    assert image[..., :3].std() > 10  # walls, floor and ball, not one flat colour
    red = (image[..., 0] > 150) & (image[..., 1] < 120) & (image[..., 2] < 120)
    assert red.any()  # the goal marker


@pytest.mark.slow  # 12 s of drawing; the refusal of an unknown camera stays in the default suite
def test_snapshot_camera_choice(tmp_path):
    """--camera reaches the snapshot: the ant's free overview differs from its tracking camera."""
    size = ("--env", "ant", "--width", "48", "--height", "48")
    images = {}
    for camera in ("default", "free"):
        out = tmp_path / f"{camera}.png"
        extra = () if camera == "default" else ("--camera", camera)
        done = render_in_fresh_process(*size, "--out", str(out), *extra)
        assert done.returncode == 0, done.stderr[-2000:]
        images[camera] = imageio.imread(out)[..., :3].astype(int)
    assert np.abs(images["default"] - images["free"]).mean() > 5


def test_an_unknown_camera_is_refused_before_anything_is_drawn(tmp_path, monkeypatch, capsys):
    """In-process: the name is checked against the model before a renderer (or OpenGL) exists."""
    monkeypatch.setenv("MUJOCO_GL", "egl")  # render sets it process-wide
    out = tmp_path / "x.png"
    code = main(["render", "--env", "ant", "--out", str(out), "--camera", "nope"])
    assert code == 2 and "--camera nope: the model has track" in capsys.readouterr().err
    assert not out.exists()


# --- plot --------------------------------------------------------------------------------------


def _fake_run_dir(root, name, energy, finals, env="point"):
    """A run directory with one seed per value in ``finals`` (eval/success at steps 0, 100)."""
    path = root / name
    path.mkdir(parents=True)
    config = {"run": {"env": env, "seed": 0, "run_dir": str(path)}, "agent": {"energy": energy}}
    (path / "config.json").write_text(json.dumps({**config, "agent_name": "crl"}))
    rows = [
        {"env_steps": step, "seed": seed, "eval/success": value if step else 0.0}
        for step in (0, 100)
        for seed, value in enumerate(finals)
    ]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_plot_two_runs_png_and_final_table(tmp_path, capsys):
    _fake_run_dir(tmp_path / "runs", "a", "l2", [0.2, 0.4, 0.6])
    _fake_run_dir(tmp_path / "runs", "b", "dot", [1.0, 0.5])
    out = tmp_path / "fig.png"
    argv = ["plot", str(tmp_path / "runs"), "--metric", "eval/success", "--out", str(out)]
    assert main([*argv, "--group-by", "energy"]) == 0
    table = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:-1]}
    assert float(table["energy=l2"][2]) == pytest.approx(0.4) and table["energy=l2"][-1] == "3"
    assert float(table["energy=dot"][2]) == pytest.approx(0.75) and table["energy=dot"][-1] == "2"
    image = imageio.imread(out)
    assert image.ndim == 3 and image.shape[0] > 100
    # Without --group-by, runs whose configs differ (apart from seed) are separate groups too.
    summaries = plots.summarise_runs([str(tmp_path / "runs")], "eval/success")
    assert sorted(s.label for s in summaries) == ["energy=dot", "energy=l2"]


def test_runs_of_different_tasks_are_not_pooled_as_seeds(tmp_path):
    """README's ``goalax plot runs/ --group-by agent_name`` over a reacher and a U-maze run: one
    curve per task, not one curve mixing both tasks' evaluations as seeds."""
    _fake_run_dir(tmp_path / "runs", "a", "l2", [0.2, 0.4], env="reacher")
    _fake_run_dir(tmp_path / "runs", "b", "l2", [1.0], env="simple_u_maze")
    _fake_run_dir(tmp_path / "runs", "c", "l2", [0.6], env="reacher")
    summaries = plots.summarise_runs([str(tmp_path / "runs")], "eval/success", ["agent_name"])
    by_label = {s.label: s for s in summaries}
    assert sorted(by_label) == ["agent_name=crl, env=reacher", "agent_name=crl, env=simple_u_maze"]
    assert by_label["agent_name=crl, env=reacher"].num_seeds == 3
    assert by_label["agent_name=crl, env=reacher"].final_value == pytest.approx(0.4)
    one_task = plots.summarise_runs([str(tmp_path / "runs" / "a")], "eval/success", ["energy"])
    assert [s.label for s in one_task] == ["energy=l2"]  # one task: the label stays short


def test_plot_iqm_rows_per_task_and_over_tasks(tmp_path, capsys):
    """``--aggregate iqm``: per-task rows hold the IQM over seeds; a group that ran both tasks
    gets a row over all (seed, task) scores with the stratified interval; the default (mean)
    table has no such row."""
    runs = tmp_path / "runs"
    _fake_run_dir(runs, "a", "l2", [0.0, 0.2, 0.4, 1.0], env="point")
    _fake_run_dir(runs, "b", "l2", [0.5, 0.6, 0.7, 0.8], env="simple_u_maze")
    _fake_run_dir(runs, "c", "dot", [0.1, 0.3, 0.9], env="point")
    out = tmp_path / "iqm.png"
    argv = ["plot", str(runs), "--group-by", "energy", "--out", str(out)]
    assert main([*argv, "--aggregate", "iqm"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "eval/success IQM" in lines[0]
    table = {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line) for line in lines[1:-1])}
    assert float(table["energy=l2, env=point"][1]) == pytest.approx(0.3)  # mean of 0.2, 0.4
    assert float(table["energy=dot, env=point"][1]) == pytest.approx(0.4333, abs=1e-4)
    steps, value, ci, n = table["energy=l2"]
    assert steps == "all 2 tasks" and n == "8"
    assert float(value) == pytest.approx(0.55)  # mean of the middle four of eight
    low, high = stats.stratified_bootstrap_ci([[0.0, 0.2, 0.4, 1.0], [0.5, 0.6, 0.7, 0.8]])
    assert ci == f"[{low:.4g}, {high:.4g}]"
    assert "energy=dot" not in table  # one task: nothing to pool over
    image = imageio.imread(out)
    assert image.shape[1] > 2 * image.shape[0]  # a panel per task and one over tasks
    assert main(argv) == 0
    assert "all 2 tasks" not in capsys.readouterr().out


def test_bootstrap_ci_contains_the_mean_and_shrinks_with_more_seeds():
    rng = np.random.default_rng(1)
    few, many = rng.normal(size=5), rng.normal(size=80)
    for values in (few, many):
        low, high = stats.bootstrap_ci(values)
        assert low <= values.mean() <= high
    width = [np.subtract(*stats.bootstrap_ci(v)[::-1]) for v in (few, many)]
    assert width[1] < width[0] / 2
    assert stats.bootstrap_ci([0.3]) == (0.3, 0.3)


# --- sweep -------------------------------------------------------------------------------------


def test_sweep_two_values_two_run_dirs(run_dir, tmp_path, capsys):
    out = tmp_path / "sweep"
    # seed changes no compiled program, so these runs reuse the fixture's compilations
    assert main(["sweep", "crl", "--grid", "seed=0,1", "--out", str(out), *TINY_FLAGS]) == 0
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["grid"] == {"seed": [0, 1]}
    assert [r["status"] for r in manifest["runs"]] == ["done", "done"]
    assert sorted(os.listdir(out)) == ["seed=0", "seed=1", "sweep.json"]
    saved = json.loads((out / "seed=1" / "config.json").read_text())
    assert saved["run"]["seed"] == 1 and saved["run"]["num_seeds"] == 2
    assert "goalax plot" in capsys.readouterr().out


def test_grid_values_take_the_field_type(tmp_path):
    base = tiny_config(tmp_path)
    (tmp_path / "sweep.toml").write_text(
        '[grid]\nenergy = ["l2", "dot"]\nlayer_norm = [true, false]\nutd_ratio = [0.1]\n'
    )
    grid = sweep.resolve_grid(sweep.read_grid_file(str(tmp_path / "sweep.toml")), base)
    assert [(g.section, g.name, g.values) for g in grid] == [
        ("agent", "energy", ("l2", "dot")),
        ("agent", "layer_norm", (True, False)),
        ("run", "utd_ratio", (0.1,)),
    ]
    episode = sweep.resolve_grid({"episode-length": ["none", "1_000"]}, base)[0]
    assert episode.values == (None, 1000)
    points = list(sweep.combinations(base, grid, str(tmp_path / "out")))
    assert len(points) == 4
    values, config = points[1]
    assert values == {"energy": "l2", "layer_norm": False, "utd_ratio": 0.1}
    assert config.agent.layer_norm is False and config.run.utd_ratio == 0.1
    assert config.run.run_dir.endswith("energy=l2,layer_norm=False,utd_ratio=0.1")
    assert dataclasses.replace(config, run=base.run, agent=base.agent) == base  # nothing else


def test_sweep_under_the_paper_preset_derives_each_point_s_values(tmp_path):
    """Regression: the preset was applied once to the base, so a grid over the episode length or
    the unroll kept the base's derived updates per env step. Flags given keep their value."""
    from goalax import agents, presets

    base = presets.apply(
        TrainConfig(RunConfig(env="point", preset="paper"), agents.config_class("crl")(), "crl"),
        keep={"batch_size"},
    )
    base = dataclasses.replace(base, run=dataclasses.replace(base.run, batch_size=128))
    grid = sweep.resolve_grid({"episode-length": ["100", "1001"], "unroll-length": ["31"]}, base)
    points = list(sweep.combinations(base, grid, str(tmp_path), given=frozenset({"batch_size"})))
    for values, config in points:
        assert config.run.batch_size == 128 and config.run.unroll_length == 31
        expected = (values["episode_length"] - 1) / (128 * 31)
        assert config.run.utd_ratio == pytest.approx(expected), values
        assert config.run.reference_model
    # goalax's own preset: the grid's values and nothing else.
    own = tiny_config(tmp_path)
    for _, config in sweep.combinations(own, grid, str(tmp_path)):
        assert config.run.utd_ratio == own.run.utd_ratio


# --- bad input: one line, exit 2 -----------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["eval", "/nonexistent/run"], "does not exist"),
        (["eval"], "required: run_dir"),
        (["render", "--env", "simple_umaze", "--out", "x.png"], "closest: simple_u_maze"),
        (["render", "--env", "point", "--out", "x.mp4"], "--out NAME.png"),
        (["render", "/nonexistent/run", "--out", "x.avi"], ".mp4"),
        (["plot", "/nonexistent/runs"], "is not a directory"),
        (["sweep", "crl", "--grid", "enrgy=l2,dot", *TINY_FLAGS], "closest config fields: energy"),
        (["sweep", "crl", "--grid", "energy=l2,l3", *TINY_FLAGS], "not one of l2"),
        (["sweep", "crl", "--grid", "num_envs=0,8", *TINY_FLAGS], "--num-envs must be a positive"),
        (["sweep", "crl", *TINY_FLAGS], "--grid"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert fragment in one_error_line(capsys)
    assert os.listdir(tmp_path) == []  # nothing written


def test_bad_run_inputs_exit_2(run_dir, tmp_path, capsys):
    assert main(["eval", run_dir, "--eval-goals", "far"]) == 2
    assert "unknown goal set 'far'; available:" in one_error_line(capsys)
    assert main(["eval", run_dir, "--seed-index", "2"]) == 2
    assert "2 seed(s)" in one_error_line(capsys)
    no_checkpoint = tmp_path / "copy"
    no_checkpoint.mkdir()
    shutil.copy(os.path.join(run_dir, "config.json"), no_checkpoint)
    assert main(["eval", str(no_checkpoint)]) == 2
    assert "no checkpoint" in one_error_line(capsys)
    assert main(["render", run_dir, "--out", str(tmp_path / "x.html")]) == 2
    assert "no brax system" in one_error_line(capsys)
    assert main(["plot", run_dir, "--metric", "eval/sucess"]) == 2
    assert "available: eval/dist" in one_error_line(capsys)


# --- goalax bench ------------------------------------------------------------------------------


def test_bench_training_and_physics_only(tmp_path, capsys):
    """Both modes on the tiny config: positive throughputs, the schedule's update count, finite
    learner state after the timed iterations, one JSON line with --json."""
    from goalax.bench import BenchOptions, run_bench

    config = tiny_config(tmp_path / "bench")
    train = run_bench(config, BenchOptions(iterations=2, json=True))
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["mode"] == "train" and printed["env_steps_per_s"] == train["env_steps_per_s"]
    assert train["finite"] is True
    assert train["env_steps_per_s"] > 0 and train["grad_steps_per_s"] > 0
    assert train["env_steps_per_iteration"] == 8 * 10
    assert train["updates_per_iteration"] == 4  # round(0.05 * 80)
    assert train["compile_s"] > 0 and train["peak_rss_mb"] > 0
    physics = run_bench(config, BenchOptions(iterations=1, physics_only=True))
    assert physics["mode"] == "physics_only" and physics["grad_steps_per_s"] == 0.0
    assert physics["env_steps_per_s"] > 0
    assert not (tmp_path / "bench").exists()  # benchmarks write no run directory
