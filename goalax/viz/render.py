"""Pictures of tasks: MuJoCo offscreen frames (MP4/PNG), a matplotlib top view for tasks without
a MuJoCo model (the pure-JAX ``point``), and brax's HTML viewer.

The OpenGL platform is chosen by the CLI (``MUJOCO_GL``) before mujoco is imported; this module
only reads it to explain a failure. A rollout is one jitted ``lax.scan`` over a single env; frames
are drawn on the host from its stacked states.
"""

from __future__ import annotations

import argparse
import ctypes.util
import os
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from goalax.errors import ConfigError

if TYPE_CHECKING:  # importing the envs imports mujoco, which must wait for the CLI's MUJOCO_GL
    from goalax.envs.base import GoalEnv, State

#: Translucent red: the goal's success region (a sphere of radius ``goal_threshold``).
GOAL_RGBA = np.array([0.9, 0.15, 0.1, 0.45], dtype=np.float32)
#: Body names of goal markers a task draws in its own physics (reacher's ``target``).
PHYSICS_GOAL_BODIES = ("target", "goal")
GL_HELP = (
    "install the EGL libraries (apt-get install libegl1) or OSMesa (apt-get install libosmesa6, "
    "then MUJOCO_GL=osmesa)"
)


class RenderError(ConfigError):
    """Rendering cannot run here (no OpenGL, a task without a model for this output, ...)."""


def choose_gl_backend(requested: str | None) -> tuple[str, str | None]:
    """``MUJOCO_GL`` value to use and an optional note for the user.

    An explicit choice is kept. Otherwise EGL (headless, GPU or Mesa) when its library is present,
    else OSMesa (software) with a note, else EGL so that the failure names what to install.
    """
    if requested:
        return requested, None
    if ctypes.util.find_library("EGL"):
        return "egl", None
    if ctypes.util.find_library("OSMesa"):
        return "osmesa", "EGL libraries not found; rendering with OSMesa (software, slower)"
    return "egl", None


def has_mujoco_model(env: GoalEnv) -> bool:
    return env.mujoco_model() is not None


def drawing_model(env: GoalEnv) -> Any:
    """The MuJoCo model to draw: the task's ``render_model()`` when it has one (a model with
    meshes that its physics leaves out, same joints), else its physics model."""
    return env.render_model() if hasattr(env, "render_model") else env.mujoco_model()


def goal_marker_position(env: GoalEnv, goal: np.ndarray) -> np.ndarray | None:
    """World ``[3]`` position for a goal marker, or None when no marker should be drawn.

    A task may define ``goal_marker(goal) -> [3] | None`` to decide. Otherwise: no marker when the
    task draws its goal in the physics (a body named ``target``/``goal``); a 2-D goal is an xy
    position on the floor, a 3-D goal an xyz position; other goal spaces get no marker.
    """
    if hasattr(env, "goal_marker"):
        position = env.goal_marker(goal)
        return None if position is None else np.asarray(position, np.float64)
    if has_mujoco_model(env):
        model = env.mujoco_model()
        body_names = {model.body(i).name for i in range(model.nbody)}
        if body_names & set(PHYSICS_GOAL_BODIES):
            return None
    goal = np.asarray(goal, np.float64)
    if goal.shape == (2,):
        return np.array([goal[0], goal[1], env.goal_threshold])
    if goal.shape == (3,):
        return goal
    return None


def pick_camera(model: Any, camera: str | None) -> int | None:
    """Camera id: ``camera`` by name, or (None) the tracking camera; None means a free camera."""
    import mujoco

    names = [model.camera(i).name for i in range(model.ncam)]
    if camera == "free":
        return None
    if camera is not None:
        if camera not in names:
            raise ConfigError(
                f"--camera {camera}: the model has {', '.join(names) or 'no named'} cameras; "
                "use one of them or 'free'"
            )
        return names.index(camera)
    if "track" in names:
        return names.index("track")
    tracking = (mujoco.mjtCamLight.mjCAMLIGHT_TRACK, mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM)
    for i in range(model.ncam):
        if model.cam_mode[i] in tracking:
            return i
    return None


