"""Before a container's command runs: required variables present, dependencies answering.

Called by docker/entrypoint.sh with the container's command. Exit status 78 (EX_CONFIG) with a message that
names the missing variable; 69 (EX_UNAVAILABLE) when a dependency did not answer within
``AIRLOOP_WAIT_TIMEOUT`` seconds (default 300). Uses only the standard library and psycopg, so the check
costs ~0.2 s, not an Airflow import.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit

logger = logging.getLogger("airloop.wait_for")

AIRFLOW_SERVICES = {"api-server", "scheduler", "dag-processor", "triggerer", "celery", "db"}


def role(argv: list[str]) -> str:
    """What the container runs: airflow-<component>, mlflow, serving, task, init, or other."""
    name = os.path.basename(argv[0]) if argv else ""
    if name == "airflow" and len(argv) > 1 and argv[1] in AIRFLOW_SERVICES:
        return f"airflow-{argv[1]}"
    if name == "mlflow" and "server" in argv[1:2]:
        return "mlflow"
    if name == "bentoml" and "serve" in argv[1:2]:
        return "serving"
    if name in ("airloop-task", "airloop-init"):
        return name.removeprefix("airloop-")
    return "other"


def required(kind: str) -> list[str]:
    """Variables a role cannot start without (Airloop's own come from its settings object)."""
    needs: list[str] = []
    if kind.startswith("airflow-") or kind == "init":
        needs.append("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    if kind.startswith("airflow-") and kind != "airflow-db":
        needs += ["AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"]
        if os.environ.get("AIRFLOW__CORE__EXECUTOR", "") == "CeleryExecutor":
            needs += [
                "AIRFLOW__CELERY__BROKER_URL",
                "AIRFLOW__CELERY__RESULT_BACKEND",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
            ]
    if kind in ("mlflow", "init"):
        needs.append("MLFLOW_BACKEND_STORE_URI")
    return [name for name in needs if not os.environ.get(name)]


def settings_error() -> str | None:
    """Airloop's settings object decides what production needs (AIRLOOP_ENV=production)."""
    from pydantic import ValidationError

    from airloop.settings import load_settings

    try:
        load_settings()
    except ValidationError as exc:
        return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
    return None


def _postgres(url: str) -> Callable[[], None]:
    def probe() -> None:
        import psycopg

        dsn = url.split("://", 1)[1]
        try:
            with psycopg.connect(f"postgresql://{dsn}", connect_timeout=3) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError as exc:
            if "does not exist" not in str(exc):  # the server answers; the init job creates databases
                raise

    return probe


def _redis(url: str) -> Callable[[], None]:
    def probe() -> None:
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname or "localhost", parts.port or 6379), timeout=3) as s:
            s.sendall(b"PING\r\n")
            reply = s.recv(64)
        if not (reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH")):
            raise ConnectionError(f"unexpected reply {reply!r}")

    return probe


def _http(url: str) -> Callable[[], None]:
    def probe() -> None:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=3) as response:
            if response.status != 200:
                raise ConnectionError(f"HTTP {response.status}")

    return probe


def dependencies(kind: str) -> dict[str, Callable[[], None]]:
    """name -> probe, for what this role talks to."""
    env = os.environ
    deps: dict[str, Callable[[], None]] = {}

    def add(var: str) -> None:
        url = env.get(var, "")
        scheme = urlsplit(url).scheme.split("+")[0]
        if scheme.startswith("db") and "+" in url.split("://", 1)[0]:  # Celery's db+postgresql://
            scheme = url.split("://", 1)[0].split("+")[1]
        if scheme in ("postgresql", "postgres"):
            deps[var] = _postgres(url)
        elif scheme in ("redis", "rediss"):
            deps[var] = _redis(url)
        elif scheme in ("http", "https") and var == "AIRLOOP_MLFLOW_TRACKING_URI":
            deps[var] = _http(url)

    if kind.startswith("airflow-") or kind == "init":
        for var in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__BROKER_URL"):
            add(var)
    if kind in ("mlflow", "init"):
        add("MLFLOW_BACKEND_STORE_URI")
    if kind.startswith("airflow-") or kind in ("serving", "task", "init"):
        add("AIRLOOP_POSTGRES_DSN")
        add("AIRLOOP_REDIS_URL")
    if kind in ("serving", "task"):
        add("AIRLOOP_MLFLOW_TRACKING_URI")
    return deps


def wait(deps: dict[str, Callable[[], None]], timeout: float) -> list[str]:
    """Probe each dependency until it answers or the deadline passes; the ones that never did."""
    deadline = time.monotonic() + timeout
    pending = dict(deps)
    last: dict[str, str] = {}
    while pending:
        for name, probe in list(pending.items()):
            try:
                probe()
            except Exception as exc:  # noqa: BLE001 - any failure means "not yet"; the last one is reported
                if last.get(name) != type(exc).__name__:
                    logger.info("waiting for %s (%s: %s)", name, type(exc).__name__, str(exc).strip()[:200])
                last[name] = type(exc).__name__
            else:
                logger.info("%s answers", name)
                del pending[name]
        if pending and time.monotonic() > deadline:
            return sorted(pending)
        if pending:
            time.sleep(1)
    return []


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="airloop: %(message)s", stream=sys.stderr)
    kind = role(argv)
    missing = required(kind)
    if missing:
        logger.error("%s cannot start: set %s", " ".join(argv[:2]), ", ".join(missing))
        return 78
    problem = settings_error()
    if problem:
        logger.error("%s cannot start: %s", " ".join(argv[:2]), problem)
        return 78
    never = wait(dependencies(kind), float(os.environ.get("AIRLOOP_WAIT_TIMEOUT", "300")))
    if never:
        logger.error("gave up waiting for %s", ", ".join(never))
        return 69
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
