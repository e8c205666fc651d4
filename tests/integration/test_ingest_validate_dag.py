"""``dag.test()`` of ingest_validate: real Airflow (SQLite metadata DB), real GX, a real or fake source."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import CORRUPTIONS

ROOT = Path(__file__).resolve().parents[2]
NY = ZoneInfo("America/New_York")


@pytest.fixture()
def dag(airflow_db):
    """Parsed afresh per test: dag.test(run_conf=...) leaves the conf in the DAG object's params."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "ingest_validate.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["ingest_validate"]


@pytest.fixture(autouse=True)
def fresh_runs(dag):
    """Each test starts with no earlier run of the DAG (runs are unique per logical date)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        for model in (XComModel, TaskInstance, DagRun):
            session.query(model).filter(model.dag_id == dag.dag_id).delete(synchronize_session=False)


def states(run) -> dict[str, str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=run.dag_id, run_id=run.run_id).all()
        return {
            f"{ti.task_id}[{ti.map_index}]" if ti.map_index >= 0 else ti.task_id: str(ti.state) for ti in tis
        }


def asset_events(run) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetEvent.source_run_id == run.run_id, AssetModel.uri == "x-airloop://lake/validated")
            .all()
        )
        return [dict(e.extra) for e in rows]


def lake():
    from airloop.lake import Lake
    from airloop.settings import load_settings

    return Lake(load_settings().lake)


def test_scheduled_day_from_the_replay_source(dag, airloop_home):
    """A run at 2013-01-02 00:00 New York time ingests 2013-01-01: 842 flights land, Asset emitted."""
    run = dag.test(logical_date=datetime(2013, 1, 2, tzinfo=NY))
    assert str(run.state) == "success", states(run)
    assert lake().validated_days() == ["2013-01-01"]
    assert lake().manifest("2013-01-01")["rows"]["flights"] == 842
    events = asset_events(run)
    assert events == [{"validated_days": ["2013-01-01"], "validated": 1, "flights_rows": 842}]


def test_ranged_run_in_chunks(dag, airloop_home):
    run = dag.test(
        logical_date=datetime(2013, 2, 1, tzinfo=NY),
        run_conf={"first_day": "2013-01-01", "last_day": "2013-01-05", "chunk_days": 2},
    )
    assert str(run.state) == "success", states(run)
    s = states(run)
    assert {k for k in s if k.startswith("validate_and_publish")} == {
        "validate_and_publish[0]",
        "validate_and_publish[1]",
        "validate_and_publish[2]",
    }
    assert lake().validated_days() == [f"2013-01-0{i}" for i in range(1, 6)]
    assert asset_events(run)[0]["validated"] == 5


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupted_day_is_quarantined_and_run_fails(dag, airloop_home, source_folder, corruption):
    source_folder("2013-01-01")
    source_folder("2013-01-02", corruption)
    good = dag.test(logical_date=datetime(2013, 1, 2, tzinfo=NY))
    assert str(good.state) == "success", states(good)
    run = dag.test(logical_date=datetime(2013, 1, 3, tzinfo=NY))
    s = states(run)
    assert str(run.state) == "failed"
    assert s["check_quarantine"] == "failed" and s["validate_and_publish[0]"] == "success"
    assert s["emit_validated_asset"] == "skipped" and asset_events(run) == []
    assert lake().validated_days() == ["2013-01-01"] and lake().quarantined_days() == ["2013-01-02"]
    report = (lake().quarantine_dir("2013-01-02") / "REPORT.md").read_text()
    assert CORRUPTIONS[corruption][2].split(" -> ")[0].split(".")[-1] in report


def test_rerun_of_a_day_gives_identical_validated_data(dag, airloop_home):
    import pandas as pd

    dag.test(logical_date=datetime(2013, 1, 2, tzinfo=NY))
    first = lake().read_partition("validated", "flights", "2013-01-01")
    run = dag.test(logical_date=datetime(2013, 1, 2, tzinfo=NY))
    assert str(run.state) == "success"
    pd.testing.assert_frame_equal(first, lake().read_partition("validated", "flights", "2013-01-01"))
