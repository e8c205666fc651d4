"""The task runner switch (plugins/task_runner.py, plugins/docker_task.py) and the container entry point
(airloop.orchestration.run_task): results, outcomes and settings cross the container boundary intact."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "plugins"))  # what Airflow does for the plugins folder


def test_the_container_gets_the_workers_airloop_settings_but_runs_the_body_locally():
    from docker_task import task_environment

    env = task_environment(
        {
            "AIRLOOP_ENV": "production",
            "AIRLOOP_POSTGRES_DSN": "postgresql://u:p@h/db",
            "AIRLOOP_TASK_RUNNER": "docker",
            "AIRLOOP_DOCKER__IMAGE": "x",
            "HOME": "/root",
            "AIRFLOW__CORE__FERNET_KEY": "secret",
            "AIRLOOP_TASK_KWARGS": "{}",
        }
    )
    assert env == {
        "AIRLOOP_ENV": "production",
        "AIRLOOP_POSTGRES_DSN": "postgresql://u:p@h/db",
        "AIRLOOP_TASK_RUNNER": "local",
    }


def test_the_result_is_the_last_result_line_whatever_was_logged_after_it():
    from docker_task import parse_result

    lines = [
        "INFO starting",
        'AIRLOOP_RESULT {"version": "1"}',
        "INFO shutting down\n",
        'AIRLOOP_RESULT {"version": "2", "rows": 3}\n',
        "atexit: flushed",
    ]
    assert parse_result(lines) == {"version": "2", "rows": 3}
    assert parse_result("AIRLOOP_RESULT [1, 2]") == [1, 2]


def test_a_container_without_a_result_line_fails_the_task():
    from airflow.sdk.exceptions import AirflowFailException
    from docker_task import parse_result

    with pytest.raises(AirflowFailException, match="without an AIRLOOP_RESULT"):
        parse_result(["Traceback ...", "but exit status 0"])


@pytest.mark.parametrize(("raised", "status"), [("skip", 99), ("fail", 98), (None, 0)])
def test_exit_status_carries_the_airflow_outcome(monkeypatch, capsys, raised, status):
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from airloop.orchestration import run_task, tasks

    def body(n: int) -> dict:
        if raised == "skip":
            raise AirflowSkipException("nothing to do")
        if raised == "fail":
            raise AirflowFailException("bad data")
        return {"n": n * 2}

    monkeypatch.setattr(tasks, "double_for_test", body, raising=False)
    monkeypatch.setenv("AIRLOOP_TASK_KWARGS", json.dumps({"n": 21}))
    assert run_task.main(["double_for_test"]) == status
    out = capsys.readouterr().out.strip().splitlines()
    assert out == (['AIRLOOP_RESULT {"n": 42}'] if raised is None else [])


def test_an_unknown_body_is_refused_by_name():
    from airloop.orchestration import run_task

    with pytest.raises(SystemExit, match="no task body 'rm_rf'"):
        run_task.run("rm_rf", {})
    with pytest.raises(SystemExit, match="no task body '_runtime'"):
        run_task.run("_runtime", {})


def test_the_local_runner_returns_the_result_and_sets_the_outlet_events(monkeypatch):
    from task_runner import run_body

    from airloop.orchestration import tasks

    monkeypatch.setattr(tasks, "echo_for_test", lambda **kw: {"days": kw["days"]}, raising=False)

    class Task:
        outlets = ["asset-a"]

    class TI:
        task = Task()

    class Event:
        extra: dict = {}

    events = {"asset-a": Event()}
    assert run_body("echo_for_test", {"days": ["2013-01-01"]}, TI(), events) == {"days": ["2013-01-01"]}
    assert events["asset-a"].extra == {"days": ["2013-01-01"]}
