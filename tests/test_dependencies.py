"""The installed physics stack is the pair goalax is tested with, and the lock agrees with the
package's own bounds.

MJX ships as ``mujoco-mjx`` beside ``mujoco``; a fresh install once resolved mujoco 4.0 beside
mjx 3.17 (nothing stops pip from pairing them), so the pair is checked where it is installed.
"""

from __future__ import annotations

import os
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = os.path.join(os.path.dirname(__file__), "..")
LOCK = os.path.join(ROOT, "requirements", "lock.txt")


def lock_pins(path: str = LOCK) -> dict[str, Version]:
    """``{normalised name: version}`` of every ``name==version`` line of a lock file."""
    pins = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                req = Requirement(line)
                (spec,) = req.specifier
                assert spec.operator == "==", f"{line!r}: the lock pins exact versions"
                pins[normalise(req.name)] = Version(spec.version)
    return pins


def normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def project_requirements(extras: tuple[str, ...] = ("dev",)) -> list[Requirement]:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    return [Requirement(r) for r in reqs]


def same_release(a: Version, b: Version) -> bool:
    return a.release == b.release


def test_installed_mujoco_and_mjx_are_one_release():
    mujoco, mjx = Version(metadata.version("mujoco")), Version(metadata.version("mujoco-mjx"))
    assert same_release(mujoco, mjx), (
        f"mujoco {mujoco} beside mujoco-mjx {mjx}: install the matching pair, e.g. "
        '`pip install -c requirements/lock.txt -e ".[dev]"`'
    )


def test_the_lock_pins_mujoco_and_mjx_to_one_release():
    pins = lock_pins()
    assert same_release(pins["mujoco"], pins["mujoco-mjx"])


def test_every_requirement_is_pinned_by_the_lock_within_its_bounds():
    pins = lock_pins()
    for req in project_requirements():
        name = normalise(req.name)
        assert name in pins, f"{req.name} is a dependency but not in requirements/lock.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"the lock pins {req.name}=={pins[name]}, outside pyproject's {req}"
        )


def test_the_installed_versions_are_the_locked_ones_in_ci():
    """CI installs with the lock as constraints, so every locked package it has is that version;
    elsewhere (a developer's own resolve) only the physics pair above is required."""
    if not os.environ.get("CI"):
        pytest.skip("outside CI the lock is a recommendation")
    differ = []
    for name, version in lock_pins().items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            differ.append(f"{name} (locked {version}) is not installed")
            continue
        if installed != version:
            differ.append(f"{name} {installed} (locked {version})")
    assert not differ, "; ".join(differ)


@pytest.mark.parametrize(
    ("text", "message"),
    [("numpy>=2\n", "exact"), ("# only a comment\nnumpy==2.4.6  # pinned\n", None)],
)
def test_lock_parsing(tmp_path, text, message):
    path = tmp_path / "lock.txt"
    path.write_text(text)
    if message:
        with pytest.raises(AssertionError, match=message):
            lock_pins(str(path))
    else:
        assert lock_pins(str(path)) == {"numpy": Version("2.4.6")}
