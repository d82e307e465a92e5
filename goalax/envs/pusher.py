"""Pusher tasks: ``pusher_easy``, ``pusher_hard``, ``pusher_reacher`` and ``pusher2``.

The reference's tasks (JaxGCRL 0.2.8 ``pusher*``) on goalax's own ``assets/pusher.xml``: a 7-joint
arm over a table, no gravity, with pucks and goal markers added here. Each puck and each goal is
a body on two slide joints (``y`` then ``x``); a puck collides with the arm's wrist only, a goal
with nothing. The one-puck tasks put both bodies' homes at ``(0.45, -0.05)`` (joint values are
offsets from it), ``pusher2`` at the origin (joint values are world coordinates), as the
reference's two models do. ``pusher_reacher`` keeps the puck, parked out of reach.

state_obs: arm ``q [7]``, the wrist ``x, y, z [3]``, each puck's ``x, y, z [3]``, arm ``qd [7]``
(20 for one puck, 23 for two; the reacher has no puck and puts the wrist last, 17, so that its
goal part is entries 14-16). The "wrist" is the centre of mass of ``r_wrist_flex_link``, the
point the reference observes as the arm's tip; the fingers reach 0.1 beyond it. Goals are the
goal markers' centres, 0.048 below a puck's centre (as the reference's: a puck can come no
closer to its goal than that). Goal parts: the puck (10-12), both pucks (10-15), the wrist.

Resets, as the reference's (offsets ``(y, x)`` from the home; all uniform):
- arm at ``q = 0`` with joint velocities in ``±0.005``;
- ``pusher_easy`` / ``pusher_hard``: puck in ``y [-0.3, 0] x [-0.2, 0.2]``; goal in
  ``y [-0.55, -0.25] x [-0.2, 0.2]`` (easy) or ``y [-0.65, 0.35] x [-0.55, 0.45]`` (hard);
- ``pusher_reacher``: goal in ``y [-0.3, 0] x [-0.2, 0.2]``;
- ``pusher2`` (world coordinates): pucks in ``y [-0.35, -0.05]`` and ``x [0.25, 0.45]`` /
  ``[0.45, 0.65]``; goals in ``y [-0.7, 0.3]``, the same ``y`` for both, and ``x [-0.15, 0.375]``
  / ``[0.375, 0.9]``. ``dist`` is the larger of the two puck distances, so ``success`` means
  every puck within 0.1 (the reference's success).
A puck drawn within 0.17 of its goal has its offset scaled up to make that distance 0.17 (as the
reference does; along the offset's ray, so the puck may still end up closer).

Physics per backend (0.01 s x 5 for both): ``generalized`` (the default, the reference's) steps
brax's system of the file (``Pusher``); ``mjx`` steps the same model with MuJoCo XLA on goalax's
own base (``MjxPusher``), compiled as the reference's loader and pipeline treat it
(``mjx_model``). Actions in [-1, 1] are the motors' controls on both (range [-2, 2], gear 1).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from brax import math

from goalax.envs import notices
from goalax.envs.base import State, goal_metrics
from goalax.envs.brax_base import GoalPipelineEnv
from goalax.envs.mjx_base import MjxGoalEnv

ASSET = os.path.join(os.path.dirname(__file__), "assets", "pusher.xml")
PUCK_Z = -0.275
GOAL_Z = -0.323
#: A puck closer than this to its goal is moved away at reset.
MIN_PUCK_GOAL = 0.17
#: Backends, default first; ``mjx`` is goalax's own MJX base, ``generalized`` brax's pipeline.
BACKENDS = ("generalized", "mjx")
#: Where the reacher variant parks its puck (offset ``(y, x)``): beyond the arm's reach.
PARKED_PUCK = (1.0, 1.0)

#: Per variant: the bodies' home ``(x, y)`` and, per puck, ``((y_low, x_low), (y_high, x_high))``
#: of the puck's and of the goal's offsets.
_HOMES = {"easy": (0.45, -0.05), "hard": (0.45, -0.05), "reacher": (0.45, -0.05), "two": (0, 0)}
_ONE_PUCK = ((-0.3, -0.2), (0.0, 0.2))
_PUCKS = {
    "easy": (_ONE_PUCK,),
    "hard": (_ONE_PUCK,),
    "reacher": (),
    "two": (((-0.35, 0.25), (-0.05, 0.45)), ((-0.35, 0.45), (-0.05, 0.65))),
}
_GOALS = {
    "easy": (((-0.55, -0.2), (-0.25, 0.2)),),
    "hard": (((-0.65, -0.55), (0.35, 0.45)),),
    "reacher": (_ONE_PUCK,),
    "two": (((-0.7, -0.15), (0.3, 0.375)), ((-0.7, 0.375), (0.3, 0.9))),
}


def _slide_body(name: str, joints: str, home: tuple[float, float], z: float, geoms: str) -> str:
    slides = "".join(
        f'<joint name="{joints}_slide{axis}" type="slide" pos="0 0 0" axis="{vector}" '
        'range="-10.3213 10.3" damping="0.5"/>'
        for axis, vector in (("y", "0 1 0"), ("x", "1 0 0"))
    )
    return f'<body name="{name}" pos="{home[0]} {home[1]} {z}">{geoms}{slides}</body>'


def pusher_mjcf(variant: str) -> str:
    """The arm with the variant's pucks and goal markers (``object``/``goal``, or ``object1``,
    ``goal1``, ``object2``, ``goal2`` for ``pusher2``; the reacher keeps one puck)."""
    home = _HOMES[variant]
    suffixes = ("1", "2") if variant == "two" else ("",)
    bodies = []
    for suffix in suffixes:
        puck = (
            '<geom rgba="1 1 1 0" type="sphere" size="0.05 0.05 0.05" density="1" '
            'conaffinity="0"/>'
            f'<geom name="object{suffix}_geom" rgba="1 1 1 1" type="capsule" '
            'size="0.05 0.05 0.05" density="1" contype="1" conaffinity="0"/>'
        )
        goal = (
            '<geom rgba="1 0 0 1" type="capsule" size="0.08 0.001 0.1" density="0.00001" '
            'contype="0" conaffinity="0"/>'
        )
        bodies.append(_slide_body(f"object{suffix}", f"obj{suffix}", home, PUCK_Z, puck))
        bodies.append(_slide_body(f"goal{suffix}", f"goal{suffix}", home, GOAL_Z, goal))
    with open(ASSET) as f:
        return f.read().replace("<!-- PUCKS -->", "\n".join(bodies))


def _draw(key: jax.Array, regions) -> jax.Array:
    """``[len(regions), 2]`` offsets ``(y, x)``, each uniform in its region."""
    low = jnp.asarray([r[0] for r in regions], jnp.float32)
    high = jnp.asarray([r[1] for r in regions], jnp.float32)
    return jax.random.uniform(key, low.shape, jnp.float32, low, high)


def _kept_apart(pucks: jax.Array, goals: jax.Array) -> jax.Array:
    """Puck offsets ``[n, 2]`` within ``MIN_PUCK_GOAL`` of their goal scaled up to it."""
    distance = jnp.linalg.norm(pucks - goals, axis=-1, keepdims=True)
    scale = jnp.where(distance < MIN_PUCK_GOAL, MIN_PUCK_GOAL / jnp.maximum(distance, 1e-9), 1.0)
    return pucks * scale


def mjx_model(variant: str) -> mujoco.MjModel:
    """The variant's MJCF compiled for goalax's MJX base as the reference's loader (brax's
    ``mjcf.loads``) and pipeline (``generalized``) treat it: bodies without joints fused into
    their parents (MuJoCo's ``fusestatic``, giving the reference's bodies, masses and inertias),
    joint damping explicit (``eulerdamp`` off: with MuJoCo's default implicit damping the arm is
    0.018 rad off the reference's trajectory after 10 steps, 1.3e-5 without). Set here, not in
    the file: brax's ``generalized`` model stays the one the reference steps."""
    spec = mujoco.MjSpec.from_string(pusher_mjcf(variant))
    spec.compiler.fusestatic = True
    spec.option.disableflags |= mujoco.mjtDisableBit.mjDSBL_EULERDAMP
    return spec.compile()


class _PusherTask:
    """The task whatever steps it: resets, goals, goal sets, observation layout. The physics
    base provides ``physics_at``, ``advance``, ``qpos``, ``qvel`` and ``mujoco_model``; the
    class ``centres_of_mass`` and the body indices it reads (``_wrist``, ``_pucks``)."""

    def _set_task(
        self, variant: str, episode_length: int | None, dense_reward: bool, n_pucks: int
    ) -> None:
        self.variant = variant
        self.n_pucks = n_pucks
        self.state_dim = 17 + 3 * n_pucks
        self.goal_indices = {
            "easy": (10, 11, 12),
            "hard": (10, 11, 12),
            "reacher": (14, 15, 16),
            "two": tuple(range(10, 16)),
        }[variant]
        self.goal_threshold = 0.1
        self.success_easy_threshold = 0.2
        self.episode_length = 1000 if episode_length is None else episode_length
        self.dense_reward = dense_reward

    def goal_from_offsets(self, offsets: jax.Array) -> jax.Array:
        """``[n, 2]`` goal offsets ``(y, x)`` -> the goal ``[3 n]``: world ``x, y, z`` of each."""
        home_x, home_y = _HOMES[self.variant]
        x, y = home_x + offsets[:, 1], home_y + offsets[:, 0]
        return jnp.stack([x, y, jnp.full_like(x, GOAL_Z)], axis=-1).ravel()

    def reset(self, rng: jax.Array) -> State:
        key_puck, key_goal, key_qd = jax.random.split(rng, 3)
        goals = _draw(key_goal, _GOALS[self.variant])
        if self.variant == "two":
            goals = goals.at[1, 0].set(goals[0, 0])  # the reference draws one y for both goals
        if self.variant == "reacher":
            pucks = jnp.asarray([PARKED_PUCK], jnp.float32)
        else:
            pucks = _kept_apart(_draw(key_puck, _PUCKS[self.variant]), goals)
        goal = self.goal_from_offsets(goals)
        # Joint order after the arm: per puck, its (y, x), then its goal's (y, x).
        q = jnp.concatenate([jnp.zeros(7), jnp.concatenate([pucks, goals], axis=-1).ravel()])
        arm_qd = jax.random.uniform(key_qd, (7,), jnp.float32, -0.005, 0.005)
        qd = jnp.concatenate([arm_qd, jnp.zeros(self.mujoco_model().nv - 7)])
        return self.make_state(self.physics_at(q, qd), goal, {"goal": goal})

    def step(self, state: State, action: jax.Array) -> State:
        physics = self.advance(state.pipeline_state, action)
        return self.make_state(physics, state.info["goal"], state.info)

    def with_goal(self, state: State, goal: jax.Array) -> State:
        """Swap the goal and move the goal markers there (the arm and pucks are untouched)."""
        goal = jnp.asarray(goal, jnp.float32)
        home_x, home_y = _HOMES[self.variant]
        xyz = goal.reshape(-1, 3)
        offsets = jnp.stack([xyz[:, 1] - home_y, xyz[:, 0] - home_x], axis=-1)
        physics = state.pipeline_state
        goal_q = 7 + 4 * jnp.arange(offsets.shape[0])[:, None] + jnp.array([2, 3])
        q = self.qpos(physics).at[goal_q].set(offsets)
        qd = self.qvel(physics).at[goal_q].set(0.0)
        return super().with_goal(state.replace(pipeline_state=self.physics_at(q, qd)), goal)

    def state_obs(self, physics: Any) -> jax.Array:
        """See the module docstring for the layout."""
        q, qd = self.qpos(physics)[:7], self.qvel(physics)[:7]
        wrist = self.centres_of_mass(physics, [self._wrist])[0]
        if self.variant == "reacher":
            return jnp.concatenate([q, qd, wrist])
        pucks = self.centres_of_mass(physics, self._pucks).ravel()
        return jnp.concatenate([q, wrist, pucks, qd])

    def goal_metrics(self, achieved, goal):
        """``pusher2``: ``dist`` is the larger puck distance, so success needs every puck."""
        if self.variant != "two":
            return super().goal_metrics(achieved, goal)
        pairs = achieved.shape[:-1] + (2, 3)
        per_puck = jnp.linalg.norm(achieved.reshape(pairs) - goal.reshape(pairs), axis=-1)
        dist = per_puck.max(axis=-1, keepdims=True)
        return goal_metrics(
            dist, jnp.zeros_like(dist), self.goal_threshold, self.success_easy_threshold
        )

    def goal_marker(self, goal) -> np.ndarray:
        """Render marker: the (first) puck's goal."""
        return np.asarray(goal, np.float64)[:3]

    def eval_goal_sets(self) -> dict[str, np.ndarray]:
        """``tasks``: five goals spread over the variant's goal region (its centre and the points
        a fifth in from its corners; ``pusher2``'s share their ``y``, as its resets' do)."""
        fractions = np.array([[0.5, 0.5], [0.2, 0.2], [0.2, 0.8], [0.8, 0.2], [0.8, 0.8]])
        tasks = []
        for fraction in fractions:
            offsets = []
            for low, high in _GOALS[self.variant]:
                low, high = np.asarray(low), np.asarray(high)
                offsets.append(low + fraction * (high - low))
            tasks.append(np.asarray(self.goal_from_offsets(jnp.asarray(np.stack(offsets)))))
        return {"tasks": np.stack(tasks).astype(np.float32)}


def _observed_pucks(variant: str) -> list[str]:
    """Names of the puck bodies the observation reads (the reacher's parked puck is not)."""
    names = ["object1", "object2"] if variant == "two" else ["object"]
    return names[: len(_PUCKS[variant])]


class Pusher(_PusherTask, GoalPipelineEnv):
    """Arm pushes pucks (or reaches) to goals on brax's ``generalized``; never terminates."""

    backends = BACKENDS[:1]

    def __init__(
        self,
        *,
        episode_length: int | None = None,
        backend: str | None = None,
        dense_reward: bool = False,
        variant: str = "hard",
    ):
        backend = backend or self.backends[0]
        sys = notices.load_mjcf(pusher_mjcf(variant))
        GoalPipelineEnv.__init__(self, sys=sys, backend=backend, n_frames=5)
        names = sys.link_names
        self._wrist = names.index("r_wrist_flex_link")
        self._pucks = [names.index(n) for n in _observed_pucks(variant)]
        self._set_task(variant, episode_length, dense_reward, len(self._pucks))

    def centres_of_mass(self, pipeline_state, links: list[int]) -> jax.Array:
        """``[len(links), 3]``: world centres of mass of ``links`` (link frame plus the inertia
        offset, turned with the link)."""
        index = jnp.asarray(links)
        frames = pipeline_state.x.take(index)
        offsets = self.sys.link.inertia.transform.pos[index]
        return frames.pos + jax.vmap(math.rotate)(offsets, frames.rot)


class MjxPusher(_PusherTask, MjxGoalEnv):
    """The same task on goalax's own MJX base (``backend="mjx"``)."""

    backends = BACKENDS[1:]

    def __init__(
        self,
        *,
        episode_length: int | None = None,
        dense_reward: bool = False,
        variant: str = "hard",
        impl: str = "jax",
    ):
        model = mjx_model(variant)
        MjxGoalEnv.__init__(self, model, n_substeps=5, impl=impl)
        self._wrist = int(model.body("r_wrist_flex_link").id)
        self._pucks = [int(model.body(n).id) for n in _observed_pucks(variant)]
        self._set_task(variant, episode_length, dense_reward, len(self._pucks))

    def centres_of_mass(self, data, bodies: list[int]) -> jax.Array:
        """``[len(bodies), 3]``: MuJoCo's ``xipos``, each body's centre of mass in the world
        frame (of the stepped state: the base updates body poses after the substeps)."""
        return data.xipos[jnp.asarray(bodies)]

    def ctrl_of_action(self, action: jax.Array) -> jax.Array:
        """The clipped action itself, as the reference's brax pipeline applies it: the motors'
        range is [-2, 2] with gear 1, so the arm gets half its torque range."""
        return jnp.clip(action, -1.0, 1.0)
