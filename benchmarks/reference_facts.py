"""Record the reference's task facts by running jaxgcrl 0.2.8's own env objects.

Runs in the reference's venv (jaxgcrl 0.2.8, jax 0.4.25, brax 0.10.5, mujoco 3.2.7), never in
goalax's: ``bash benchmarks/reference_facts.sh`` builds that venv when missing and runs this
file. Output: ``tests/data/reference_facts.json`` (numbers only), which
``tests/test_reference_fidelity.py`` holds every goalax task to. What is recorded and why:
docs/reference_fixture.md. Fact extraction itself is ``goalax/envs/facts.py``, loaded here by
path (it imports numpy and mujoco only) so that both sides read a model the same way.

Usage: python benchmarks/reference_facts.py [--out PATH] [TASK ...]   (default: every task)
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = "bash benchmarks/reference_facts.sh"
#: Seeded resets per task for the start and goal distributions.
N_RESETS = 1024
#: ``jax.random.split(PRNGKey(RESET_SEED), N_RESETS)`` are the reset keys.
RESET_SEED = 0
#: The trajectory starts from ``reset(PRNGKey(TRAJECTORY_KEY))``.
TRAJECTORY_KEY = 0
TRAJECTORY_STEPS = 100
#: ``np.random.default_rng(ACTION_SEED).uniform(-1, 1, (TRAJECTORY_STEPS, action_size))``,
#: cast to float32 (the actions are stored too).
ACTION_SEED = 19
#: Where ``--dump-xml`` saves each task's compiled MJCF (``None``: nowhere).
XML_DIR: str | None = None
#: Reference task names beyond ``legal_envs`` that its ``create_env`` builds from the name.
EXTRA_TASKS = ("ant_ball_u_maze", "ant_ball_big_maze")
#: The task whose training-loop auto-reset is recorded (cheap to compile; same wrapper for all).
AUTORESET_TASK = "reacher"
#: The reference's tasks on MJX by default.
MJX_TASKS = ("ant_push", "cheetah", "arm_reach", "arm_grasp", "arm_push_easy", "arm_push_hard")
MJX_TASKS += ("arm_binpick_easy", "arm_binpick_hard")


def load_goalax_module(relative: str):
    """A standard-library-only goalax file, loaded by path: goalax is not installed here."""
    path = os.path.join(ROOT, "goalax", *relative.split("/"))
    spec = importlib.util.spec_from_file_location("goalax_" + relative.replace("/", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


facts = load_goalax_module("envs/facts.py")
files = load_goalax_module("files.py")


def _floats(x) -> list | float:
    """Nested lists of float32 values, each written with the fewest digits that read back to
    the same float32 (the arrays are float32; more digits would only be noise)."""
    x = np.asarray(x, np.float32)
    if x.ndim == 0:
        return float(str(x))
    return [_floats(v) for v in x]


def _stats(samples: np.ndarray) -> dict:
    return {k: _floats(v) if k != "n" else v for k, v in facts.sample_stats(samples).items()}


def passed_controls(env, actions: np.ndarray) -> np.ndarray:
    """``[n, nu]``: what ``env.step`` hands to ``pipeline_step`` for each of ``actions [n, a]``.
    The physics is skipped (``pipeline_step`` returns its input), and the state is zeros shaped
    like a reset's: the reference's action maps read no state."""
    zeros = jax.tree_util.tree_map(
        lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    )

    def passed(state, action):
        box = []
        env.pipeline_step = lambda pipeline_state, a: (box.append(a), pipeline_state)[1]
        try:
            env.step(state, action)
        finally:
            del env.pipeline_step
        return box[0]

    actions = jnp.asarray(actions, jnp.float32)
    return np.asarray(jax.jit(jax.vmap(passed, in_axes=(None, 0)))(zeros, actions))


def probe_actions(action_size: int) -> np.ndarray:
    return np.array([[p] * action_size for p in facts.PROBE_ACTIONS], np.float32)


def distributions(name: str, env, model: dict, state_dim: int, goal_indices: list[int]) -> dict:
    """Start and goal statistics over ``N_RESETS`` seeded resets."""
    keys = jax.random.split(jax.random.PRNGKey(RESET_SEED), N_RESETS)
    states = jax.jit(jax.vmap(env.reset))(keys)
    obs = np.asarray(states.obs, np.float64)
    q = np.asarray(states.pipeline_state.q, np.float64)
    qd = np.asarray(states.pipeline_state.qd, np.float64)
    goal = obs[:, state_dim:]
    start = obs[:, goal_indices]
    out = {
        "goal": _stats(goal),
        "start_goal_part": _stats(start),
        "start_q": {
            joint: _stats(q[:, j["qpos"][0] : j["qpos"][0] + j["qpos"][1]])
            for joint, j in model["joints"].items()
        },
        "start_qd": {
            joint: _stats(qd[:, j["qvel"][0] : j["qvel"][0] + j["qvel"][1]])
            for joint, j in model["joints"].items()
        },
    }
    if goal.shape[1] == start.shape[1]:
        out["start_to_goal_distance"] = _stats(np.linalg.norm(start - goal, axis=1))
    if "ant_ball" in name:
        # Ant Soccer: how far the ant (torso x, y: obs 0, 1) starts from the ball.
        out["ant_to_ball_distance"] = _stats(np.linalg.norm(obs[:, :2] - start, axis=1))
    return out


def trajectory(env, action_size: int) -> dict:
    """One ``TRAJECTORY_STEPS`` rollout from ``reset(PRNGKey(TRAJECTORY_KEY))``."""
    actions = (
        np.random.default_rng(ACTION_SEED)
        .uniform(-1.0, 1.0, (TRAJECTORY_STEPS, action_size))
        .astype(np.float32)
    )
    state = jax.jit(env.reset)(jax.random.PRNGKey(TRAJECTORY_KEY))

    def step(state, action):
        state = env.step(state, action)
        return state, (state.pipeline_state.q, state.done)

    _, (q, done) = jax.jit(lambda s, a: jax.lax.scan(step, s, a))(state, jnp.asarray(actions))
    return {
        "key": TRAJECTORY_KEY,
        "action_seed": ACTION_SEED,
        "q0": _floats(state.pipeline_state.q),
        "qd0": _floats(state.pipeline_state.qd),
        "actions": _floats(actions),
        # What the env handed to the physics for each action (replays the trajectory on
        # another brax/MJX version: benchmarks/reference_drift.py).
        "passed": _floats(passed_controls(env, actions)),
        "q": _floats(q),
        "done": _floats(done),
    }


def autoreset(name: str) -> dict:
    """What follows an episode's end in the reference's training loop: its agents wrap the env
    in ``TrajectoryIdWrapper`` and brax's ``envs.training.wrap`` (whose ``AutoResetWrapper``
    restores the first reset state). Two envs, episodes of 2 steps, 5 steps of zero actions."""
    from brax import envs as brax_envs
    from jaxgcrl.envs.wrappers import TrajectoryIdWrapper
    from jaxgcrl.utils.env import create_env

    env = create_env(name)
    wrapped = brax_envs.training.wrap(TrajectoryIdWrapper(env), episode_length=2)
    state = jax.jit(wrapped.reset)(jax.random.split(jax.random.PRNGKey(0), 2))
    step = jax.jit(wrapped.step)
    goals, starts = [state.obs[:, env.state_dim :]], [state.obs[:, : env.state_dim]]
    for _ in range(5):
        state = step(state, jnp.zeros((2, env.action_size)))
        goals.append(state.obs[:, env.state_dim :])
        starts.append(state.obs[:, : env.state_dim])
    # After steps 2 and 4 the episode ended and the envs were reset.
    return {
        "task": name,
        "episode_length": 2,
        "goal_after_reset_is_the_first": bool(
            np.allclose(goals[2], goals[0]) and np.allclose(goals[4], goals[0])
        ),
        "start_after_reset_is_the_first": bool(
            np.allclose(starts[2], starts[0]) and np.allclose(starts[4], starts[0])
        ),
    }


#: Thresholds the reference's step code writes as literals instead of an attribute, read from
#: its source: ``(task patterns, success threshold or None (the attribute), success_easy
#: threshold or None (no distance threshold), where)``.
CODED_THRESHOLDS = (
    (("ant*", "humanoid", "cheetah", "simple_*"), None, 2.0, "success_easy = dist < 2.0"),
    (("humanoid_*_maze",), 0.5, 2.0, "humanoid_maze.py: success = dist < 0.5, easy < 2.0"),
    (("pusher_reacher",), 0.1, None, "pusher.py (PusherReacher.step): success = dist < 0.1"),
    (("pusher2",), 0.1, None, "pusher2.py: success = every puck's dist < 0.1"),
    (("arm_reach", "arm_push_*", "arm_binpick_*"), None, 0.3, "success_easy = dist < 0.3"),
)


def thresholds(name: str, env) -> dict:
    """The success and success_easy distance thresholds (``None``: none, e.g. ``arm_grasp``'s
    success is several conditions)."""
    success = getattr(env, "goal_reach_thresh", None)
    out = {"goal_threshold": None if success is None else float(success)}
    out["success_easy_threshold"] = None
    for patterns, coded, easy, where in CODED_THRESHOLDS:
        if any(fnmatch.fnmatch(name, p) for p in patterns):
            out["goal_threshold"] = out["goal_threshold"] if coded is None else coded
            out["success_easy_threshold"] = easy
            out["thresholds_from_code"] = where
    return out


def termination(env) -> dict:
    """The healthy torso height range when the env ends unhealthy episodes (read from the env's
    own attributes: every terminating reference task tests ``x.pos[0, 2]`` against them)."""
    on = bool(getattr(env, "_terminate_when_unhealthy", False))
    z_range = getattr(env, "_healthy_z_range", None)
    return {"healthy_z_range": _floats(z_range) if on and z_range is not None else None}


def task_facts(name: str) -> dict:
    from jaxgcrl.utils.env import create_env

    started = time.time()
    env = create_env(name)
    if XML_DIR:
        # The model as compiled (mazes are built in code), for benchmarks/reference_drift.py.
        mujoco.mj_saveLastXML(os.path.join(XML_DIR, f"{name}.xml"), env.sys.mj_model)
    key = jax.random.PRNGKey(0)
    state = jax.jit(env.reset)(key)
    state_dim = int(env.state_dim)
    goal_indices = [int(i) for i in np.asarray(env.goal_indices)]
    action_size = int(env.action_size)
    model = facts.model_facts(env.sys.mj_model)
    physics = facts.system_facts(env.sys, env.backend)
    passed = passed_controls(env, probe_actions(action_size))
    out = {
        "observation_size": int(state.obs.shape[-1]),
        "state_dim": state_dim,
        "goal_size": int(state.obs.shape[-1]) - state_dim,
        "goal_indices": goal_indices,
        "action_size": action_size,
        "backend": env.backend,
        "dt": _floats(env.dt),
        "n_frames": int(env._n_frames),
        "timestep": physics["timestep"],
        "ctrlrange": physics["ctrlrange"],
        "gear": physics["gear"],
        "opt": physics["opt"],
        "passed_control": {
            str(p): _floats(c) for p, c in zip(facts.PROBE_ACTIONS, passed, strict=True)
        },
        "applied_control": {
            str(p): facts.applied_control(c, physics["ctrlrange"])
            for p, c in zip(facts.PROBE_ACTIONS, passed, strict=True)
        },
        **thresholds(name, env),
        "termination": termination(env),
        "model": model,
        "distributions": distributions(name, env, model, state_dim, goal_indices),
        "trajectory": trajectory(env, action_size),
    }
    print(f"{name}: {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    return out


def header(argv: list[str]) -> dict:
    versions = {
        pkg: importlib.metadata.version(pkg)
        for pkg in ("jaxgcrl", "jax", "jaxlib", "brax", "mujoco", "mujoco-mjx", "numpy")
    }
    return {
        "what": "facts recorded by running jaxgcrl 0.2.8's env objects (docs/reference_fixture.md)",
        "command": COMMAND,
        "generator": "benchmarks/reference_facts.py " + " ".join(argv),
        "versions": versions,
        "python": platform.python_version(),
        "platform": jax.default_backend(),
        "n_resets": N_RESETS,
        "reset_keys": f"jax.random.split(jax.random.PRNGKey({RESET_SEED}), {N_RESETS})",
        "trajectory": (
            f"reset(PRNGKey({TRAJECTORY_KEY})), then {TRAJECTORY_STEPS} env.step calls with "
            f"np.random.default_rng({ACTION_SEED}).uniform(-1, 1, (steps, action_size)) as "
            "float32; q is pipeline_state.q after every step"
        ),
        "probe_actions": list(facts.PROBE_ACTIONS),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*")
    default_out = os.path.join(ROOT, "tests", "data", "reference_facts.json")
    parser.add_argument("--out", default=default_out)
    parser.add_argument("--dump-xml", help="also save each task's compiled MJCF in this folder")
    args = parser.parse_args()
    global XML_DIR
    XML_DIR = args.dump_xml and os.path.abspath(args.dump_xml)
    import jaxgcrl
    from jaxgcrl.utils.env import legal_envs

    # The reference's arm tasks open their MJCF by a path relative to its package directory.
    os.chdir(os.path.dirname(jaxgcrl.__file__))
    if XML_DIR:
        # Relative mesh folders in the saved MJCF are relative to the reference's assets.
        os.makedirs(XML_DIR, exist_ok=True)
        with open(os.path.join(XML_DIR, "assets_dir"), "w") as f:
            f.write(os.path.abspath(os.path.join("envs", "assets")))
    names = args.tasks or sorted([*legal_envs, *EXTRA_TASKS], key=_slow_last)
    tasks = {}
    if args.tasks and os.path.exists(args.out):
        with open(args.out) as f:
            tasks = json.load(f)["tasks"]
    behaviour = {"autoreset": autoreset(AUTORESET_TASK)}
    for name in names:
        try:
            tasks[name] = task_facts(name)
        except Exception as error:  # noqa: BLE001  (a task the reference cannot build is a fact)
            reason = f"{type(error).__name__}: {error}".splitlines()[0][:300]
            tasks[name] = {"skipped": reason}
            print(f"{name}: skipped ({reason})", file=sys.stderr, flush=True)
        write(args.out, tasks, behaviour)


def _slow_last(name: str) -> bool:
    """MJX tasks (minutes of compiling each on CPU) after the others."""
    return name in MJX_TASKS


def write(path: str, tasks: dict, behaviour: dict) -> None:
    """The fixture so far (after every task, so that a long run can be read while it runs)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fixture = {"header": header(sys.argv[1:]), "behaviour": behaviour}
    fixture["tasks"] = dict(sorted(tasks.items()))
    files.replace_json(path, fixture)


if __name__ == "__main__":
    main()
