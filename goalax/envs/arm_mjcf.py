"""MJCF of the six Franka Panda arm tasks: the models of the reference (jaxgcrl 0.2.8,
``envs/assets/panda_<task>.xml``), written out by goalax.

Every physical number below (link frames, inertials, finger geoms, actuator gains, contact pairs,
solver options, cube, bins) is the reference's. Its MJCFs put the arm's joint and actuator
defaults in a ``childclass`` on the jointless base body; the reference loads them with brax,
which fuses jointless bodies into their parents and drops that ``childclass`` on the way, so in
the model the reference simulates the arm joints have no armature and no damping, and joints 1,
3, 5 and 7 have no limits (the fingers keep their class: armature 0.1, damping 5). goalax writes
that model's joints as they are, and fuses the one jointless body left (the hand, into link 7)
with the same brax function, so that its geoms and fingers get the reference's poses to the digit.

The physics model draws nothing: the Panda's meshes (``class="visual"``: the Franka meshes that
``gymnasium-robotics`` ships) are only in the render model, where ``mesh_dir`` points at them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from brax.io import mjcf as brax_mjcf

#: ``(name, pos, quat, mass, centre of mass, fullinertia, joint range or None: unlimited)``.
ARM_LINKS = (
    (
        "link1",
        "0 0 0.333",
        "1 0 0 0",
        "4.970684",
        "0.003875 0.002081 -0.04762",
        "0.70337 0.70661 0.0091170 -0.00013900 0.0067720 0.019169",
        None,
    ),
    (
        "link2",
        "0 0 0",
        "1 -1 0 0",
        "0.646926",
        "-0.003141 -0.02872 0.003495",
        "0.0079620 2.8110e-2 2.5995e-2 -3.925e-3 1.0254e-2 7.04e-4",
        "-1.7628 1.7628",
    ),
    (
        "link3",
        "0 -0.316 0",
        "1 1 0 0",
        "3.228604",
        "2.7518e-2 3.9252e-2 -6.6502e-2",
        "3.7242e-2 3.6155e-2 1.083e-2 -4.761e-3 -1.1396e-2 -1.2805e-2",
        None,
    ),
    (
        "link4",
        "0.0825 0 0",
        "1 1 0 0",
        "3.587895",
        "-5.317e-2 1.04419e-1 2.7454e-2",
        "2.5853e-2 1.9552e-2 2.8323e-2 7.796e-3 -1.332e-3 8.641e-3",
        "-3.0718 -0.0698",
    ),
    (
        "link5",
        "-0.0825 0.384 0",
        "1 -1 0 0",
        "1.225946",
        "-1.1953e-2 4.1065e-2 -3.8437e-2",
        "3.5549e-2 2.9474e-2 8.627e-3 -2.117e-3 -4.037e-3 2.29e-4",
        None,
    ),
    (
        "link6",
        "0 0 0",
        "1 1 0 0",
        "1.666555",
        "6.0149e-2 -1.4117e-2 -1.0517e-2",
        "1.964e-3 4.354e-3 5.433e-3 1.09e-4 -1.158e-3 3.41e-4",
        "-0.0175 3.7525",
    ),
    (
        "link7",
        "0.088 0 0",
        "1 1 0 0",
        "7.35522e-01",
        "1.0517e-2 -4.252e-3 6.1597e-2",
        "1.2516e-2 1.0027e-2 4.815e-3 -4.28e-4 -1.196e-3 -7.41e-4",
        None,
    ),
)
#: ``(name, joint, gain, bias, ctrlrange, forcerange)`` of the arm's position servos.
ARM_ACTUATORS = tuple(
    (f"actuator{i + 1}", f"joint{i + 1}", gain, bias, ctrl, force)
    for i, (gain, bias, ctrl, force) in enumerate(
        (
            ("4500", "0 -4500 -450", "-2.8973 2.8973", "-87 87"),
            ("4500", "0 -4500 -450", "-1.7628 1.7628", "-87 87"),
            ("2000", "0 -3500 -350", "-2.8973 2.8973", "-87 87"),
            ("2000", "0 -3500 -350", "-3.0718 -0.0698", "-87 87"),
            ("1000", "0 -2000 -200", "-2.8973 2.8973", "-12 12"),
            ("1000", "0 -2000 -200", "-0.0175 3.7525", "-12 12"),
            ("1000", "0 -2000 -200", "-2.8973 2.8973", "-12 12"),
        )
    )
)
#: The gripper servos: a control of 0-255 maps onto the finger's 0-0.08 range as the reference's.
FINGER_ACTUATOR = {"gainprm": "0.09804 0 0", "biasprm": "0 -500 -50", "ctrlrange": "0 255"}
CUBE_HALF = 0.03
#: Per task: cube and goal-marker rest positions (the start of the reset's draws), the coloured
#: start (A, blue) and goal (B, red) regions ``(x, y, half size)`` and whether they are bins.
SCENES = {
    "reach": {"cube": None, "marker": (-0.3, 0.6, 0.07), "regions": ((0.0, 0.5, 0.2),)},
    "grasp": {"cube": (0.0, 0.6, 0.07), "marker": (-0.3, 0.6, 0.07), "regions": ((0, 0.6, 0.3),)},
    "push_easy": {
        "cube": (-0.1, 0.6, 0.07),
        "marker": (-0.3, 0.6, 0.07),
        "regions": ((-0.1, 0.6, 0.1), (0.1, 0.6, 0.1)),
    },
    "push_hard": {
        "cube": (-0.25, 0.65, 0.07),
        "marker": (-0.25, 0.65, 0.07),
        "regions": ((-0.25, 0.65, 0.25), (0.25, 0.65, 0.25)),
    },
    "binpick_easy": {
        "cube": (-0.15, 0.6, 0.07),
        "marker": (-0.15, 0.6, 0.07),
        "regions": ((-0.17, 0.6, 0.145), (0.17, 0.6, 0.145)),
        "bins": True,
    },
    "binpick_hard": {
        "cube": (-0.3, 0.6, 0.07),
        "marker": (-0.3, 0.6, 0.07),
        "regions": ((-0.3, 0.6, 0.195), (0.3, 0.6, 0.195)),
        "bins": True,
    },
}
BLUE, RED = "0 0.2 0.8 1", "0.8 0 0 1"
#: The Franka visual meshes of gymnasium-robotics, one per link, drawn in the link's frame.
MESHES = ("link0", "link1", "link2", "link3", "link4", "link5", "link6", "link7", "hand", "finger")


def _vec(values) -> str:
    return " ".join(f"{v:g}" for v in values)


def _sub(parent: ET.Element, tag: str, **attrib: str) -> ET.Element:
    return ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrib.items()})


def _silent(parent: ET.Element, **attrib: str) -> ET.Element:
    """A geom that collides only through the explicit contact pairs, as every reference geom."""
    return _sub(parent, "geom", contype="0", conaffinity="0", **attrib)


def _visual(parent: ET.Element, mesh: str, **attrib: str) -> None:
    _sub(parent, "geom", class_="visual", mesh=mesh, **attrib)


def _scene(root: ET.Element, world: ET.Element, task: str) -> list[str]:
    """Table, regions or bins, cube and goal marker; returns the bin wall geoms' names."""
    scene = SCENES[task]
    # The reference's table: a plane at y = 0.2 (its body's offset), only touched through pairs.
    _silent(
        world,
        name="table_geom",
        type_="plane",
        pos="0 0.2 0",
        size="2.8 2.4 0.1",
        friction="0.2 0.005 0.0001",
        rgba="0.82 0.8 0.76 1",
    )
    walls = []
    for (x, y, half), side, rgba in zip(scene["regions"], "AB", (BLUE, RED), strict=False):
        if not scene.get("bins"):
            _silent(
                world,
                name=f"bin{side}_floor",
                type_="box",
                pos=_vec((x, y, 0.0005)),
                size=_vec((half, half, 0.0005)),
                rgba=rgba,
            )
            continue
        # Four 6.6 cm walls, 1 cm thick; the +-x walls fit between the +-y ones.
        inner = half - 0.005
        for k, (dx, dy, sx, sy) in enumerate(
            ((0, -inner, half, 0.005), (0, inner, half, 0.005))
            + ((inner, 0, 0.005, half - 0.01),)
            + ((-inner, 0, 0.005, half - 0.01),)
        ):
            name = f"bin{side}{k + 1}"
            walls.append(name)
            _silent(
                world,
                name=name,
                type_="box",
                pos=_vec((x + dx, y + dy, 0.033)),
                size=_vec((sx, sy, 0.033)),
                rgba=rgba,
            )
    if scene["cube"] is not None:
        cube = _sub(world, "body", name="cube", pos=_vec(scene["cube"]))
        _sub(cube, "freejoint")
        _silent(cube, name="cube_geom", type_="box", size=_vec([CUBE_HALF] * 3), rgba="0 0.4 0 1")
    marker = _sub(world, "body", name="goal_marker", pos=_vec(scene["marker"]), gravcomp="1")
    _sub(marker, "freejoint")
    if task == "reach":
        _silent(marker, name="goal_marker_geom", type_="sphere", size="0.03", rgba="0.3 1 0.3 1")
    elif task == "grasp":
        # Two fingertip targets 7 cm apart along x (the body's quaternion turns y onto x).
        marker.set("quat", "1 0 0 1")
        for name, pos in (("left", "0 0 0"), ("right", "0 0.07 0")):
            _silent(
                marker,
                name=f"{name}_finger_goal_geom",
                type_="box",
                pos=pos,
                size="0.005 0.005 0.005",
                rgba="1 0.2 0.2 1",
            )
    else:
        _silent(
            marker,
            name="goal_marker_geom",
            type_="box",
            size=_vec([CUBE_HALF] * 3),
            rgba="0.3 1 0.3 1",
        )
    return walls


