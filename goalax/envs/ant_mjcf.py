"""goalax's MJCF of the ant family, written from the numbers of the reference's models.

One quadruped (brax's ``ant.xml`` body: torso sphere, four legs of hip, upper and lower capsule
and a foot sphere, gear 150) serves every ant task. What the reference's task models
(jaxgcrl 0.2.8's ``ant.xml``, ``ant_ball.xml``, ``ant_maze.xml``, ``ant_push.xml``) change is a
parameter here: which parts collide (``Contacts``), the geoms' density and contact softness
(``ant_push``'s ant is 8x heavier) and the bodies appended to the world.
The reference's goal marker (a massless-in-effect ``target`` body on two slide joints) is left
out: the goal is part of the observation, not of the physics.

Contact rule (MuJoCo's): two geoms on different, non-adjacent bodies collide when the contype of
one shares a bit with the conaffinity of the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from goalax.envs.mjcf_parts import BRAX_NUMERICS

#: ``(contype, conaffinity)`` of a geom.
Bits = tuple[int, int]

#: Contact bit of goalax's lower-leg capsules: only the floor accepts it (see ``ant_mjcf``).
LOWER_LEG_BIT = 2
#: ``(leg body, index, x sign, y sign, upper geom, lower geom, foot geom, ankle axis, ankle
#: range in degrees)`` of the four legs, in the order of the model (and of ``q``).
LEGS = (
    ("front_left_leg", 1, 1, 1, "left_leg", "left_ankle", "left_foot", "-1 1 0", "30 70"),
    ("front_right_leg", 2, -1, 1, "right_leg", "right_ankle", "right_foot", "1 1 0", "-70 -30"),
    ("back_leg", 3, -1, -1, "back_leg", "third_ankle", "third_foot", "-1 1 0", "-70 -30"),
    ("right_back_leg", 4, 1, -1, "rightback_leg", "fourth_ankle", "fourth_foot", "1 1 0", "30 70"),
)
LOWER_LEGS = tuple(f"{leg[5]}_geom" for leg in LEGS)
#: Motors in the reference's order: leg 4 first, then legs 1-3 (hip, then ankle).
ACTUATED_LEGS = (4, 1, 2, 3)
GEAR = 150


@dataclass(frozen=True)
class Contacts:
    """``(contype, conaffinity)`` of each part of the ant's world. The upper legs never
    collide; the lower legs' floor contacts are ``ant_mjcf``'s ``lower_leg_contacts``."""

    floor: Bits = (0, 1)
    torso: Bits = (0, 0)
    #: The four torso-to-hip capsules (``aux_*_geom``).
    hips: Bits = (0, 0)
    feet: Bits = (1, 0)


#: The reference's contact bits of each task model. ``ant``: only the feet touch the floor.
PLAIN = Contacts()
#: ``ant_ball`` (and the ball mazes): the ball (``BALL_BITS``) meets the torso and the feet;
#: feet meet each other and the torso.
SOCCER = Contacts(torso=(0, 1), feet=(1, 1))
#: Ant mazes: the walls (1, 1) meet torso, hip capsules and feet.
MAZE = Contacts(torso=(0, 1), hips=(0, 1), feet=(1, 1))
#: ``ant_push``: the torso also touches the floor; fixed walls (0, 1), the block (1, 1).
PUSH = Contacts(torso=(1, 0))
#: The ball of Ant Soccer: it touches what accepts bit 1 (floor, torso, feet, walls).
BALL_BITS: Bits = (1, 0)
#: The ball: radius 0.5, mass 0.576 (density 1.1), sliding on x and y at height 0.5.
BALL_RADIUS = 0.5
BALL_DENSITY = 1.1


def _bits(bits: Bits) -> str:
    return f'contype="{bits[0]}" conaffinity="{bits[1]}"'


def _leg(leg: tuple, contacts: Contacts, lower: Bits) -> str:
    body, i, sx, sy, upper_geom, lower_geom, foot_geom, ankle_axis, ankle_range = leg
    hip = f"{0.2 * sx:g} {0.2 * sy:g} 0"
    tip = f"{0.4 * sx:g} {0.4 * sy:g} 0"
    return f"""
      <body name="{body}" pos="0 0 0">
        <geom name="aux_{i}_geom" type="capsule" fromto="0 0 0 {hip}" size="0.08"
          {_bits(contacts.hips)}/>
        <body name="aux_{i}" pos="{hip}">
          <joint name="hip_{i}" type="hinge" pos="0 0 0" axis="0 0 1" range="-30 30"/>
          <geom name="{upper_geom}_geom" type="capsule" fromto="0 0 0 {hip}" size="0.08"/>
          <body pos="{hip}">
            <joint name="ankle_{i}" type="hinge" pos="0 0 0" axis="{ankle_axis}"
              range="{ankle_range}"/>
            <geom name="{lower_geom}_geom" type="capsule" fromto="0 0 0 {tip}" size="0.08"
              {_bits(lower)}/>
            <geom name="{foot_geom}_geom" type="sphere" pos="{tip}" size="0.08" mass="0"
              {_bits(contacts.feet)}/>
          </body>
        </body>
      </body>"""


def ant_mjcf(
    contacts: Contacts,
    *,
    lower_leg_contacts: bool,
    world: str = "",
    density: float = 5.0,
    solimp: str | None = None,
) -> str:
    """The ant's MJCF with ``world`` (walls, a ball, a block) appended to the world body.

    ``lower_leg_contacts`` gives the four lower-leg capsules contact bit ``LOWER_LEG_BIT``,
    which only the floor accepts, so they touch the floor and nothing else. In the reference
    only the foot spheres touch it and a kneeling ant's knees sink through the floor (18 cm over
    32 envs x 1000 random steps); ``False`` restores the reference's contact set.
    """
    lower: Bits = (LOWER_LEG_BIT, 0) if lower_leg_contacts else (0, 0)
    floor = (contacts.floor[0], contacts.floor[1] | lower[0])
    legs = "".join(_leg(leg, contacts, lower) for leg in LEGS)
    motors = "".join(
        f'\n    <motor joint="{joint}_{i}" gear="{GEAR}" ctrllimited="true" ctrlrange="-1 1"/>'
        for i in ACTUATED_LEGS
        for joint in ("hip", "ankle")
    )
    soft = f' solimp="{solimp}"' if solimp else ""
    return f"""<mujoco model="ant">
  <compiler angle="degree" coordinate="local" inertiafromgeom="true"/>
  <option timestep="0.01" iterations="4"/>
{BRAX_NUMERICS}
  <default>
    <joint armature="1" damping="1" limited="true"/>
    <geom contype="0" conaffinity="0" condim="3" density="{density:g}" friction="1 0.5 0.5"{soft}
      rgba="0.8 0.6 0.4 1"/>
  </default>
  <asset>
    <texture name="sky" type="skybox" builtin="gradient" rgb1="1 1 1" rgb2="0 0 0"
      width="100" height="100"/>
    <texture name="grid" type="2d" builtin="checker" rgb1="0 0 0" rgb2="0.8 0.8 0.8"
      width="100" height="100"/>
    <material name="MatPlane" texture="grid" texrepeat="60 60" reflectance="0.5" shininess="1"
      specular="1"/>
  </asset>
  <worldbody>
    <light directional="true" pos="0 0 1.3" dir="0 0 -1.3" diffuse="1 1 1" specular=".1 .1 .1"/>
    <geom name="floor" type="plane" pos="0 0 0" size="150 150 40" condim="3" material="MatPlane"
      rgba="1 1 1 1" {_bits(floor)}/>
    <body name="torso" pos="0 0 0.75">
      <camera name="track" mode="trackcom" pos="0 -3 0.3" xyaxes="1 0 0 0 0 1"/>
      <geom name="torso_geom" type="sphere" pos="0 0 0" size="0.25" {_bits(contacts.torso)}/>
      <joint name="root" type="free" pos="0 0 0" armature="0" damping="0" limited="false"
        margin="0.01"/>{legs}
    </body>
    {world}
  </worldbody>
  <actuator>{motors}
  </actuator>
