"""`bentoml build` of the real-time service without Docker (what `make bento` runs), into a throw-away
bento store: no `uv` run or installed, the CPU torch pin, the serving pins equal to requirements.txt.
Serving the built bento needs a champion (see test_serving_http.py); that is not repeated here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
BENTOFILE = ROOT / "include" / "airloop" / "serving" / "bentofile.yaml"


def pinned(lines: list[str]) -> dict[str, Version]:
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"not an exact pin: {line}"
        pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def test_bento_pins_are_the_requirements_pins():
    """The bento lists a subset of requirements.txt with the same versions (torch: the +cpu build of it)."""
    bento = pinned(yaml.safe_load(BENTOFILE.read_text())["python"]["packages"])
    project = pinned((ROOT / "requirements.txt").read_text().splitlines())
    assert bento["torch"].local == "cpu"
    for name, version in bento.items():
        assert name in project, f"{name} is pinned in the bentofile but not in requirements.txt"
        assert version.public == project[name].public, (
            f"{name}: bentofile {version} != requirements.txt {project[name]}"
        )


@pytest.mark.slow
def test_bentoml_build_without_docker_or_uv(tmp_path):
    stub = tmp_path / "bin" / "uv"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/uv-called\nexit 1\n')
    stub.chmod(0o755)
    env = {
        **os.environ,
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
        "PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}",
    }  # as `make bento` does
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    build = subprocess.run(
        [bentoml, "build", "-f", str(BENTOFILE), "-o", "tag", str(ROOT / "include")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert not (tmp_path / "uv-called").exists(), (tmp_path / "uv-called").read_text()

    store = tmp_path / "bentoml" / "bentos" / "airloop_serving"
    (bento,) = [p for p in store.iterdir() if p.name != "latest"]
    assert (bento / "src" / "airloop" / "serving" / "service.py").read_bytes() == (
        ROOT / "include" / "airloop" / "serving" / "service.py"
    ).read_bytes()
    assert not list((bento / "src").rglob("*.pyc"))
    requirements = (bento / "env" / "python" / "requirements.txt").read_text().splitlines()
    assert "torch==2.13.0+cpu" in requirements
    assert f"bentoml=={_bentoml_version()}" in requirements
    assert not [r for r in requirements if "nvidia" in r.lower() or "cuda" in r.lower()]
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    assert info["service"] == "airloop.serving.service:PredictionService"
    assert info["name"] == "airloop_serving"

    listed = subprocess.run(
        [bentoml, "list", "airloop_serving", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bento.name in listed.stdout


def _bentoml_version() -> str:
    from importlib.metadata import version

    return version("bentoml")
