"""The production stack end to end: the compose file's services on a real engine, driven like a user does.

Through Airflow's REST API: ingest a month, materialize it, train with the DockerOperator runner on the Celery
worker (one task container killed mid-run: the task fails, its retry succeeds, the lake stays consistent),
the serving container answers ``/predict`` with that champion (pulled from the MLflow server), the served rows
land in the PostgreSQL live log, ``drift_monitor`` runs its check in a task container, ``batch_inference``
scores a day in one (its Asset event carries the result); then ``down`` and ``up`` again keep every piece
of state (named volumes).
"""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from stack import Stack, champion_version, docker, record, rest, serving_auth, task_instance, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.compose]

ROOT = Path(__file__).resolve().parents[2]
FIRST, LAST = "2013-01-01", "2013-01-31"
# a few epochs: the stack is under test here, not the model (its quality is measured in bench/)
TRAIN = {
    "holdout_end": "2013-02-01",
    "train_days": 24,
    "holdout_days": 7,
    "reason": "compose test",
    "hyperparameters": {"epochs": 3, "members": 2, "ple_bins": 16},
}
SERVED_DAYS = (date(2013, 2, 1), date(2013, 2, 2), date(2013, 2, 3))


def task_log(api, dag_id: str, run_id: str, task_id: str, attempt: int) -> str:
    body = api.request(
        "GET",
        f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{attempt}",
        params={"full_content": True},
    )
    content = body.get("content", "")
    return content if isinstance(content, str) else json.dumps(content)


def kill_first_try(stack: Stack, task_id: str, timeout: float = 600) -> str:
    """SIGKILL the first task container of ``task_id`` once its body runs; the container's id."""

    def running() -> str | None:
        out = docker(
            "ps",
            "-q",
            "--filter",
            f"label=airloop.task_id={task_id}",
            "--filter",
            "label=airloop.try_number=1",
        ).stdout.split()
        if not out:
            return None
        logs = docker("logs", out[0], check=False).stderr
        return out[0] if "answers" in logs or "INFO" in logs else None  # past its dependency checks

    container = wait_for(f"a running {task_id} container", running, timeout, poll=0.5)
    docker("kill", container)
    return container


def live_rows(stack: Stack, request_ids: list[str]) -> int:
    import psycopg

    with psycopg.connect(stack.postgres_dsn("airloop")) as conn:
        exists = conn.execute("SELECT to_regclass('airloop_live_log')").fetchone()[0]
        if exists is None:
            return 0
        return conn.execute(
            "SELECT count(*) FROM airloop_live_log WHERE request_id = ANY(%s)", (request_ids,)
        ).fetchone()[0]


def served_flights():
    import pandas as pd

    from airloop.batch import schedule
    from airloop.sources import ReplaySource
    from airloop.usecases import load_use_case

    use_case = load_use_case("flights")
    source = ReplaySource(ROOT / "include" / "data" / "nycflights13")
    return pd.concat([schedule(use_case, source, d) for d in SERVED_DAYS], ignore_index=True), use_case