</mujoco>
"""


def ball_body() -> str:
    """Ant Soccer's ball (named as the reference's ``object``): a sphere sliding on x and y (it
    cannot roll or leave the floor), at ``q`` = its ``x, y``. Its slide joints keep the default
    armature 1, so a push accelerates it as a 1.58 kg mass."""
    joints = "".join(
        f'<joint name="obj_slide{axis}" type="slide" pos="0 0 0" axis="{vector}" '
        'damping="0" range="-100 100"/>'
        for axis, vector in (("x", "1 0 0"), ("y", "0 1 0"))
    )
    return (
        f'<body name="object" pos="0 0 {BALL_RADIUS}">{joints}'
        f'<geom name="object_geom" type="sphere" size="{BALL_RADIUS}" density="{BALL_DENSITY}" '
        f'{_bits(BALL_BITS)} rgba="0.95 0.85 0.2 1"/></body>'
    )


def box_geom(name: str, centre, half, bits: Bits, rgba: str = "0.55 0.5 0.45 1") -> str:
    """A fixed box geom: ``centre``/``half`` are ``(x, y, z)``."""
    return (
        f'<geom name="{name}" type="box" pos="{centre[0]:g} {centre[1]:g} {centre[2]:g}" '
        f'size="{half[0]:g} {half[1]:g} {half[2]:g}" {_bits(bits)} rgba="{rgba}"/>'
    )