class MujocoView:
    """Draws states of a MuJoCo task with ``mujoco.Renderer``.

    The task's ``qpos`` of each state is written to ``MjData.qpos`` and ``mj_forward`` places
    bodies and tracking cameras.
    """

    def __init__(self, env: GoalEnv, width: int, height: int, camera: str | None = None):
        import mujoco

        self._mujoco = mujoco
        self.env = env
        model = drawing_model(env)
        # The offscreen buffer must hold the frame; this only changes render settings.
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        self.model, self.data = model, mujoco.MjData(model)
        self.camera_id = pick_camera(model, camera)
        try:
            self.renderer = mujoco.Renderer(model, height=height, width=width)
        except Exception as err:  # each GL platform fails with its own exception type
            gl = os.environ.get("MUJOCO_GL", "unset")
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise RenderError(
                f"cannot start offscreen OpenGL (MUJOCO_GL={gl}: {reason}); {GL_HELP}"
            ) from err
        self.free_camera = mujoco.MjvCamera()
        mujoco.mjv_defaultFreeCamera(model, self.free_camera)
        self.free_camera.distance = 1.2 * model.stat.extent
        self.free_camera.elevation = -70.0
        self.free_camera.azimuth = 90.0

    def _draw_marker(self, goal: np.ndarray) -> None:
        position = goal_marker_position(self.env, goal)
        scene = self.renderer.scene
        if position is None or scene.ngeom >= scene.maxgeom:
            return
        radius = float(self.env.goal_threshold)
        self._mujoco.mjv_initGeom(
            scene.geoms[scene.ngeom],
            int(self._mujoco.mjtGeom.mjGEOM_SPHERE),
            np.array([radius, radius, radius]),
            np.asarray(position, np.float64),
            np.eye(3).reshape(-1),
            GOAL_RGBA,
        )
        scene.ngeom += 1

    def frame(self, q: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """``[height, width, 3]`` uint8 image of positions ``q [nq]`` with the goal marked."""
        self.data.qpos[:] = q
        self._mujoco.mj_forward(self.model, self.data)
        camera = self.free_camera if self.camera_id is None else self.camera_id
        self.renderer.update_scene(self.data, camera=camera)
        self._draw_marker(goal)
        return self.renderer.render().copy()

    def episode(self, states: State) -> Iterator[np.ndarray]:
        """Frames of stacked states (leaves ``[T, ...]``)."""
        q = np.asarray(jax.vmap(self.env.qpos)(states.pipeline_state))
        goals = np.asarray(states.info["goal"])
        for t in range(q.shape[0]):
            yield self.frame(q[t], goals[t])

    def close(self) -> None:
        self.renderer.close()


class PlanarView:
    """Matplotlib top view for tasks without a MuJoCo model: the achieved goal's first two
    entries (with its trail) and the goal's success region."""

    def __init__(self, env: GoalEnv, width: int, height: int):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Circle

        if env.goal_dim < 2:
            raise RenderError(f"cannot draw a {env.goal_dim}-D goal space in a top view")
        self.env = env
        self.figure = Figure(figsize=(width / 100, height / 100), dpi=100)
        self.canvas = FigureCanvasAgg(self.figure)
        self.ax = self.figure.add_axes((0.08, 0.08, 0.88, 0.88))
        self.ax.set_aspect("equal")
        self.ax.grid(alpha=0.3)
        self.ax.tick_params(labelsize=6)
        self.goal = Circle((0, 0), env.goal_threshold, color=GOAL_RGBA[:3], alpha=0.45)
        self.ax.add_patch(self.goal)
        (self.trail,) = self.ax.plot([], [], color="tab:blue", alpha=0.5, linewidth=1)
        (self.agent,) = self.ax.plot([], [], "o", color="tab:blue", markersize=6)

    def episode(self, states: State) -> Iterator[np.ndarray]:
        obs = np.asarray(states.obs)
        achieved = np.asarray(self.env.achieved_goal(obs[:, : self.env.state_dim]))[:, :2]
        goals = np.asarray(states.info["goal"])[:, :2]
        limit = 1.1 * max(1.0, float(np.abs(np.concatenate([achieved, goals])).max()))
        self.ax.set_xlim(-limit, limit)
        self.ax.set_ylim(-limit, limit)
        for t in range(achieved.shape[0]):
            self.goal.center = tuple(goals[t])
            self.trail.set_data(achieved[: t + 1, 0], achieved[: t + 1, 1])
            self.agent.set_data(achieved[t : t + 1, 0], achieved[t : t + 1, 1])
            self.canvas.draw()
            yield np.asarray(self.canvas.buffer_rgba())[..., :3].copy()

    def close(self) -> None:
        self.figure.clear()


def make_view(env: GoalEnv, width: int, height: int, camera: str | None = None):
    """A MujocoView for tasks with a MuJoCo model, else a PlanarView."""
    if has_mujoco_model(env):
        return MujocoView(env, width, height, camera)
    if camera is not None:
        raise ConfigError("--camera applies only to MuJoCo tasks; this task has a 2-D view")
    return PlanarView(env, width, height)


def rollout(env: GoalEnv, act: Callable, key: jax.Array, steps: int) -> State:
    """One episode from a fresh reset: states with leaves ``[steps + 1, ...]`` (reset first).

    ``act(obs [obs_dim], key) -> action``. Unbatched; jit it with ``steps`` static.
    """
    from goalax.training.rollout import play  # imports the envs: after the CLI set MUJOCO_GL

    reset_key, act_key = jax.random.split(key)
    first = env.reset(reset_key)
    _, rest = play(env, act, first, act_key, steps, batched=False)
    return jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, rest)


