"""Facts about a task's physics model and samples, read the same way from goalax and the reference.

One definition serves both sides of the fidelity fixture: ``benchmarks/reference_facts.py`` loads
this file by path inside jaxgcrl 0.2.8's own venv (numpy<2, mujoco 3.2.7), and
``tests/test_reference_fidelity.py`` imports it in goalax's. So it imports numpy, mujoco and the
standard library only (no jax, brax or goalax), and reads brax objects (``System``) by their
attributes alone.

Names are the join key between the two models: bodies, joints, actuators and geoms by their MJCF
``name``; an unnamed geom is ``<body>/geom<k>`` (its rank among its body's geoms), an unnamed body
``body<i>``. A *marker* is a body hung on the world that only shows something (a goal sphere): no
geom of its subtree can collide and no actuator drives it, so it changes no other body's motion.
"""

from __future__ import annotations

import mujoco
import numpy as np

__all__ = [
    "FLOOR",
    "OPTIONS",
    "PROBE_ACTIONS",
    "QUANTILES",
    "applied_control",
    "box_union",
    "floor_geom",
    "inertia_tensor",
    "joint_slices",
    "markers",
    "model_facts",
    "option_value",
    "sample_stats",
    "static_solid",
    "system_facts",
]

#: The floor geom's name in every task's MJCF.
FLOOR = "floor"
#: Actions (every entry equal) whose applied control the fixture records.
PROBE_ACTIONS = (-1.0, -0.2, 0.2, 1.0)

_JOINT_TYPES = {
    int(mujoco.mjtJoint.mjJNT_FREE): "free",
    int(mujoco.mjtJoint.mjJNT_BALL): "ball",
    int(mujoco.mjtJoint.mjJNT_SLIDE): "slide",
    int(mujoco.mjtJoint.mjJNT_HINGE): "hinge",
}
_QPOS_SIZE = {"free": 7, "ball": 4, "slide": 1, "hinge": 1}
_QVEL_SIZE = {"free": 6, "ball": 3, "slide": 1, "hinge": 1}


def _name(m: mujoco.MjModel, obj: mujoco.mjtObj, i: int) -> str:
    return mujoco.mj_id2name(m, obj, i) or ""


def body_names(m: mujoco.MjModel) -> list[str]:
    return [_name(m, mujoco.mjtObj.mjOBJ_BODY, i) or f"body{i}" for i in range(m.nbody)]


def geom_names(m: mujoco.MjModel) -> list[str]:
    """Every geom's name, ``<body>/geom<k>`` for unnamed ones."""
    bodies = body_names(m)
    rank: dict[int, int] = {}
    names = []
    for i in range(m.ngeom):
        body = int(m.geom_bodyid[i])
        k = rank.get(body, 0)
        rank[body] = k + 1
        names.append(_name(m, mujoco.mjtObj.mjOBJ_GEOM, i) or f"{bodies[body]}/geom{k}")
    return names


def floor_geom(m: mujoco.MjModel) -> int:
    """Index of the geom named ``floor``, else of the first plane on the world body."""
    named = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, FLOOR)
    if named >= 0:
        return named
    for i in range(m.ngeom):
        if m.geom_bodyid[i] == 0 and m.geom_type[i] == mujoco.mjtGeom.mjGEOM_PLANE:
            return i
    return -1


def _collide(m: mujoco.MjModel, a: int, b: int) -> bool:
    """MuJoCo's pair filter: contype/conaffinity bits and never within one weld group (which
    also covers two geoms of one body and two static bodies)."""
    type_a, type_b = m.geom_contype, m.geom_conaffinity
    bits = (type_a[a] & type_b[b]) or (type_a[b] & type_b[a])
    weld_a, weld_b = m.body_weldid[m.geom_bodyid[a]], m.body_weldid[m.geom_bodyid[b]]
    return bool(bits) and weld_a != weld_b


