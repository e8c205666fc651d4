"""The images on their own: what they are (user, labels, health check, pins) and how their entry point
treats bad configuration and absent dependencies. No stack needed; a Docker engine and the built images."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from stack import docker, env_file, read_env

pytestmark = pytest.mark.compose

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    env = read_env(env_file())
    return {
        "runtime": env["AIRLOOP_RUNTIME_IMAGE"],
        "serving": env["AIRLOOP_SERVING_IMAGE"],
        "mlflow": env["AIRLOOP_MLFLOW_IMAGE"],
    }


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("role", ["runtime", "serving", "mlflow"])
def test_image_runs_as_non_root_with_labels_and_a_health_check(images, role):
    [info] = json.loads(docker("image", "inspect", images[role]).stdout)
    config = info["Config"]
    assert config["User"] == "airloop"
    labels = config["Labels"]
    assert (
        labels["org.opencontainers.image.version"]
        and labels["org.opencontainers.image.revision"] != "unknown"
    )
    assert labels["org.opencontainers.image.title"] == f"airloop-{role}"
    assert config["Healthcheck"]["Test"][-1].endswith("healthcheck.py")
    assert not [e for e in config["Env"] if any(s in e for s in ("PASSWORD", "SECRET", "FERNET", "DSN"))]


def test_runtime_image_holds_exactly_the_pins_cpu_torch_and_the_project(images):
    out = docker(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "python",
        images["runtime"],
        "-c",
        "import importlib.metadata as m, torch, airloop.settings, json;"
        "print(json.dumps({'pins': {d.metadata['Name']: d.version "
        "for d in m.distributions()}, 'cuda': torch.version.cuda, 'torch': torch.__version__}))",
    ).stdout
    found = json.loads(out.strip().splitlines()[-1])
    found["pins"] = {canonicalize_name(name): version for name, version in found["pins"].items()}
    assert found["cuda"] is None and found["torch"].startswith("2.13.0")
    wanted = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split(";")[0].strip().split("==")
            wanted[canonicalize_name(name)] = version
    # async-timeout's marker (python_full_version < "3.11.3") holds for the image's Debian Python 3.11.2
    mismatched = {
        n: (v, found["pins"].get(n))
        for n, v in wanted.items()
        if not (found["pins"].get(n) or "").startswith(v)
    }
    assert not mismatched
    assert not [n for n in found["pins"] if n.startswith("nvidia-cu")]


@pytest.mark.parametrize(
    ("command", "env", "names"),
    [
        (["airflow", "scheduler"], {}, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"),
        (
            ["airflow", "celery", "worker"],
            {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://x@127.0.0.1:1/a",
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            },
            "AIRFLOW__CELERY__BROKER_URL",
        ),
        (
            ["bentoml", "serve", "airloop.serving.service:PredictionService"],
            {"AIRLOOP_ENV": "production"},
            "AIRLOOP_POSTGRES_DSN",
        ),
        (["mlflow", "server"], {}, "MLFLOW_BACKEND_STORE_URI"),
    ],
)
def test_a_missing_required_variable_stops_the_container_at_once_naming_it(images, command, env, names):
    image = images["mlflow" if command[0] == "mlflow" else "runtime"]
    args = [x for k, v in env.items() for x in ("-e", f"{k}={v}")]
    started = time.monotonic()
    result = docker("run", "--rm", "--network", "none", *args, image, *command, check=False, timeout=120)
    assert result.returncode == 78, result.stderr[-2000:]
    assert names in result.stderr and "cannot start" in result.stderr
    assert time.monotonic() - started < 60  # no Airflow import, no waiting: it says so at once


def test_the_entry_point_waits_for_a_dependency_instead_of_crash_looping(images):
    """A task container started before its Redis waits (and says so), then runs once Redis answers."""
    env = read_env(env_file())
    port = free_port()
    name = f"airloop-wait-test-{os.getpid()}"
    waiting = docker(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        "-e",
        f"AIRLOOP_REDIS_URL=redis://127.0.0.1:{port}/0",
        "-e",
        "AIRLOOP_WAIT_TIMEOUT=120",
        images["runtime"],
        "airloop-task",
    ).stdout.strip()
    redis = None
    try:
        deadline = time.monotonic() + 60
        while "waiting for AIRLOOP_REDIS_URL" not in docker("logs", waiting, check=False).stderr:
            assert time.monotonic() < deadline, docker("logs", waiting, check=False).stderr
            time.sleep(0.5)
        assert json.loads(docker("inspect", waiting).stdout)[0]["State"]["Running"]
        redis = docker(
            "run",
            "-d",
            "--rm",
            "--network",
            "host",
            env["AIRLOOP_REDIS_IMAGE"],
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ).stdout.strip()
        status = int(docker("wait", waiting, timeout=120).stdout.strip())
        logs = docker("logs", waiting).stderr
        assert "AIRLOOP_REDIS_URL answers" in logs
        assert status == 2 and "usage: airloop-task" in logs  # the command itself ran (and wants its body)
    finally:
        docker("rm", "-f", waiting, check=False)
        if redis:
            docker("rm", "-f", redis, check=False)


def test_the_entry_point_gives_up_on_a_dependency_that_never_answers(images):
    result = docker(
        "run",
        "--rm",
        "--network",
        "host",
        "-e",
        f"AIRLOOP_REDIS_URL=redis://127.0.0.1:{free_port()}/0",
        "-e",
        "AIRLOOP_WAIT_TIMEOUT=3",
        images["runtime"],
        "airloop-task",
        "check_drift",
        check=False,
        timeout=120,
    )
    assert result.returncode == 69 and "gave up waiting for AIRLOOP_REDIS_URL" in result.stderr


def test_compose_file_is_valid_for_this_compose_and_names_no_secret():
    env_path = env_file()
    compose = os.environ.get("AIRLOOP_COMPOSE", "docker-compose").split()
    out = subprocess.run(
        [
            *compose,
            "-f",
            "docker-compose.yaml",
            "-f",
            "docker/compose.ports.yaml",
            "--env-file",
            str(env_path),
            "config",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "127.0.0.1:8080" in out.stdout or "127.0.0.1" in out.stdout
    text = (ROOT / "docker-compose.yaml").read_text()
    assert "PASSWORD:?" in text  # no default password: compose refuses to start without one
    without = subprocess.run(
        [*compose, "-f", "docker-compose.yaml", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"},
    )
    assert without.returncode != 0 and "POSTGRES_PASSWORD" in without.stderr
