"""End to end through the real Airflow services: `airflow standalone` on 127.0.0.1, driven over REST.

This is what `make airflow` runs and what the README's curl commands do: log in, unpause, trigger
ingest_validate with a date range, wait for the scheduler + LocalExecutor to finish it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import free_port

pytestmark = pytest.mark.slow


def test_rest_triggered_run_succeeds(airflow_db, airloop_home):
    from airloop.lake import Lake
    from airloop.settings import load_settings
    from airloop_tools.airflow_runtime import local_airflow
    from airloop_tools.bootstrap import ensure_state

    ensure_state(Path(os.environ["AIRFLOW_HOME"]))
    with local_airflow(port=free_port(), log_path=airloop_home / "standalone.log") as api:
        assert (
            api.wait_until("DAG parsed", lambda: api.dag("ingest_validate"), 180)["dag_id"]
            == "ingest_validate"
        )
        api.set_paused("ingest_validate", False)
        run_id = api.trigger("ingest_validate", conf={"first_day": "2013-03-01", "last_day": "2013-03-03"})
        state = api.wait_run("ingest_validate", run_id, timeout=300)
        tasks = api.task_states("ingest_validate", run_id)
        summary = api.xcom("ingest_validate", run_id, "check_quarantine")
    assert state == "success", tasks
    assert set(tasks.values()) == {"success"}
    assert summary["validated"] == 3 and summary["quarantined"] == 0
    assert Lake(load_settings().lake).validated_days() == ["2013-03-01", "2013-03-02", "2013-03-03"]