def _arm(world: ET.Element, task: str) -> None:
    _visual(world, "link0")
    parent = world
    for name, pos, quat, mass, com, inertia, limits in ARM_LINKS:
        body = _sub(parent, "body", name=name, pos=pos, quat=quat)
        _sub(body, "inertial", mass=mass, pos=com, fullinertia=inertia)
        joint = _sub(body, "joint", name=f"joint{name[-1]}", axis="0 0 1")
        if limits:
            joint.set("range", limits)
        _visual(body, name)
        parent = body
    hand = _sub(parent, "body", name="hand", pos="0 0 0.107", quat="0.9238795 0 0 -0.3826834")
    _visual(hand, "hand")
    _silent(
        hand,
        name="hand_geom",
        type_="capsule",
        size="0.04 0.06",
        pos="0 0 0.035",
        quat="1 1 0 0",
        rgba="1 1 1 1",
    )
    if task == "reach":
        return
    for k, (side, quat) in enumerate((("left", "1 0 0 0"), ("right", "0 0 0 1"))):
        finger = _sub(hand, "body", name=f"{side}_finger", pos="0 0 0.0584", quat=quat)
        _sub(finger, "inertial", mass="0.015", pos="0 0 0", diaginertia="2.375e-6 2.375e-6 7.5e-7")
        _sub(
            finger,
            "joint",
            name=f"finger_joint{k + 1}",
            type_="slide",
            axis="0 1 0",
            range="0 0.05",
            armature="0.1",
            damping="5",
        )
        _visual(finger, "finger")
        _silent(
            finger,
            name=f"{side}_finger_geom",
            type_="box",
            size="0.015 0.005 0.04",
            pos="0 0.0055 0.035",
            friction="10 0.005 0.0001",
            rgba="0.25 0.25 0.25 1",
        )
        if task == "grasp":
            # A 1 cm cube on a (nearly) locked hinge marks each fingertip for the observation.
            tip = _sub(finger, "body", name=f"{side}_fingertip", pos="0 0.005 0.07")
            _sub(tip, "joint", name=f"{side}_fingertip_joint", axis="0 0 1", range="-0.0001 0.0001")
            _silent(
                tip,
                name=f"{side}_fingertip_geom",
                type_="box",
                size="0.005 0.005 0.005",
                rgba="1 0 0 1",
            )


