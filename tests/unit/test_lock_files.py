"""The lock files pin what pyproject.toml asks for, so `make install` and the image get what CI tested.

`make lock` compiles them; a requirement added to pyproject.toml without rerunning it fails here,
naming the requirement, instead of installing something unpinned (or nothing) later.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parents[2]
#: The lock files are compiled for the image's and CI's interpreter and platform (`make lock`).
TARGET = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
          "platform_system": "Linux", "os_name": "posix"}  # fmt: skip


def pins(lock: str) -> dict[str, Version]:
    """`name==version` lines of a lock file, by canonical name."""
    found = {}
    for line in (ROOT / lock).read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if not requirement or requirement.startswith("-"):
            continue
        name, separator, version = requirement.partition("==")
        assert separator, f"{lock}: {line!r} is not pinned with =="
        found[canonicalize_name(name.split("[")[0])] = Version(version.split(";")[0].strip())
    return found


def requirements(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = list(project["dependencies"])
    for extra in extras:
        listed += project["optional-dependencies"][extra]
    return [Requirement(text) for text in listed]


def unmet(lock: str, wanted: list[Requirement]) -> list[str]:
    pinned = pins(lock)
    problems = []
    for requirement in wanted:
        if requirement.marker is not None and not requirement.marker.evaluate(TARGET):
            continue
        version = pinned.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement} is not in {lock}")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement} but {lock} pins {version}")
    return problems


@pytest.mark.parametrize(("lock", "extras"), [("requirements.lock", ()), ("requirements-dev.lock", ("dev",))])
def test_every_requirement_of_pyproject_is_pinned_within_its_range(lock: str, extras: tuple[str, ...]):
    problems = unmet(lock, requirements(*extras))

    assert not problems, "run `make lock`:\n" + "\n".join(problems)


def test_the_image_runs_the_versions_the_tests_ran():
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")

    differ = {name: (version, dev.get(name)) for name, version in runtime.items() if dev.get(name) != version}
    assert not differ, f"requirements.lock and requirements-dev.lock disagree (run `make lock`): {differ}"


def test_a_requirement_missing_from_the_lock_is_named():
    assert unmet("requirements.lock", [Requirement("left-pad>=1")]) == [
        "left-pad>=1 is not in requirements.lock"
    ]
    assert unmet("requirements.lock", [Requirement("click<1")])[0].startswith("click<1 but")
