"""The user's mistakes (issue 18): each gets one line ``goalax: error: ...`` on stderr, exit code
2, no traceback, and nothing is written. In-process CLI calls: nothing here compiles."""

import dataclasses
import errno
import json
import math
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import pytest

from goalax import agents
from goalax.cli import main
from goalax.config import MAX_ENV_STEPS, RunConfig, TrainConfig, from_dict, make_schedule, to_dict
from goalax.errors import ConfigError
from goalax.training import loop, preflight

POINT = ["--env", "point", "--quiet"]


def snapshot(path) -> dict[str, int | None]:
    """Every path below ``path``, with its modification time for files: a write shows as a
    change (a directory's own time changes with a lock taken and released, which is fine)."""
    return {
        str(p.relative_to(path)): p.stat().st_mtime_ns if p.is_file() else None
        for p in path.rglob("*")
    }


def refused(argv: list[str], tmp_path, capfd, monkeypatch) -> str:
    """Run ``goalax argv`` in ``tmp_path``; assert the one-line refusal and return it."""
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    code = main(argv)
    captured = capfd.readouterr()
    err = captured.err.strip()
    assert code == 2, captured
    assert len(err.splitlines()) == 1 and err.startswith("goalax: error:"), err
    assert snapshot(tmp_path) == before  # no runs/ folder, no file created or touched
    return err


# Case 1: sizes past the device's int32 counters are refused with the limit.


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (["--num-envs", "100000000"], "6,200,000,000 env steps per iteration"),
        (["--utd-ratio", "1e9"], "--utd-ratio 1e+09 asks for"),
        (["--utd-ratio", "1e300"], "lower --utd-ratio"),
        (["--utd-ratio", "1000", "--total-env-steps", "2000000000"], "gradient steps"),
        (["--num-envs", "10000000000"], "--num-envs must be at most 2,147,483,647"),
        (["--buffer-size", "100000000000"], "--buffer-size must be at most"),
        (["--seed", "3000000000"], "--seed must be at most"),
        (["--seed", str(MAX_ENV_STEPS), "--num-seeds", "2"], "lower --seed"),
    ],
)
def test_sizes_past_int32_are_refused(flags, fragment, tmp_path, capfd, monkeypatch):
    err = refused(["train", "crl", *POINT, *flags], tmp_path, capfd, monkeypatch)
    assert fragment in err
    assert f"{MAX_ENV_STEPS:,}" in err or "--seed" in err


