"""README.md's commands, as written, in README's order.

Covered: every line of the "## Quickstart" bash block and the "### From Python" block. Not
covered: "## Install" (pip), "### On a GPU" (needs a GPU and 10M steps) and "## Tests"
(``pytest -q``). The Quickstart's own ``pytest -q`` line is skipped: it is this suite, and
running it from inside itself would recurse.

Every line maps to a handler that runs it and checks what README promises of it; a line no
handler knows fails ``test_every_readme_command_has_a_handler`` with the line, so README cannot
gain a command this file does not run. The only substitution is the run directory: README writes
``runs/crl-reacher-s0-...`` for the directory an earlier ``goalax train`` line created, and the
test puts in the directory that line really created (found by glob under ``runs/``).

``-m slow`` runs the lines literally (shell lines in subprocesses, the Python block with
``python -c``) in a temporary directory: README's budgets, so it trains for an hour and more on 2
CPU cores. The default suite runs the same sequence in-process with small-run flags appended to
every ``train``/``sweep``/``bench`` line (flags given later win) and ``--env point``, so the
commands' plumbing is checked in seconds while the tasks' physics is the job of
tests/test_lifecycle.py; the Python block runs with ``goalax.train`` shrinking its config the
same way.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field

import imageio.v2 as imageio
import pytest

import goalax
from goalax import envs
from goalax.cli import main

README = os.path.join(os.path.dirname(__file__), "..", "README.md")
PLACEHOLDER = re.compile(r"runs/[\w-]+-\.\.\.")
BENCH_KEYS = {"env_steps_per_s", "grad_steps_per_s", "compile_s", "peak_rss_mb", "device"}

#: The small run appended to every line in the default suite: tests/test_reliability.py's
#: config on ``point``, whose programs the suite compiles anyway.
SMALL_RUN = dict(
    env="point", num_envs=8, unroll_length=10, episode_length=20, batch_size=32,
    buffer_size=320, prefill_steps=25, utd_ratio=0.05, num_eval_envs=4, total_env_steps=800,
    eval_every=400,
)  # fmt: skip
SMALL_AGENT = {
    "crl": dict(width=32, actor_width=32, repr_dim=16),
    "sac": dict(width=32, actor_width=32),
}


def as_flags(values: dict) -> list[str]:
    return [x for k, v in values.items() for x in ("--" + k.replace("_", "-"), str(v))]


# --- extraction ----------------------------------------------------------------------------------


def code_block(text: str, heading: str, language: str) -> str:
    """The first ``language`` fenced block after ``heading``."""
    start = text.index(heading + "\n")
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, start)
    assert match, f"no ```{language} block after {heading!r} in README.md"
    return match.group(1)


def quickstart_lines(text: str) -> list[str]:
    """The Quickstart block's commands, comments stripped."""
    block = code_block(text, "## Quickstart", "bash")
    return [
        " ".join(shlex.split(line, comments=True)) for line in block.splitlines() if line.strip()
    ]


def python_block(text: str) -> str:
    return code_block(text, "### From Python", "python")


# --- the run of a README sequence ----------------------------------------------------------------


@dataclass
class Session:
    """One pass over README in ``cwd``: ``literal`` (README's budgets, subprocesses) or small."""

    cwd: str
    literal: bool
    capsys: pytest.CaptureFixture | None = None
    created: dict[str, list[str]] = field(default_factory=dict)  # README prefix -> run dirs

    def run(self, argv: list[str]) -> str:
        """Run ``goalax ARGV``; exit 0 required; its stdout."""
        if self.literal:
            done = subprocess.run(
                [os.path.join(os.path.dirname(sys.executable), "goalax"), *argv],
                cwd=self.cwd,
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, f"goalax {shlex.join(argv)}: {done.stderr[-3000:]}"
            return done.stdout
        self.capsys.readouterr()
        code = main(argv)
        out, err = self.capsys.readouterr()
        assert code == 0, f"goalax {shlex.join(argv)}: {err[-3000:]}"
        return out

    def runs(self) -> set[str]:
        root = os.path.join(self.cwd, "runs")
        return {f"runs/{name}" for name in os.listdir(root)} if os.path.isdir(root) else set()

    def substitute(self, argv: list[str]) -> list[str]:
        """README's ``runs/<agent>-<env>-s<seed>-...``: the first directory an earlier train line
        of that agent, env and seed created."""
        out = []
        for arg in argv:
            if PLACEHOLDER.fullmatch(arg):
                prefix = arg[: -len("...")]
                assert self.created.get(prefix), f"{arg}: no earlier README line created one"
                arg = self.created[prefix][0]
            out.append(arg)
        return out


def flag(argv: list[str], name: str, default: str) -> str:
    """The value of ``name``'s last occurrence (the one that counts)."""
    values = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == name]
    return values[-1] if values else default


