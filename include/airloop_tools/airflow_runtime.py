"""Talk to a running Airflow through its REST API, and run this project's Airflow as local processes.

``AirflowREST`` is the small client the demo and the end-to-end tests use (the same calls a user makes
with curl, see README): token from ``POST /auth/token``, then Bearer calls on ``/api/v2``.
``local_airflow`` starts ``airflow standalone`` (API server + scheduler + dag-processor + triggerer) for
this project on 127.0.0.1, waits until it is healthy, and stops it afterwards.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

logger = logging.getLogger(__name__)

FINISHED = {"success", "failed"}


class AirflowError(RuntimeError):
    """Airflow answered, but not with what we asked for."""


class AirflowREST:
    """A narrow client of Airflow 3's public REST API (``/api/v2``), with a timeout on every call."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = {"username": username, "password": password}
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout)
        self._token: str | None = None

    def auth_headers(self) -> dict[str, str]:
        """The bearer header of this client's Airflow JWT (logs in once)."""
        if self._token is None:
            response = self._client.post("/auth/token", json=self._auth)
            if response.status_code >= 300:
                raise AirflowError(f"login failed ({response.status_code}): {response.text[:200]}")
            self._token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._client.request(method, f"/api/v2{path}", headers=self.auth_headers(), **kwargs)
        if response.status_code >= 300:
            raise AirflowError(f"{method} {path} -> {response.status_code}: {response.text[:300]}")
        return response.json() if response.content else None

    def healthy(self) -> bool:
        try:
            health = self._client.get("/api/v2/monitor/health").json()
        except (httpx.HTTPError, ValueError):
            return False
        return all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler"))

    def wait_until(self, what: str, check: Any, timeout: float, poll: float = 1.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = check()
            except (AirflowError, httpx.HTTPError) as err:
                logger.debug("waiting for %s: %s", what, err)
                value = None
            if value:
                return value
            time.sleep(poll)
        raise TimeoutError(f"Airflow: {what} not reached within {timeout:.0f}s")

    def dag(self, dag_id: str) -> dict[str, Any]:
        return self.request("GET", f"/dags/{dag_id}")

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def trigger(
        self, dag_id: str, conf: dict[str, Any] | None = None, logical_date: str | None = None
    ) -> str:
        body = {"logical_date": logical_date, "conf": conf or {}}
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float, poll: float = 3.0) -> str:
        """Block until the run has finished; return its state (``success`` or ``failed``)."""
        return self.wait_until(
            f"end of {dag_id}/{run_id}",
            lambda: (s := self.run_state(dag_id, run_id)) in FINISHED and s,
            timeout,
            poll,
        )

    def run_ids(self, dag_id: str) -> list[str]:
        runs = self.request(
            "GET", f"/dags/{dag_id}/dagRuns", params={"limit": 1000, "order_by": "-run_after"}
        )
        return [r["dag_run_id"] for r in runs["dag_runs"]]

    def wait_new_run(self, dag_id: str, known: set[str], timeout: float) -> str:
        """Wait for a run of ``dag_id`` not in ``known`` (e.g. one an Asset event created)."""
        return self.wait_until(
            f"a new run of {dag_id}",
            lambda: next((r for r in self.run_ids(dag_id) if r not in known), None),
            timeout,
        )

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        rows = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
        return {
            (ti["task_id"] if ti.get("map_index", -1) < 0 else f"{ti['task_id']}[{ti['map_index']}]"): ti[
                "state"
            ]
            for ti in rows["task_instances"]
        }

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        entry = self.request(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"deserialize": True},
        )
        value = entry["value"]
        return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value

    def close(self) -> None:
        self._client.close()


def admin_password(airflow_home: Path) -> str:
    """The generated admin password (``make setup`` wrote it; see README 'Log in')."""
    return json.loads((airflow_home / "simple_auth_manager_passwords.json").read_text())["admin"]


@contextmanager
def local_airflow(
    port: int = 8080,
    log_path: Path | None = None,
    startup_timeout: float = 120.0,
    extra_env: dict[str, str] | None = None,
) -> Iterator[AirflowREST]:
    """Run ``airflow standalone`` for this project on 127.0.0.1:``port`` while the block runs."""
    airflow_home = Path(os.environ["AIRFLOW_HOME"])
    airflow = Path(sys.executable).with_name("airflow")
    env = {
        **os.environ,
        # standalone starts its components as `airflow ...` by name: this interpreter's bin comes first
        "PATH": os.pathsep.join([str(airflow.parent), os.environ.get("PATH", "")]),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        **(extra_env or {}),
    }
    log_path = log_path or airflow_home / "standalone.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [str(airflow), "standalone"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    client = AirflowREST(f"http://127.0.0.1:{port}", "admin", admin_password(airflow_home))
    try:
        client.wait_until("a healthy scheduler", client.healthy, startup_timeout)
        yield client
    finally:
        client.close()
        _stop(process)


def _stop(process: subprocess.Popen, grace: float = 30.0) -> None:
    """SIGTERM the whole process group (standalone forks its components), then SIGKILL what lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