def test_updates_of_a_large_iteration_do_not_wrap():
    """4,096 envs x 62 steps at the default ratio: budget x updates passes 2**31, which wrapped
    to a negative update count (a run that never learned)."""
    run = RunConfig(env="point", num_envs=4096, total_env_steps=10_000_000, prefill_steps=0)
    schedule = make_schedule(run, env_episode_length=50)
    steps, per_iteration = schedule.steps_per_iteration, schedule.updates_per_iteration
    assert steps * per_iteration > MAX_ENV_STEPS
    context = agents.SampleContext(256, 50, None)
    parts = loop.Parts(run, None, None, schedule, context)
    for budget in (steps, steps // 2, 4096, 1, 0):
        got = int(loop.num_updates(parts, jnp.int32(budget), jnp.int32(0)))
        assert abs(got - budget * per_iteration // steps) <= 1
        assert 0 <= got <= per_iteration
    assert int(loop.num_updates(parts, jnp.int32(steps), jnp.int32(0))) == per_iteration


# Case 3: a hand-edited config.json: one line naming the file, the field and the type.


def write_run(tmp_path, edit) -> str:
    """A run directory whose config.json is a valid CRL point config changed by ``edit``."""
    run_dir = tmp_path / "edited_run"
    run_dir.mkdir()
    data = to_dict(TrainConfig(run=RunConfig(env="point", num_envs=4, unroll_length=5)))
    edit(data)
    (run_dir / "config.json").write_text(json.dumps(data))
    return str(run_dir)


def set_key(section, key, value):
    def edit(data):
        if section is None:
            data[key] = value
        else:
            data[section][key] = value

    return edit


def drop(key):
    return lambda data: data.pop(key)


EDITS = [
    (set_key("run", "num_envs", "8"), 'run.num_envs must be an integer, got "8"'),
    (set_key("run", "num_envs", 8.0), "run.num_envs must be an integer, got 8.0"),
    (set_key("run", "num_envs", []), "run.num_envs must be an integer, got []"),
    (set_key("run", "num_envs", True), "run.num_envs must be an integer, got true"),
    (set_key("run", "episode_length", "50"), "run.episode_length must be an integer or null"),
    (set_key("run", "quiet", 1), "run.quiet must be true or false, got 1"),
    (set_key("run", "env", 3), "run.env must be a string"),
    (set_key("agent", "critic_lr", "3e-4"), "agent.critic_lr must be a number"),
    (set_key("agent", "energy", "l3"), 'agent.energy must be one of "l2"'),
    (set_key("run", "no_such_field", 1), "unknown field(s) no_such_field"),
    (set_key(None, "extra", 1), "unknown key(s) extra"),
    (
        set_key(None, "agent_name", "foo"),
        f'agent_name must be one of {", ".join(agents.names())}, got "foo"',
    ),
    (set_key(None, "run", [1]), "run must be a JSON object"),
    (drop("agent"), "has no agent section"),
    (drop("run"), "has no run section"),
]


@pytest.mark.parametrize("command", ["resume", "eval"])
@pytest.mark.parametrize("edit, fragment", EDITS)
def test_edited_config_json_is_refused(command, edit, fragment, tmp_path, capfd, monkeypatch):
    run_dir = write_run(tmp_path, edit)
    argv = ["train", "crl", "--resume", run_dir] if command == "resume" else ["eval", run_dir]
    err = refused(argv, tmp_path, capfd, monkeypatch)
    assert f"{run_dir}/config.json" in err
    assert fragment in err


def test_config_json_round_trips_and_reads_integers_as_floats():
    for name in agents.names():
        config = TrainConfig(agent=agents.config_class(name)(), agent_name=name)
        assert from_dict(to_dict(config)) == config
    data = to_dict(TrainConfig())
    data["agent"]["critic_lr"] = 1
    loaded = from_dict(data)
    assert isinstance(loaded.agent.critic_lr, float) and loaded.agent.critic_lr == 1.0
    data["agent"]["critic_lr"] = 10**400
    with pytest.raises(ConfigError, match="too large"):
        from_dict(data)


# Case 5: every float flag of every agent (and of the run) must be finite, refused up front.


def float_flags() -> list[tuple[str, str]]:
    """(agent, field) for every float field, found by introspection so new ones are covered."""
    pairs = [("crl", f.name) for f in dataclasses.fields(RunConfig) if f.type == "float"]
    for name in agents.names():
        cls = agents.config_class(name)
        pairs += [(name, f.name) for f in dataclasses.fields(cls) if isinstance(f.default, float)]
    return pairs


def test_float_flags_are_found():
    found = set(float_flags())
    assert ("crl", "utd_ratio") in found
    expected = [("crl", "logsumexp_penalty"), ("crl", "critic_lr"), ("sac", "tau")]
    expected += [("crl", "target_entropy_scale"), ("td3", "noise_clip"), ("ppo", "gae_lambda")]
    assert set(expected) <= found


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("agent, field", float_flags())
def test_non_finite_floats_are_refused(agent, field, value, tmp_path, capfd, monkeypatch):
    option = "--" + field.replace("_", "-")
    argv = ["train", agent, *POINT, f"{option}={value}"]
    err = refused(argv, tmp_path, capfd, monkeypatch)
    assert f"{option} must be a finite number, got {float(value)}" in err, err


def test_non_finite_float_in_config_json_is_refused(tmp_path, capfd, monkeypatch):
    """json reads NaN and Infinity: the check after loading catches them too."""
    run_dir = write_run(tmp_path, set_key("agent", "critic_lr", math.inf))
    err = refused(["train", "crl", "--resume", run_dir], tmp_path, capfd, monkeypatch)
    assert "--critic-lr must be a finite number" in err


@pytest.mark.parametrize(
    "agent, flag",
    [("crl", "--critic-lr"), ("crl", "--actor-lr"), ("crl", "--alpha-lr"), ("sac", "--alpha-lr")]
    + [("td3", "--critic-lr"), ("td3", "--actor-lr"), ("ppo", "--learning-rate")],
)
def test_learning_rates_must_be_positive(agent, flag, tmp_path, capfd, monkeypatch):
    err = refused(["train", agent, *POINT, f"{flag}=-0.001"], tmp_path, capfd, monkeypatch)
    assert f"{flag} must be positive" in err


# Case 4: goalax plot --out in a format matplotlib cannot write.


def metrics_run(root) -> str:
    """A run directory holding just what ``goalax plot`` reads."""
    run_dir = root / "runs" / "a"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(to_dict(TrainConfig())))
    rows = [{"env_steps": step, "seed": 0, "eval/success": 0.5} for step in (0, 100)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(root / "runs")


@pytest.mark.parametrize("out, fragment", [("x.txt", "has '.txt'"), ("x", "has no extension")])
def test_plot_out_of_unknown_format_is_refused(out, fragment, tmp_path, capfd, monkeypatch):
    runs = metrics_run(tmp_path)
    err = refused(["plot", runs, "--out", out], tmp_path, capfd, monkeypatch)
    assert fragment in err
    assert all(f".{ext}" in err for ext in ("png", "pdf", "svg"))


def test_plot_out_that_is_a_directory_is_refused(tmp_path, capfd, monkeypatch):
    runs = metrics_run(tmp_path)
    (tmp_path / "figures.png").mkdir()
    err = refused(["plot", runs, "--out", "figures.png"], tmp_path, capfd, monkeypatch)
    assert "is a directory" in err


@pytest.mark.parametrize("ext", ["pdf", "svg"])
def test_plot_writes_other_formats(ext, tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["plot", metrics_run(tmp_path), "--out", f"curve.{ext}"]) == 0
    assert (tmp_path / f"curve.{ext}").stat().st_size > 0


# Case 2: --resume of a run directory that does not take writes.


def read_only_below(monkeypatch, run_dir: str, errnum: int = errno.EROFS) -> None:
    """Make file creation under ``run_dir`` fail as on a read-only mount (permission bits do not
    stop root, so the tests fail the call instead)."""
    mkstemp = tempfile.mkstemp

    def refuse(*args, dir=None, **kwargs):
        if dir is not None and os.path.abspath(dir).startswith(os.path.abspath(run_dir)):
            raise OSError(errnum, os.strerror(errnum))
        return mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)


@pytest.mark.parametrize("where", ["run_dir", "checkpoints"])
def test_resume_of_a_read_only_run_dir_is_refused(where, tmp_path, capfd, monkeypatch):
    run_dir = write_run(tmp_path, lambda data: None)
    os.mkdir(os.path.join(run_dir, "checkpoints"))
    blocked = run_dir if where == "run_dir" else os.path.join(run_dir, "checkpoints")
    read_only_below(monkeypatch, blocked)
    err = refused(["train", "crl", "--resume", run_dir], tmp_path, capfd, monkeypatch)
    assert f"run directory {run_dir} is not writable ({blocked}: Read-only file system)" in err
    assert "resume the copy" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_resume_of_a_directory_without_write_permission_is_refused(tmp_path, capfd, monkeypatch):
    run_dir = write_run(tmp_path, lambda data: None)
    os.chmod(run_dir, 0o555)
    try:
        err = refused(["train", "crl", "--resume", run_dir], tmp_path, capfd, monkeypatch)
    finally:
        os.chmod(run_dir, 0o755)
    assert "is not writable" in err and "Permission denied" in err


def test_writable_run_dir_passes_and_keeps_no_probe(tmp_path):
    preflight.check_writable(str(tmp_path))
    assert list(tmp_path.iterdir()) == []


# Case 6: a training state that cannot fit in memory is refused with its size, before anything
# is allocated or written.


def test_memory_refusal_says_sizes_and_what_to_lower():
    gib = 2**30
    assert preflight.memory_refusal(5 * gib, 4 * gib, 10 * gib, "in host memory") is None
    assert preflight.memory_refusal(5 * gib, 4 * gib, None, "in host memory") is None
    text = preflight.memory_refusal(61.2 * gib, 60.1 * gib, int(21.3 * gib), "in host memory")
    assert text == (
        "the training state needs an estimated 61.2 GiB (replay buffer 60.1 GiB) but 21.3 GiB is "
        "available in host memory; lower --num-envs, --buffer-size or --num-seeds"
    )
    # The state alone may use 90% of what is available; the program needs the rest.
    assert preflight.memory_refusal(9.5 * gib, 0, 10 * gib, "on the device") is not None


def test_state_estimate_is_the_allocated_state():
    program = loop.build(TrainConfig(run=RunConfig(env="point", num_envs=4, num_seeds=2)))
    total, replay = preflight.state_bytes(program)
    state = loop.init_state(program)
    leaves = jax.tree.leaves(state)
    assert total == sum(leaf.nbytes for leaf in leaves)
    assert 0 < replay == loop.buffer_bytes(state) < total


@pytest.mark.parametrize("command", ["train", "resume"])
def test_state_larger_than_available_memory_is_refused(command, tmp_path, capfd, monkeypatch):
    monkeypatch.setattr(preflight, "available_memory", lambda devices: 2**20)
    if command == "train":
        argv = ["train", "crl", *POINT, "--num-envs", "64"]
    else:
        argv = ["train", "crl", "--resume", write_run(tmp_path, lambda data: None)]
    err = refused(argv, tmp_path, capfd, monkeypatch)
    assert "the training state needs an estimated" in err
    assert "but 1.0 MiB is available in host memory; lower --num-envs" in err


@pytest.mark.parametrize("command", [["train", "crl"], ["bench"]])
def test_a_million_envs_are_refused_fast(command, tmp_path, capfd, monkeypatch):
    """A real refusal (the point task's buffer at 10,000 steps x 1,000,000 envs is 335 GiB):
    measured from shapes, so it takes seconds instead of filling memory."""
    start = time.perf_counter()
    argv = [*command, "--env", "point", "--num-envs", "1000000"]
    err = refused(argv, tmp_path, capfd, monkeypatch)
    assert time.perf_counter() - start < 20
    assert "needs an estimated 335.3 GiB (replay buffer 335.3 GiB)" in err