def test_the_loop_runs_on_the_compose_stack(stack: Stack) -> None:
    from airloop_tools.service_runner import request_rows

    api = rest(stack)
    api.wait_until("DAGs parsed by the dag-processor", lambda: api.dag("drift_monitor"), 300, 3)
    for dag_id in ("ingest_validate", "materialize_features", "train_model"):
        api.set_paused(dag_id, False)

    # 1. ingest + validate a month on the Celery worker; its Asset event schedules materialize_features
    t0 = time.monotonic()
    ingest = api.trigger("ingest_validate", {"first_day": FIRST, "last_day": LAST, "chunk_days": 8})
    assert api.wait_run("ingest_validate", ingest, 1200) == "success", api.task_states(
        "ingest_validate", ingest
    )
    record("compose_ingest_31_days", seconds=round(time.monotonic() - t0, 1))
    materialize = api.wait_new_run("materialize_features", set(), 300)
    assert api.wait_run("materialize_features", materialize, 900) == "success"

    # 2. train with the DockerOperator runner; the first build_training_set container is killed mid-run
    t0 = time.monotonic()
    train = api.trigger("train_model", TRAIN)
    killed = kill_first_try(stack, "build_training_set")
    assert api.wait_run("train_model", train, 1800) == "success", api.task_states("train_model", train)
    record(
        "compose_train_model_run",
        seconds=round(time.monotonic() - t0, 1),
        note="includes one killed try + retry delay",
    )
    built = task_instance(api, "train_model", train, "build_training_set")
    assert built["try_number"] == 2 and built["state"] == "success"
    assert "Docker container failed" in task_log(api, "train_model", train, "build_training_set", 1)
    trained = task_instance(api, "train_model", train, "train")
    assert trained["operator"] == "AirloopDockerOperator" and trained["executor"] in (None, "CeleryExecutor")
    assert (
        trained["queue"] == "default" and trained["unixname"] == "airloop"
    )  # the Celery worker container ran it
    log = task_log(api, "train_model", train, "train", trained["try_number"])
    assert (
        "AIRLOOP_RESULT" in log and "training" in log.lower()
    )  # the container's own output, in the task log
    result = api.xcom("train_model", train, "train")
    built_xcom = api.xcom("train_model", train, "build_training_set")
    # the retried write is whole: the training set on the lake volume is the retry's, with nothing
    # half-written
    listing = docker(
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        f"{stack.env['AIRLOOP_LAKE_VOLUME']}:/lake:ro",
        "--entrypoint",
        "find",
        stack.env["AIRLOOP_RUNTIME_IMAGE"],
        "/lake/training",
        "-type",
        "f",
    ).stdout.split()
    assert sorted(Path(p).name for p in listing) == ["holdout.parquet", "train.parquet"], (listing, killed)
    assert built_xcom["train_rows"] == result["train_rows"]
    promoted = api.xcom("train_model", train, "promote")
    assert promoted["champion"] == result["version"] == champion_version(stack)

    # 3. the serving container pulls the champion from the MLflow server and answers
    # /predict needs the stack's bearer token (AIRLOOP_SERVING_TOKEN, required by the compose file);
    # the probes do not
    serving = httpx.Client(base_url=stack.url("serving"), timeout=60, headers=serving_auth(stack))
    anonymous = httpx.Client(base_url=stack.url("serving"), timeout=60)
    wait_for("serving ready with the champion", lambda: anonymous.get("/readyz").status_code == 200, 180)
    events, use_case = served_flights()
    first = request_rows(events.iloc[:1], use_case.known_before_event)
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        refused = anonymous.post("/predict", json={"rows": first}, headers=headers)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    request_ids, served = [], 0
    for start in range(0, len(events), 500):
        chunk = events.iloc[start : start + 500]
        response = serving.post("/predict", json={"rows": request_rows(chunk, use_case.known_before_event)})
        assert response.status_code == 200, response.text[:500]
        body = response.json()
        assert body["model_version"] == result["version"]
        request_ids.append(body["request_id"])
        served += len(body["predictions"])
    bad = serving.post("/predict", json={"rows": [{"year": 2013}]})
    assert bad.status_code == 400 and "month" in bad.text

    # 4. every served row lands in the PostgreSQL live log
    wait_for("served rows in airloop_live_log", lambda: live_rows(stack, request_ids) == served, 60)

    # 5. drift_monitor: the sensor (triggerer) sees the rows, check_drift runs in a task container
    api.set_paused("drift_monitor", False)
    monitor = api.wait_new_run("drift_monitor", set(), 300)
    wait_for(
        "check_drift finished",
        lambda: api.task_states("drift_monitor", monitor).get("check_drift") in ("success", "failed"),
        900,
        poll=3,
    )
    assert api.task_states("drift_monitor", monitor)["check_drift"] == "success"
    check = api.xcom("drift_monitor", monitor, "check_drift")
    assert check["window"]["rows"] == served and check["status"]
    assert task_instance(api, "drift_monitor", monitor, "check_drift")["operator"] == "AirloopDockerOperator"
    api.set_paused("drift_monitor", True)
    record("compose_served_rows", rows=served, drift_status=check["status"])
    airloop_view(stack, api, result["version"], served)

    # 6. batch scoring in a task container: the predictions partition lands on the lake volume
    api.set_paused("batch_inference", False)
    batch = api.trigger("batch_inference", {"day": "2013-02-01"})
    assert api.wait_run("batch_inference", batch, 900) == "success", api.task_states("batch_inference", batch)
    scored = api.xcom("batch_inference", batch, "score")
    assert task_instance(api, "batch_inference", batch, "score")["operator"] == "AirloopDockerOperator"
    assert scored["rows"] == int((events["day"] == 1).sum()) and scored["model_version"] == result["version"]
    events_api = api.request("GET", "/assets/events", params={"source_dag_id": "batch_inference"})
    assert any(e["extra"].get("rows") == scored["rows"] for e in events_api["asset_events"])

    # 7. down and up again: the named volumes keep the metadata DB, registry, lake, live log and secrets
    stack.compose("down")
    stack.compose("up", "-d")
    stack.wait_healthy(600)
    api = rest(stack)  # same admin password: the secrets volume kept it
    assert api.run_state("ingest_validate", ingest) == "success"
    assert champion_version(stack) == result["version"]
    serving = httpx.Client(base_url=stack.url("serving"), timeout=60)  # (the probe needs no token)
    wait_for("serving ready after restart", lambda: serving.get("/readyz").status_code == 200, 180)
    assert live_rows(stack, request_ids) == served


def airloop_view(stack: Stack, api: Any, champion: str, served: int) -> None:
    """The Airloop plugin ships in the runtime image: the api-server lists it and mounts its app, which
    answers 401 without an Airflow identity and, with one, reads the production stores (MLflow server,
    the lake volume the task containers wrote)."""
    plugins = api.request("GET", "/plugins")["plugins"]
    assert "airloop" in {p["name"] for p in plugins}
    assert api.request("GET", "/plugins/importErrors")["total_entries"] == 0
    ui = httpx.Client(base_url=stack.url("airflow"), timeout=60)
    assert ui.get("/airloop/api/models").status_code == 401
    signed = api.auth_headers()
    models = ui.get("/airloop/api/models", headers=signed)
    assert models.status_code == 200 and models.json()["champion"] == champion
    checks = ui.get("/airloop/api/drift", headers=signed).json()["checks"]
    newest = checks[0]
    assert newest["rows"] == served and newest["champion_version"] == champion
    report = ui.get(f"/airloop/reports/drift/{newest['id']}", headers=signed)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert ui.get("/airloop/reports/drift/..%2F..%2F..%2Fetc%2Fpasswd", headers=signed).status_code == 404
    page = ui.get("/airloop/models", headers=signed)
    assert page.status_code == 200 and f"v{champion}" in page.text
    record("compose_airloop_view", checks=len(checks))