def until_termination(states: State) -> State:
    """Cut stacked states after the first true termination (later steps are meaningless)."""
    done = np.asarray(states.done) > 0
    length = int(np.argmax(done)) + 1 if done.any() else done.shape[0]
    return jax.tree.map(lambda x: np.asarray(x)[:length], states)


def env_fps(env: GoalEnv) -> int:
    """Real-time frame rate of one env step (clipped to 1-60 frames per second)."""
    dt = float(getattr(env, "dt", 0.05))
    return int(np.clip(round(1.0 / dt), 1, 60))


def write_video(frames: Iterator[np.ndarray], path: str, fps: int) -> int:
    """Stream frames to an MP4 (or GIF) with imageio's bundled ffmpeg; returns the frame count."""
    import imageio.v2 as imageio

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    count = 0
    with warnings.catch_warnings():
        # JAX warns on any fork; ffmpeg is started with fork+exec, which is safe.
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called")
        if path.lower().endswith(".gif"):
            writer = imageio.get_writer(path, mode="I", duration=1000 / fps, loop=0)
        else:
            writer = imageio.get_writer(path, fps=fps, macro_block_size=2)
        with writer:
            for frame in frames:
                writer.append_data(frame)
                count += 1
    return count


def write_html(env: GoalEnv, states: list[State], path: str) -> None:
    """brax's three.js viewer page of ``states`` (stacked, per episode); needs a CDN to view."""
    from brax.io import html

    if not hasattr(env, "sys"):
        raise RenderError("--html needs a brax physics task; this task has no brax system")
    pipeline_states = [
        jax.tree.map(lambda x, t=t: x[t], episode.pipeline_state)
        for episode in states
        for t in range(np.asarray(episode.done).shape[0])
    ]
    page = html.render(env.sys, pipeline_states)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)


def snapshot(
    env: GoalEnv, path: str, key: jax.Array, width: int, height: int, camera: str | None = None
) -> np.ndarray:
    """PNG of the task right after ``reset(key)`` with its goal marked; returns the image.

    ``camera``: a camera name of the model, ``"free"`` (top-down overview, e.g. of a whole maze) or
    None (the task's tracking camera)."""
    import imageio.v2 as imageio

    view = make_view(env, width, height, camera)  # a bad --camera fails before any compile
    state = jax.tree.map(lambda x: np.asarray(x)[None], jax.jit(env.reset)(key))
    try:
        image = next(iter(view.episode(state)))
    finally:
        view.close()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    imageio.imwrite(path, image)
    return image


