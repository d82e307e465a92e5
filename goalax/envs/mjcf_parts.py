"""MJCF text shared by the models goalax writes in code (the ant family, the point mazes)."""

from __future__ import annotations

__all__ = ["BRAX_NUMERICS"]

#: The ``<custom>`` numerics of the reference's models: brax's ``spring``/``positional`` solver
#: parameters, read by brax when it loads a model (MuJoCo and MJX ignore them).
BRAX_NUMERICS = """  <custom>
    <numeric name="constraint_limit_stiffness" data="1000"/>
    <numeric name="constraint_stiffness" data="4000"/>
    <numeric name="constraint_ang_damping" data="10"/>
    <numeric name="constraint_vel_damping" data="20"/>
    <numeric name="joint_scale_pos" data="0.5"/>
    <numeric name="joint_scale_ang" data="0.2"/>
    <numeric name="ang_damping" data="0"/>
    <numeric name="spring_mass_scale" data="1"/>
    <numeric name="spring_inertia_scale" data="1"/>
    <numeric name="solver_maxls" data="15"/>
  </custom>"""