def _pairs(root: ET.Element, task: str, walls: list[str]) -> None:
    contact = _sub(root, "contact")
    robot = ("hand_geom",) if task == "reach" else ("hand_geom", "left_finger_geom")
    robot += () if task == "reach" else ("right_finger_geom",)
    pairs = []
    if task != "reach":
        pairs += [("cube_geom", other) for other in ("table_geom", *robot, *walls)]
    pairs += [("table_geom", geom) for geom in robot]
    # The reference lists the finger-bin and hand-bin pairs after the table's.
    pairs += [(geom, wall) for geom in robot[1:] + robot[:1] for wall in walls]
    if task != "reach":
        pairs.append(("left_finger_geom", "right_finger_geom"))
    for geom1, geom2 in pairs:
        _sub(contact, "pair", geom1=geom1, geom2=geom2)


def _actuators(root: ET.Element, task: str) -> None:
    actuator = _sub(root, "actuator")
    common = {"dyntype": "none", "biastype": "affine"}
    for name, joint, gain, bias, ctrl, force in ARM_ACTUATORS:
        _sub(
            actuator,
            "general",
            name=name,
            joint=joint,
            gainprm=gain,
            biasprm=bias,
            ctrlrange=ctrl,
            forcerange=force,
            **common,
        )
    if task == "reach":
        return
    for k in (1, 2):
        _sub(
            actuator,
            "general",
            name=f"actuator{7 + k}",
            joint=f"finger_joint{k}",
            forcerange="-500 500",
            **FINGER_ACTUATOR,
            **common,
        )