def render_run(
    run: Any,
    out: str,
    *,
    key: jax.Array,
    episodes: int = 1,
    steps: int | None = None,
    seed_index: int = 0,
    width: int = 320,
    height: int = 240,
    camera: str | None = None,
    html: bool = False,
) -> dict:
    """Roll out a loaded run's deterministic policy and write a video (and/or the HTML page).

    ``out`` ending in ``.html`` writes only the page; ``html=True`` writes it next to the video
    as well. Each episode starts from a fresh reset and stops at ``steps`` (default: the run's
    episode length) or at a true termination; every episode contributes ``length + 1`` frames
    (its reset state first). Returns what was written and each episode's success.
    """
    env = run.env
    steps = steps or env.episode_length
    params = run.seed_params(seed_index)

    def one_episode(params, episode_key):
        return rollout(env, lambda obs, k: run.act(params, obs, k, True), episode_key, steps)

    roll = jax.jit(one_episode)
    trajectories = [until_termination(roll(params, k)) for k in jax.random.split(key, episodes)]
    report: dict[str, Any] = {
        "success": [float(np.asarray(t.metrics["success"]).max()) for t in trajectories],
    }
    html_only = out.lower().endswith(".html")
    if not html_only:
        view = make_view(env, width, height, camera)
        try:
            frames = (frame for states in trajectories for frame in view.episode(states))
            report["frames"] = write_video(frames, out, env_fps(env))
        finally:
            view.close()
        report["video"] = out
    if html or html_only:
        page = out if html_only else os.path.splitext(out)[0] + ".html"
        write_html(env, trajectories, page)
        report["html"] = page
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``goalax render`` flags."""
    parser.description = (
        "Video of a run's deterministic policy (MP4; --html adds brax's viewer page), or with "
        "--env NAME a PNG snapshot of a task after reset with its goal marked."
    )
    parser.add_argument(
        "run_dir", nargs="?", help="run directory, or one saved policy folder (RUN/policies/<step>)"
    )
    parser.add_argument("--env", default=None, help="snapshot this task instead (no run needed)")
    parser.add_argument("--out", default=None, help=".mp4/.gif video, .html page or .png snapshot")
    parser.add_argument("--episodes", type=int, default=1, help="episodes, one after another")
    parser.add_argument("--steps", type=int, default=None, help="steps per episode (default: run)")
    parser.add_argument("--seed-index", type=int, default=0, help="which seed of the run")
    parser.add_argument("--key", type=int, default=0, help="random key of resets and goals")
    parser.add_argument("--width", type=int, default=320, help="frame width in pixels")
    parser.add_argument("--height", type=int, default=240, help="frame height in pixels")
    parser.add_argument("--camera", default=None, help="camera name or 'free' (default: tracking)")
    parser.add_argument("--html", action="store_true", help="also write brax's HTML viewer page")


def check_args(args: argparse.Namespace) -> None:
    """Reject an impossible command line before anything is loaded."""
    out = (args.out or "").lower()
    if args.env is not None:
        if args.run_dir is not None:
            raise ConfigError("give either a run directory or --env NAME, not both")
        if not out.endswith(".png"):
            raise ConfigError("--env NAME writes a snapshot: pass --out NAME.png")
    elif args.run_dir is None:
        raise ConfigError("name a run directory (goalax render RUN_DIR --out run.mp4) or --env")
    elif out and not out.endswith((".mp4", ".gif", ".html")):
        raise ConfigError(f"--out {args.out}: use a .mp4 or .gif video or a .html page")
    sizes = {"--episodes": args.episodes, "--width": args.width, "--height": args.height}
    if args.steps is not None:
        sizes["--steps"] = args.steps
    for flag, value in sizes.items():
        if value < 1:
            raise ConfigError(f"{flag} must be a positive integer, got {value}")


def run_command(args: argparse.Namespace) -> str:
    """Write the snapshot, video or page; returns what was written."""
    import goalax
    from goalax import envs

    check_args(args)
    key = jax.random.PRNGKey(args.key)
    if args.env is not None:
        try:
            env = envs.make(args.env)
        except ValueError as err:  # UnknownEnvError lists the closest names
            raise ConfigError(str(err)) from err
        snapshot(env, args.out, key, args.width, args.height, args.camera)
        return f"wrote {args.out}"
    run = goalax.load(args.run_dir)
    num_seeds = run.config.run.num_seeds
    if not 0 <= args.seed_index < num_seeds:
        raise ConfigError(f"--seed-index {args.seed_index}: the run has {num_seeds} seed(s)")
    out = args.out or os.path.join(args.run_dir, "videos", f"step{run.env_steps}.mp4")
    report = render_run(
        run,
        out,
        key=key,
        episodes=args.episodes,
        steps=args.steps,
        seed_index=args.seed_index,
        width=args.width,
        height=args.height,
        camera=args.camera,
        html=args.html,
    )
    lines = []
    if "video" in report:
        lines.append(f"wrote {report['video']} ({report['frames']} frames)")
    if "html" in report:
        lines.append(
            f"wrote {report['html']} (brax viewer: loads three.js from a CDN at view time)"
        )
    lines.append("success per episode: " + " ".join(f"{s:g}" for s in report["success"]))
    return "\n".join(lines)