def floor_colliders(m: mujoco.MjModel) -> list[str]:
    """Sorted names of the geoms that can touch the floor (empty without a floor)."""
    floor = floor_geom(m)
    if floor < 0:
        return []
    names = geom_names(m)
    return sorted(names[i] for i in range(m.ngeom) if i != floor and _collide(m, i, floor))


def _subtree(m: mujoco.MjModel, root: int) -> list[int]:
    return [b for b in range(m.nbody) if _ancestor(m, root, b)]


def _ancestor(m: mujoco.MjModel, root: int, body: int) -> bool:
    while body != root and body != 0:
        body = int(m.body_parentid[body])
    return body == root


def markers(m: mujoco.MjModel) -> list[str]:
    """Names of the world's child bodies that only show something (see the module docstring)."""
    names = body_names(m)
    driven = {int(m.jnt_bodyid[m.actuator_trnid[a, 0]]) for a in range(m.nu)}
    found = []
    for root in range(1, m.nbody):
        if m.body_parentid[root] != 0:
            continue
        subtree = set(_subtree(m, root))
        geoms = [g for g in range(m.ngeom) if int(m.geom_bodyid[g]) in subtree]
        silent = all(m.geom_contype[g] == 0 and m.geom_conaffinity[g] == 0 for g in geoms)
        if silent and not subtree & driven:
            found.append(names[root])
    return found


def joint_slices(m: mujoco.MjModel) -> dict[str, dict]:
    """``{joint: {type, body, qpos: [start, size], qvel: [start, size]}}`` (unnamed:
    ``<body>/joint<k>``)."""
    bodies = body_names(m)
    rank: dict[int, int] = {}
    out = {}
    for j in range(m.njnt):
        body = int(m.jnt_bodyid[j])
        k = rank.get(body, 0)
        rank[body] = k + 1
        kind = _JOINT_TYPES[int(m.jnt_type[j])]
        name = _name(m, mujoco.mjtObj.mjOBJ_JOINT, j) or f"{bodies[body]}/joint{k}"
        out[name] = {
            "type": kind,
            "body": bodies[body],
            "qpos": [int(m.jnt_qposadr[j]), _QPOS_SIZE[kind]],
            "qvel": [int(m.jnt_dofadr[j]), _QVEL_SIZE[kind]],
        }
    return out


def static_solid(m: mujoco.MjModel) -> dict:
    """The fixed colliding geometry besides the floor: what an agent can bump into.

    Axis-aligned boxes welded to the world (maze walls, tables, blocks) are compared as the solid
    they fill (``box_union``), so one long box and a row of cell-sized boxes that fill the same
    space are the same fact; ``boxes`` counts them. Any other fixed colliding geom is listed by
    type, world position and size.
    """
    data = mujoco.MjData(m)
    mujoco.mj_kinematics(m, data)
    floor = floor_geom(m)
    boxes, others = [], []
    for g in range(m.ngeom):
        static = m.body_weldid[m.geom_bodyid[g]] == 0
        if g == floor or not static or not (m.geom_contype[g] or m.geom_conaffinity[g]):
            continue
        pos = np.asarray(data.geom_xpos[g], np.float64)
        rot = np.asarray(data.geom_xmat[g], np.float64).reshape(3, 3)
        size = np.asarray(m.geom_size[g], np.float64)
        if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX and np.allclose(np.abs(rot), np.eye(3)):
            half = np.abs(rot) @ size  # the box's half extents along the world axes
            boxes.append((pos - half, pos + half))
        else:
            pos_, size_ = np.round(pos, 4).tolist(), np.round(size, 4).tolist()
            others.append(f"type {int(m.geom_type[g])} pos {pos_} size {size_}")
    return {"others": sorted(others), "boxes": len(boxes), "union": box_union(boxes)}


