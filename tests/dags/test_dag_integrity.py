"""Every DAG file imports cleanly, cheaply, and declares its reliability defaults (house style 1, 2, 10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted(p for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_"))
HEAVY = ["torch", "mlflow", "feast", "great_expectations", "bentoml", "sklearn", "pandas", "numba"]

PROBE = """
import json, sys, time, importlib.util
import airflow.sdk  # the budget starts after Airflow's own SDK is loaded
path = sys.argv[1]
spec = importlib.util.spec_from_file_location("dag_under_test", path)
module = importlib.util.module_from_spec(spec)
start = time.perf_counter()
spec.loader.exec_module(module)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "heavy": [m for m in sys.argv[2:] if m in sys.modules]}))
"""


@pytest.fixture(scope="module")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_dag_files_exist():
    assert DAG_FILES, "no DAG files found"


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}, dagbag.import_errors
    assert len(dagbag.dags) >= len(DAG_FILES)


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_parses_light(path: Path):
    """Fresh interpreter: importing the file loads no ML library (its parse time is measured by
    ``bench/bench_dag_parse.py``, not asserted here: a loaded 2-core CI box would make that flaky)."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), *HEAVY],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=True,
    )
    heavy = json.loads(out.stdout.strip().splitlines()[-1])["heavy"]
    assert heavy == [], f"{path.name} imports {heavy} at top level"


def test_reliability_defaults(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags and "airloop" in dag.tags, dag_id
        assert dag.doc_md, f"{dag_id} has no doc_md"
        for task in dag.tasks:
            assert task.owner == "airloop", (dag_id, task.task_id)
            assert task.execution_timeout is not None and task.execution_timeout <= timedelta(hours=2), (
                dag_id,
                task.task_id,
            )
            if task.task_id != "check_quarantine":  # a data-quality verdict does not change on retry
                assert task.retries >= 2, (dag_id, task.task_id, task.retries)


def test_ingest_validate_contract(dagbag):
    dag = dagbag.dags["ingest_validate"]
    assert dag.catchup is False  # history: a ranged run, a backfill, or AIRLOOP_INGEST__CATCHUP=true
    assert dag.start_date.isoformat() == "2013-01-01T05:00:00+00:00"  # midnight in New York
    assert dag.end_date.isoformat() == "2013-12-31T05:00:00+00:00"
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert "America/New_York" in str(dag.timetable.timezone)
    assert dag.timetable.expression == "0 0 * * *"
    assert set(dag.params.keys()) >= {"first_day", "last_day", "chunk_days"}
    emit = dag.get_task("emit_validated_asset")
    assert [o.uri for o in emit.outlets] == ["x-airloop://lake/validated"]
    assert {t.task_id for t in dag.tasks} == {
        "plan_days",
        "extract",
        "validate_and_publish",
        "emit_validated_asset",
        "check_quarantine",
    }
    assert dag.get_task("check_quarantine").retries == 0


def test_materialize_features_contract(dagbag):
    dag = dagbag.dags["materialize_features"]
    assert [a.uri for a in dag.timetable.asset_condition.objects] == ["x-airloop://lake/validated"]
    assert [o.uri for o in dag.get_task("materialize").outlets] == ["x-airloop://feast/online"]
    assert {t.task_id for t in dag.tasks} == {
        "plan_days",
        "compute_features",
        "apply_definitions",
        "materialize",
    }
    assert dag.max_active_runs == 1


def test_train_and_inference_contracts(dagbag):
    train = dagbag.dags["train_model"]
    assert train.timetable.expression == "0 3 * * 1" and train.max_active_runs == 1
    assert {"holdout_end", "require_approval", "reason", "drift_evidence"} <= set(train.params.keys())
    assert train.params["require_approval"] is False  # human approval is opt-in
    assert type(dagbag.dags["rollback_model"].timetable).__name__ == "NullTimetable"  # manual only
    batch = dagbag.dags["batch_inference"]
    assert [o.uri for o in batch.get_task("score").outlets] == ["x-airloop://lake/predictions"]


def test_live_feedback_runs_when_outcomes_land(dagbag):
    dag = dagbag.dags["live_feedback"]
    assert [a.uri for a in dag.timetable.asset_condition.objects] == ["x-airloop://lake/validated"]


RUNNER_PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "ops": {d: {t.task_id: type(t).__name__ for t in dag.tasks} for d, dag in bag.dags.items()},
                  "heavy": [m for m in sys.argv[2:] if m in sys.modules]}))
"""
HEAVY_TASKS = {
    ("train_model", "build_training_set"),
    ("train_model", "train"),
    ("train_model", "evaluate"),
    ("drift_monitor", "check_drift"),
    ("batch_inference", "score"),
}


@pytest.mark.parametrize(
    ("runner", "operator"), [("local", "PythonOperator"), ("docker", "AirloopDockerOperator")]
)
def test_the_same_dag_files_run_heavy_tasks_in_process_or_in_task_containers(airflow_db, runner, operator):
    """AIRLOOP_TASK_RUNNER is configuration: the same DAG files, the heavy bodies on another operator."""
    env = {**os.environ, "AIRLOOP_TASK_RUNNER": runner}
    out = subprocess.run(
        [sys.executable, "-c", RUNNER_PROBE, str(ROOT / "dags"), *HEAVY],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["errors"] == {}
    assert found["heavy"] == []
    for dag_id, task_id in HEAVY_TASKS:
        assert found["ops"][dag_id][task_id] == operator, (dag_id, task_id)
    others = {
        op
        for dag_id, tasks in found["ops"].items()
        for task_id, op in tasks.items()
        if (dag_id, task_id) not in HEAVY_TASKS
    }
    assert "AirloopDockerOperator" not in others
