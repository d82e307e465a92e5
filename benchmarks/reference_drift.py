"""Replay the reference's trajectories on goalax's brax/MuJoCo/MJX versions.

The fixture's 100-step trajectories (tests/data/reference_facts.json) were computed by jaxgcrl
0.2.8 on brax 0.10.5 and MJX 3.2.7. MJX changed since (collisions, solver): the reference's own
model, stepped from the same state with the same controls on goalax's versions, leaves the
recorded trajectory after a few steps on contact-rich tasks (ant_push: 2e-4 at step 7, 3e-2 at
step 14). A goalax task can be no closer to the reference than that, so this script records,
for each task on MJX, the reference's model replayed on goalax's versions
(``trajectory.replay``); tests/test_reference_fidelity.py compares goalax's trajectory with it.

The model is the reference's MJCF (saved by ``reference_facts.py --dump-xml`` into a temporary
folder, never committed) with the compiled inertials, solver settings, timestep and gears the
fixture recorded from the reference's System, and the controls its env handed to the physics.

Usage (goalax's venv): python benchmarks/reference_drift.py XML_DIR [TASK ...]
(default: every task on MJX whose MJCF is in XML_DIR). Run by benchmarks/reference_facts.sh.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from brax.envs.base import PipelineEnv  # noqa: E402
from brax.io import mjcf  # noqa: E402

from goalax.files import replace_json  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "tests", "data", "reference_facts.json")


class _Physics(PipelineEnv):
    """Only the pipeline: the replay feeds the recorded controls to ``pipeline_step``."""

    def reset(self, rng):
        raise NotImplementedError

    def step(self, state, action):
        raise NotImplementedError


def reference_system(xml: str, assets: str, entry: dict):
    """The reference's System: its MJCF, then the settings its env applied."""
    xml = re.sub(r'(meshdir|texturedir)="(?!/)([^"]*)"', lambda m: f'{m[1]}="{assets}/{m[2]}"', xml)
    model = mujoco.MjModel.from_xml_string(xml)
    # The saved MJCF loses compiler rescaling (``settotalmass``): set the compiled inertials.
    for name, body in entry["model"]["bodies"].items():
        i = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
        if i >= 0:
            model.body_mass[i] = body["mass"]
            model.body_inertia[i] = body["inertia"]
            model.body_ipos[i] = body["ipos"]
            model.body_iquat[i] = body["iquat"]
    mujoco.mj_setConst(model, mujoco.MjData(model))  # quantities derived from the inertials
    sys_ = mjcf.load_model(model)
    replace = {"opt.timestep": jnp.float32(entry["timestep"])}
    for name, value in entry["opt"].items():
        replace[f"opt.{name}"] = option(name, value, type(getattr(sys_.opt, name)))
    sys_ = sys_.tree_replace(replace)
    gear = jnp.asarray(entry["gear"], jnp.float32)
    if entry["backend"] == "mjx":
        return sys_.replace(actuator_gear=sys_.actuator_gear.at[:, 0].set(gear))
    return sys_.replace(actuator=sys_.actuator.replace(gear=gear))


def option(name: str, value, kind: type):
    """A recorded option (``facts.option_value``'s form) as this MuJoCo version's value."""
    if name == "disableflags":
        bits = [int(getattr(mujoco.mjtDisableBit, f"mjDSBL_{flag}")) for flag in value]
        return kind(sum(bits))
    if isinstance(value, str):
        enum = {"solver": mujoco.mjtSolver, "integrator": mujoco.mjtIntegrator}
        return kind(int(getattr(enum.get(name, mujoco.mjtCone), value)))
    return jnp.float32(value) if isinstance(value, float) else kind(value)


def replay(xml: str, assets: str, entry: dict) -> np.ndarray:
    """``[steps, nq]``: ``q`` after every step of the recorded controls."""
    env = _Physics(reference_system(xml, assets, entry), entry["backend"], entry["n_frames"])
    trajectory = entry["trajectory"]
    state = env.pipeline_init(jnp.asarray(trajectory["q0"]), jnp.asarray(trajectory["qd0"]))

    def step(state, control):
        state = env.pipeline_step(state, control)
        return state, state.q

    controls = jnp.asarray(trajectory["passed"], jnp.float32)
    return np.asarray(jax.jit(lambda s, c: jax.lax.scan(step, s, c)[1])(state, controls))


def main() -> None:
    xml_dir, names = sys.argv[1], sys.argv[2:]
    with open(os.path.join(xml_dir, "assets_dir")) as f:
        assets = f.read().strip()
    with open(FIXTURE) as f:
        fixture = json.load(f)
    tasks = fixture["tasks"]
    saved = {n for n in tasks if os.path.exists(os.path.join(xml_dir, f"{n}.xml"))}
    names = names or [n for n, e in tasks.items() if e.get("backend") == "mjx" and n in saved]
    for name in names:
        entry = tasks[name]
        with open(os.path.join(xml_dir, f"{name}.xml")) as f:
            q = replay(f.read(), assets, entry)
        recorded = np.asarray(entry["trajectory"]["q"])
        drift = np.abs(q - recorded).max(axis=1)
        entry["trajectory"]["replay"] = {
            "q": [[float(str(np.float32(v))) for v in row] for row in q],
            "max_drift": float(drift.max()),
        }
        print(f"{name}: replay leaves the recorded trajectory by {drift.max():.2g}", flush=True)
    fixture["header"]["replay"] = {
        "what": "trajectory.replay: the reference's model and controls on these versions",
        "command": "bash benchmarks/reference_facts.sh (its second step)",
        "versions": {
            pkg: importlib.metadata.version(pkg)
            for pkg in ("jax", "jaxlib", "brax", "mujoco", "mujoco-mjx")
        },
    }
    replace_json(FIXTURE, fixture)


if __name__ == "__main__":
    main()
