"""requirements.txt is the lock of the direct dependencies pyproject.toml declares: every line an exact pin,
every direct dependency pinned at a version its range allows (so the two cannot drift apart unnoticed)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def pins() -> dict[str, str]:
    locked = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        [spec] = requirement.specifier  # exactly one specifier: ==version
        assert spec.operator == "==", line
        locked[canonicalize_name(requirement.name)] = spec.version
    return locked


def test_every_direct_dependency_is_locked_within_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    direct = [Requirement(r) for r in project["dependencies"]]
    dev = [Requirement(r) for r in project["optional-dependencies"]["dev"]]
    locked = pins() | {
        canonicalize_name(Requirement(r).name): str(next(iter(Requirement(r).specifier))).lstrip("=")
        for r in (ROOT / "requirements-dev.txt").read_text().splitlines()
        if r.strip() and not r.startswith("#")
    }
    problems = []
    for requirement in [*direct, *dev]:
        version = locked.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement.name}: not pinned")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement.name}=={version} is outside {requirement.specifier}")
    assert problems == []


def test_the_marker_debian_python_needs_is_kept():
    """Debian's Python 3.11.2 (the images) needs async-timeout for redis; newer 3.11 patch levels do not."""
    line = next(
        x for x in (ROOT / "requirements.txt").read_text().splitlines() if x.startswith("async-timeout")
    )
    assert Requirement(line).marker is not None and "python_full_version" in str(Requirement(line).marker)