def task_xml(task: str, meshdir: str | None = None) -> str:
    """The MJCF text of ``task``'s model (fused as the reference's loader fuses it); with the
    Panda's meshes from ``meshdir``, without them (the physics model) when ``None``."""
    root = ET.Element("mujoco", model=f"goalax_panda_{task}")
    _sub(root, "compiler", angle="radian", autolimits="true")
    # The reference's solver settings (set on its brax system after loading).
    option = _sub(
        root,
        "option",
        timestep="0.002",
        iterations="6",
        ls_iterations="12",
        integrator="implicitfast",
    )
    if task.startswith("binpick"):
        option.set("impratio", "10")
    default = _sub(_sub(root, "default"), "default", class_="visual")
    _sub(default, "geom", type_="mesh", contype="0", conaffinity="0", group="2", mass="0")
    if meshdir is not None:
        root.find("compiler").set("meshdir", meshdir)
        asset = _sub(root, "asset")
        for mesh in MESHES:
            _sub(asset, "mesh", name=mesh, file=f"{mesh}.stl")
    world = _sub(root, "worldbody")
    _sub(world, "light", name="top", pos="0 0 2", mode="trackcom")
    _sub(world, "camera", name="track", pos="0.9 -0.6 1.0", xyaxes="0.55 0.83 0 -0.5 0.33 0.8")
    walls = _scene(root, world, task)
    _arm(world, task)
    if task != "reach":
        _sub(
            _sub(root, "equality"),
            "joint",
            joint1="finger_joint1",
            joint2="finger_joint2",
            solimp="0.95 0.99 0.001",
            solref="0.005 1",
        )
    _pairs(root, task, walls)
    _actuators(root, task)
    if meshdir is None:
        for parent in root.iter():
            for child in [c for c in parent if c.get("class") == "visual"]:
                parent.remove(child)
    return brax_mjcf.fuse_bodies(ET.tostring(root, encoding="unicode"))