def small(argv: list[str]) -> list[str]:
    """Flags appended to a train/sweep/bench line in the default suite: the small run, and 2
    seeds for a line asking for several (tests/test_training.py compiles that program)."""
    agent = argv[1] if argv[0] in ("train", "sweep") else flag(argv, "--agent", "crl")
    seeds = ["--num-seeds", "2"] if "--num-seeds" in argv else []
    return as_flags(SMALL_RUN) + as_flags(SMALL_AGENT[agent]) + seeds


def handle_train(s: Session, argv: list[str]) -> None:
    """A run directory ``runs/<agent>-<env>-s<seed>-<stamp>`` with one row per seed at the
    budget, and the two closing lines (final eval/success, the directory)."""
    agent = argv[1]
    prefix = f"runs/{agent}-{flag(argv, '--env', '?')}-s{flag(argv, '--seed', '0')}-"
    before = s.runs()
    argv = s.substitute(argv) + ([] if s.literal else small(argv))
    out = s.run(argv)
    lines = out.strip().splitlines()
    assert re.fullmatch(r"final env_steps [\d,]+: eval/success [\d.]+, eval/dist [\d.]+", lines[-2])
    if "--resume" in argv:  # the same run continued: README's run is finished, nothing to train
        run_dir = flag(argv, "--resume", "?")
        assert lines[-1] == f"run directory: {run_dir}", out
        assert "nothing to train" in out, out
        return
    (run_dir,) = s.runs() - before
    assert lines[-1] == f"run directory: {run_dir}"
    if s.literal:  # found by README's glob
        assert run_dir.startswith(prefix), (run_dir, prefix)
    s.created.setdefault(prefix, []).append(run_dir)
    with open(os.path.join(s.cwd, run_dir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    budget = rows[-1]["env_steps"]
    with open(os.path.join(s.cwd, run_dir, "config.json")) as f:
        assert budget == json.load(f)["run"]["total_env_steps"]
    seeds = int(flag(argv, "--num-seeds", "1"))
    assert sorted(r["seed"] for r in rows if r["env_steps"] == budget) == list(range(seeds))


def handle_envs(s: Session, argv: list[str]) -> None:
    """The table lists every task with its budget column."""
    out = s.run(argv)
    assert "budget" in out
    for name in envs.names():
        assert re.search(rf"\b{name}\b", out), name


def handle_eval(s: Session, argv: list[str]) -> None:
    """The table: which run, agent, task and step, then a row per seed."""
    run_dir = s.substitute(argv)[1]
    out = s.run(s.substitute(argv) + ([] if s.literal else ["--episodes", "2"]))
    with open(os.path.join(s.cwd, run_dir, "config.json")) as f:
        config = json.load(f)
    assert out.startswith(f"{run_dir}: {config['agent_name']} on {config['run']['env']} at env")
    header = out.splitlines()[1].split()
    assert header[:3] == ["success", "success_easy", "success_at_end"], out
    assert re.search(r"^seed 0\s+[\d.]+", out, re.M), out


def handle_render(s: Session, argv: list[str]) -> None:
    """An mp4 at ``--out`` with the frame count it reports."""
    argv = s.substitute(argv)
    out_path = os.path.join(s.cwd, flag(argv, "--out", "?"))
    said = s.run(argv + ([] if s.literal else ["--steps", "3", "--width", "48", "--height", "32"]))
    frames = [frame for frame in imageio.get_reader(out_path)]  # list() trusts len(): inf
    assert f"({len(frames)} frames)" in said and len(frames) >= 2, said


def handle_plot(s: Session, argv: list[str]) -> None:
    """A PNG at ``--out`` and the table of final values."""
    out = s.run(argv)
    path = flag(argv, "--out", "?")
    assert out.strip().endswith(f"wrote {path}")
    image = imageio.imread(os.path.join(s.cwd, path))
    assert image.ndim == 3 and image[..., :3].std() > 5


def handle_sweep(s: Session, argv: list[str]) -> None:
    """sweep.json: the grid, and every combination done."""
    before = s.runs()
    s.run(argv + ([] if s.literal else small(argv)))
    (out,) = {d for d in s.runs() - before if os.path.basename(d).startswith("sweep-")}
    with open(os.path.join(s.cwd, out, "sweep.json")) as f:
        manifest = json.load(f)
    grid = dict(argv[i + 1].split("=", 1) for i, arg in enumerate(argv) if arg == "--grid")
    grid = {name: values.split(",") for name, values in grid.items()}
    assert manifest["grid"] == grid
    combinations = 1
    for values in grid.values():
        combinations *= len(values)
    assert [r["status"] for r in manifest["runs"]] == ["done"] * combinations


def handle_bench(s: Session, argv: list[str]) -> None:
    """One JSON object with the keys README names."""
    out = s.run(argv + ([] if s.literal else small(argv) + ["--iterations", "1"]))
    report = json.loads(out)
    assert set(report) >= BENCH_KEYS, sorted(report)
    assert report["env_steps_per_s"] > 0 and report["compile_s"] >= 0


def skip_this_suite(s: Session, argv: list[str]) -> None:
    """``pytest -q``: this suite itself (running it from here would recurse)."""


HANDLERS = {
    "goalax train": handle_train,
    "goalax envs": handle_envs,
    "goalax eval": handle_eval,
    "goalax render": handle_render,
    "goalax plot": handle_plot,
    "goalax sweep": handle_sweep,
    "goalax bench": handle_bench,
}


def handler(line: str):
    """The handler of a Quickstart line, or None."""
    if line == "pytest -q":
        return skip_this_suite
    words = line.split()
    return HANDLERS.get(" ".join(words[:2])) if words and words[0] == "goalax" else None


def run_python_block(s: Session, block: str, monkeypatch) -> None:
    """The block prints the final eval/success and the run directory, which holds the run."""
    if s.literal:
        done = subprocess.run(
            [sys.executable, "-c", block], cwd=s.cwd, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
        out = done.stdout
    else:
        train = goalax.train

        def small_train(config):
            run = dataclasses.replace(config.run, **SMALL_RUN, quiet=True)
            agent = dataclasses.replace(config.agent, **SMALL_AGENT[config.agent_name])
            return train(dataclasses.replace(config, run=run, agent=agent))

        monkeypatch.setattr(goalax, "train", small_train)
        s.capsys.readouterr()
        exec(compile(block, "README.md (From Python)", "exec"), {})
        out = s.capsys.readouterr().out
    success, run_dir = out.strip().splitlines()[-1].split()
    assert 0.0 <= float(success) <= 1.0
    assert run_dir.startswith("runs/crl-reacher-s0-") or not s.literal, run_dir
    assert os.path.isfile(os.path.join(s.cwd, run_dir, "metrics.jsonl"))


def run_readme(s: Session, monkeypatch) -> None:
    with open(README) as f:
        text = f.read()
    for line in quickstart_lines(text):
        handler(line)(s, shlex.split(line)[1:])
    run_python_block(s, python_block(text), monkeypatch)


# --- tests ---------------------------------------------------------------------------------------


def test_every_readme_command_has_a_handler():
    """Each Quickstart line maps to a handler (a new command fails here, named), and the
    extraction finds the commands README is known to hold."""
    with open(README) as f:
        text = f.read()
    lines = quickstart_lines(text)
    unknown = [line for line in lines if handler(line) is None]
    assert not unknown, f"README Quickstart lines this file does not run: {unknown}"
    assert "goalax train crl --env reacher" in lines and "pytest -q" in lines
    assert "goalax.train(" in python_block(text)


def test_an_unknown_command_has_no_handler():
    """The coverage check can fail: lines README might gain are not silently accepted."""
    for line in ("goalax export runs/x", "pytest -q -m slow", "python -m goalax.cli envs"):
        assert handler(line) is None, line


@pytest.mark.filterwarnings("ignore:os.fork")  # imageio's reader starts ffmpeg (fork + exec)
def test_readme_sequence_with_small_runs(tmp_path, monkeypatch, capsys):
    """README's Quickstart and From Python, in order, in-process, each train/sweep/bench line
    with a small run on ``point`` appended: every line exits 0 with what README promises."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MUJOCO_GL", "egl")  # render sets it process-wide; point needs no GL
    run_readme(Session(str(tmp_path), literal=False, capsys=capsys), monkeypatch)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:os.fork")
def test_readme_sequence_as_written(tmp_path, monkeypatch):
    """README's Quickstart and From Python exactly as written (README's budgets), in order, each
    shell line in its own process."""
    run_readme(Session(str(tmp_path), literal=True), monkeypatch)
