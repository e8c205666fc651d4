"""The image's HEALTHCHECK: what "healthy" means depends on the command the container runs (PID 1's argv).

- airflow api-server: ``/api/v2/monitor/health`` answers 200
- airflow scheduler / triggerer / dag-processor: a running job of its type with a heartbeat in the last
  60 s (the query ``airflow jobs check`` makes, without its ~2.5 s of Airflow start-up on every probe)
- airflow celery worker: ``celery inspect ping`` of this worker
- mlflow server: ``/health``; bentoml serve: ``/readyz`` (the champion is loaded)
- anything else (the init job, a task container): healthy while it runs
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request

JOB_TYPES = {"scheduler": "SchedulerJob", "triggerer": "TriggererJob", "dag-processor": "DagProcessorJob"}


def command() -> list[str]:
    with open("/proc/1/cmdline", "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    for i, arg in enumerate(argv):  # tini -- /opt/airloop/docker/entrypoint.sh CMD...
        if arg.endswith("entrypoint.sh"):
            return argv[i + 1 :]
    return argv


def option(argv: list[str], names: tuple[str, ...], env: str, default: str) -> str:
    for i, arg in enumerate(argv):
        if arg in names and i + 1 < len(argv):
            return argv[i + 1]
        for name in names:
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return os.environ.get(env, default)


def http_ok(port: str, path: str) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.status == 200


def airflow_hostname() -> str:
    """The host name Airflow records for its jobs (``airflow.utils.net.getfqdn``, without importing
    Airflow)."""
    name = socket.gethostname()
    try:
        addresses = socket.getaddrinfo(name, None, 0, socket.SOCK_DGRAM, 0, socket.AI_CANONNAME)
    except OSError:
        return name
    return next((a[3] for a in addresses if a[3]), name)


def job_alive(job_type: str) -> bool:
    """A running ``job_type`` job of this host heartbeating within 60 s, read from Airflow's ``job`` table."""
    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if not url.startswith("postgresql"):
        check = ["airflow", "jobs", "check", "--job-type", job_type, "--local"]
        return subprocess.run(check, capture_output=True, timeout=25).returncode == 0
    import psycopg

    with psycopg.connect("postgresql://" + url.split("://", 1)[1], connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FROM job WHERE job_type = %s AND state = 'running' AND hostname = %s"
            " AND latest_heartbeat > now() - interval '60 seconds'",
            (job_type, airflow_hostname()),
        ).fetchone()
    return bool(row and row[0])


def main() -> int:
    argv = command()
    name = os.path.basename(argv[0]) if argv else ""
    sub = argv[1] if len(argv) > 1 else ""
    if name == "airflow" and sub == "api-server":
        return (
            0
            if http_ok(option(argv, ("--port", "-p"), "AIRFLOW__API__PORT", "8080"), "/api/v2/monitor/health")
            else 1
        )
    if name == "airflow" and sub in JOB_TYPES:
        return 0 if job_alive(JOB_TYPES[sub]) else 1
    if name == "airflow" and sub == "celery":
        app = "airflow.providers.celery.executors.celery_executor.app"
        ping = ["celery", "--app", app, "inspect", "ping", "-d", f"celery@{socket.gethostname()}"]
        return subprocess.run(ping, capture_output=True, timeout=25).returncode
    if name == "mlflow":
        return 0 if http_ok(option(argv, ("--port", "-p"), "MLFLOW_PORT", "5000"), "/health") else 1
    if name == "bentoml":
        return 0 if http_ok(option(argv, ("--port", "-p"), "BENTOML_PORT", "3000"), "/readyz") else 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not crash
        print(f"unhealthy: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