def box_union(boxes: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """The union of axis-aligned boxes ``(low, high)``, written one canonical way.

    Every box face cuts space into a grid of cells, each inside the union or not. Adjacent grid
    slices that are equal are then merged, which leaves the coarsest grid of the solid: the same
    for any set of boxes that fills the same space. Returns the cuts along x, y, z (rounded to
    1e-4 m) and the filled cells as a string of 0/1 in C order.
    """
    if not boxes:
        return {"cuts": [[], [], []], "filled": ""}
    cuts = [
        np.unique(np.round([b[i][axis] for b in boxes for i in (0, 1)], 4)) for axis in range(3)
    ]
    centres = np.meshgrid(*[(c[:-1] + c[1:]) / 2 for c in cuts], indexing="ij")
    filled = np.zeros(centres[0].shape, bool)
    for low, high in boxes:
        inside = np.ones_like(filled)
        for axis in range(3):
            inside &= (centres[axis] > low[axis] - 1e-6) & (centres[axis] < high[axis] + 1e-6)
        filled |= inside
    for axis in range(3):
        slices = np.moveaxis(filled, axis, 0)
        keep = [0] + [
            i for i in range(1, len(slices)) if not np.array_equal(slices[i], slices[i - 1])
        ]
        filled = np.moveaxis(slices[keep], 0, axis)
        cuts[axis] = np.concatenate([cuts[axis][keep], cuts[axis][-1:]])
    return {
        "cuts": [c.tolist() for c in cuts],
        "filled": "".join("1" if f else "0" for f in filled.reshape(-1)),
    }


def model_facts(m: mujoco.MjModel) -> dict:
    """Static facts of a compiled MuJoCo model (before any change an env makes to its System;
    ``system_facts`` reads those)."""
    bodies = body_names(m)
    marker_set = set(markers(m))
    joints = _name_list(m, mujoco.mjtObj.mjOBJ_JOINT, m.njnt)
    actuators = []
    for a in range(m.nu):
        target = int(m.actuator_trnid[a, 0])
        actuators.append(
            {
                "name": _name(m, mujoco.mjtObj.mjOBJ_ACTUATOR, a) or f"actuator{a}",
                "joint": joints[target] if m.actuator_trntype[a] == 0 else None,
                "gain": float(m.actuator_gainprm[a, 0]),
                "bias": [float(x) for x in m.actuator_biasprm[a, :3]],
                "forcerange": _range(m.actuator_forcelimited[a], m.actuator_forcerange[a]),
            }
        )
    return {
        "timestep": float(m.opt.timestep),
        "nq": int(m.nq),
        "nv": int(m.nv),
        "actuators": actuators,
        "joints": joint_slices(m),
        "bodies": {
            name: {
                "mass": float(m.body_mass[i]),
                # Principal moments, centre of mass and principal axes as MuJoCo compiled them.
                "inertia": [float(x) for x in m.body_inertia[i]],
                "ipos": [float(x) for x in m.body_ipos[i]],
                "iquat": [float(x) for x in m.body_iquat[i]],
                "parent": bodies[int(m.body_parentid[i])],
                "marker": name in marker_set,
            }
            for i, name in enumerate(bodies)
            if i > 0
        },
        "floor_colliders": floor_colliders(m),
        "static_solid": static_solid(m),
    }


def inertia_tensor(body: dict) -> np.ndarray:
    """``[3, 3]``: a ``model_facts`` body's inertia about its centre of mass in the body frame
    (one value however the principal axes are ordered or signed)."""
    w, x, y, z = body["iquat"]
    rot = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
    return rot @ np.diag(body["inertia"]) @ rot.T


def _name_list(m: mujoco.MjModel, obj: mujoco.mjtObj, n: int) -> list[str]:
    return [_name(m, obj, i) for i in range(n)]


def _range(limited, values) -> list[float] | None:
    """``[low, high]`` of a limited range, ``None`` when unlimited (JSON has no infinity)."""
    return [float(values[0]), float(values[1])] if int(limited) == 1 else None


def system_facts(sys, backend: str) -> dict:
    """What the physics steps with, read from a brax ``System`` after the env changed it:
    timestep, and per actuator the control range and gear the backend uses (MJX reads the
    MuJoCo fields ``actuator_*``, brax's own pipelines ``sys.actuator``)."""
    if backend == "mjx":
        limited = np.asarray(sys.actuator_ctrllimited)
        ranges = np.asarray(sys.actuator_ctrlrange)
        ctrl = [_range(lim, r) for lim, r in zip(limited, ranges, strict=True)]
        gear = np.asarray(sys.actuator_gear)[:, 0]
    else:
        ranges = np.asarray(sys.actuator.ctrl_range)
        ctrl = [_range(np.all(np.isfinite(r)), r) for r in ranges]
        gear = np.asarray(sys.actuator.gear)
    return {
        "timestep": float(np.asarray(sys.opt.timestep)),
        "ctrlrange": ctrl,
        "gear": [float(g) for g in gear],
        "opt": {name: option_value(name, getattr(sys.opt, name)) for name in OPTIONS},
    }


#: Enum-valued options, read by name: MuJoCo renumbered the disable bits between 3.2 and 3.3.
_OPTION_ENUMS = {
    "solver": mujoco.mjtSolver,
    "integrator": mujoco.mjtIntegrator,
    "cone": mujoco.mjtCone,
}


def option_value(name: str, value) -> float | int | str | list[str]:
    """A solver option as a version-independent fact: enums by name, the disable flags as the
    sorted names of the bits set, numbers as numbers."""
    if name == "disableflags":
        flags = int(value)
        bits = mujoco.mjtDisableBit
        return sorted(
            n[len("mjDSBL_") :]
            for n in dir(bits)
            if n.startswith("mjDSBL_") and flags & int(getattr(bits, n))
        )
    if name in _OPTION_ENUMS:
        return _OPTION_ENUMS[name](int(value)).name
    value = np.asarray(value)
    return float(value) if np.issubdtype(value.dtype, np.floating) else int(value)


#: Solver settings (``sys.opt``) recorded; MJX steps with all of them, brax's own pipelines
#: with the timestep only (generalized also reads the solver iterations).
OPTIONS = (
    "solver",
    "iterations",
    "ls_iterations",
    "disableflags",
    "integrator",
    "cone",
    "impratio",
    "tolerance",
    "ls_tolerance",
)


def applied_control(passed: np.ndarray, ctrlrange: list) -> list[float]:
    """The control the physics applies for ``passed`` (what the env hands to ``pipeline_step``):
    clipped to each limited actuator's range, as brax's pipelines and MuJoCo both do."""
    out = np.asarray(passed, np.float64).copy()
    for i, r in enumerate(ctrlrange):
        if r is not None:
            out[..., i] = np.clip(out[..., i], r[0], r[1])
    return [float(x) for x in out.reshape(-1)]


#: Quantile levels ``sample_stats`` records (0, 2, ..., 100 %): a heavy-tailed draw (the
#: pushers' puck can start 8 m out) is compared by its quantiles, where mean and sd are unstable.
QUANTILES = tuple(np.linspace(0.0, 1.0, 51).tolist())


def sample_stats(samples: np.ndarray) -> dict:
    """``{n, mean, std, min, max, quantiles [len(QUANTILES)][d]}`` per coordinate of
    ``samples [n, d]`` (``[n]``: one coordinate)."""
    x = np.asarray(samples, np.float64)
    x = x.reshape(x.shape[0], -1)
    return {
        "n": int(x.shape[0]),
        "mean": x.mean(0).tolist(),
        "std": x.std(0).tolist(),
        "min": x.min(0).tolist(),
        "max": x.max(0).tolist(),
        "quantiles": np.quantile(x, QUANTILES, axis=0).tolist(),
    }
