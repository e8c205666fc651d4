"""Driving the compose stack from outside: compose commands, health, addresses, REST and MLflow helpers.

Shared by the compose tests (tests/compose) and the container benchmark (bench/bench_containers.py). The
stack is ``docker-compose.yaml`` + ``docker/compose.hostnet.yaml`` with an env file such as the one
``docker/compose-test.sh`` writes: every address on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
logger = logging.getLogger(__name__)

SERVICES = (
    "postgres",
    "redis",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "mlflow",
    "serving",
)


def env_file() -> Path:
    """The stack's env file (``make compose-test`` writes it); skip where there is none."""
    path = os.environ.get("AIRLOOP_COMPOSE_ENV_FILE")
    if not path or not os.environ.get("DOCKER_HOST"):
        import pytest

        pytest.skip("the compose tests run under `make compose-test` (a Docker engine, images, an env file)")
    return Path(path)


def read_env(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return {k.strip(): v.strip() for k, v in pairs}


def record(name: str, **values: Any) -> None:
    """One measurement for the README/benchmark table (and the test log)."""
    logger.warning("measured %s: %s", name, values)
    out = os.environ.get("AIRLOOP_COMPOSE_RESULTS")
    if out:
        with open(out, "a") as f:
            f.write(json.dumps({"name": name, **values}) + "\n")


def docker(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=timeout)


@dataclass
class Stack:
    env: dict[str, str]
    project: str
    files: list[str] = field(default_factory=lambda: ["docker-compose.yaml", "docker/compose.hostnet.yaml"])

    def compose(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        base = shlex.split(os.environ.get("AIRLOOP_COMPOSE", "docker-compose"))
        files = [x for f in self.files for x in ("-f", f)]
        cmd = [*base, "-p", self.project, *files, "--env-file", os.environ["AIRLOOP_COMPOSE_ENV_FILE"], *args]
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        return result

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).stdout.strip().splitlines()[0]

    def health(self) -> dict[str, str]:
        states = {}
        for service in SERVICES:
            ids = self.compose("ps", "-q", service).stdout.split()
            if not ids:
                states[service] = "missing"
                continue
            state = json.loads(docker("inspect", ids[0]).stdout)[0]["State"]
            states[service] = (state.get("Health") or {}).get("Status") or state["Status"]
        return states

    def wait_healthy(self, timeout: float) -> float:
        """Seconds until every service is healthy (the serving container is healthy only with a champion,
        so ``serving`` counts once it runs, unless ``with_serving``)."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            states = self.health()
            pending = {
                s: v
                for s, v in states.items()
                if v != "healthy" and not (s == "serving" and v in ("starting", "unhealthy"))
            }
            if not pending:
                return time.monotonic() - started
            if time.monotonic() > deadline:
                logs = {s: self.compose("logs", "--tail", "30", s).stdout[-2000:] for s in pending}
                raise AssertionError(
                    f"not healthy within {timeout:.0f} s: {pending}\n{json.dumps(logs, indent=1)}"
                )
            time.sleep(2)

    def down(self, volumes: bool) -> None:
        """Stop the stack; with ``volumes``, also the task containers the worker started on the engine
        (they are not compose's, and one still running, e.g. a drift-triggered retraining, holds the lake
        volume)."""
        if volumes:
            self.compose("stop", "airflow-scheduler", "airflow-worker")  # no new task containers
            ids = docker("ps", "-aq", "--filter", "label=airloop.task_id").stdout.split()
            if ids:
                docker("rm", "-f", *ids)
            self.compose("down", "-v", "--remove-orphans")
        else:
            self.compose("down")

    def url(self, service: str) -> str:
        ports = {"airflow": "AIRFLOW_API_PORT", "mlflow": "MLFLOW_PORT", "serving": "SERVING_PORT"}
        return f"http://127.0.0.1:{self.env[ports[service]]}"

    def postgres_dsn(self, database: str) -> str:
        return (
            f"postgresql://{self.env.get('POSTGRES_USER', 'airloop')}:{self.env['POSTGRES_PASSWORD']}"
            f"@127.0.0.1:{self.env['POSTGRES_PORT']}/{database}"
        )


def serving_auth(stack: Stack) -> dict[str, str]:
    """The header the serving container's prediction routes require (the stack's AIRLOOP_SERVING_TOKEN)."""
    return {"Authorization": f"Bearer {stack.env['AIRLOOP_SERVING_TOKEN']}"}


def wait_for(what: str, check: Any, timeout: float, poll: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def rest(stack: Stack) -> Any:
    from airloop_tools.airflow_runtime import AirflowREST

    return AirflowREST(stack.url("airflow"), "admin", stack.env["AIRLOOP_ADMIN_PASSWORD"], timeout=60)


def task_instance(api: Any, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    return api.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")


def champion_version(stack: Stack, model: str = "flight_delay") -> str | None:
    import httpx

    response = httpx.get(
        f"{stack.url('mlflow')}/api/2.0/mlflow/registered-models/alias",
        params={"name": model, "alias": "champion"},
        timeout=30,
    )
    return response.json()["model_version"]["version"] if response.status_code == 200 else None
