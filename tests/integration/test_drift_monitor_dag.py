"""``dag.test()`` of drift_monitor on an undrifted and a drifted live window: real Airflow (the deferrable
sensor's trigger runs inline), real MLflow (the champion's reference profile, the monitoring run), and the
triggered train_model run carrying the evidence into MLflow tags.

The live log is written here the way the service writes it (``LiveLog``): rows of the champion's own
training window, scored by the champion - and, for the drifted window, the same rows during a heat wave
(+30 F) with fuller planes, as an external world that changed.
"""

from __future__ import annotations

import json
import shutil
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from conftest import QUICK_MODEL, dag_named


def _served_rows(home: Path, rows: int | None, served_at: datetime, seed: int, drifted: bool) -> pd.DataFrame:
    """Live rows from the champion's own data: ``rows`` sampled at random, or (``None``) every flight of
    every second day - live traffic is whole hours and days, so each weather reading and history
    snapshot of those days appears with all its flights, as in the reference (a random sample of rows
    would favour the readings of busy hours: that is a different distribution of readings)."""
    from airloop.lake import Lake
    from airloop.model.pyfunc import RegisteredModel
    from airloop.training import TrainingWindow

    # the champion's own data (deployed through the newest day: training + holdout rows) is "no drift"
    lake, key = Lake(home / "lake"), TrainingWindow.ending(date(2013, 1, 30), 22, 7).key
    seen = pd.concat([lake.read_dataset("training", f"{key}/{part}") for part in ("train", "holdout")])
    if rows is None:
        day = pd.to_datetime(seen["event_timestamp"], utc=True).dt.tz_convert("America/New_York").dt.day
        frame = seen[(day % 2 == 1).to_numpy()].sort_values("event_timestamp").reset_index(drop=True)
    else:
        frame = seen.sample(rows, random_state=seed).reset_index(drop=True)
    rows = len(frame)
    if drifted:
        frame["temp"] = frame["temp"] + 30
        frame["dewp"] = frame["dewp"] + 25
        frame["seats"] = frame["seats"] * 1.5
    scored = RegisteredModel("models:/flight_delay@champion", "1").predict(frame)
    return frame.assign(
        probability=scored["probability"].to_numpy(),
        label=scored["label"].to_numpy(),
        model_version="1",
        request_id=f"req-{seed}",
        served_at=[served_at + timedelta(milliseconds=i) for i in range(rows)],
    )


def _log(home: Path, frame: pd.DataFrame) -> None:
    """Store ``frame`` as one live-log file: a delivery the sensor sees whole or not at all (written in
    several flushes, a sensor poll between two of them would judge a window of the earliest days only)."""
    from airloop.livelog import LiveLog

    log = LiveLog(home / "lake" / "live", flush_rows=len(frame) + 1, flush_seconds=60)
    for start in range(0, len(frame), 500):
        log.append(frame.iloc[start : start + 500])
    log.close()


def _train_runs(dag_id: str = "train_model") -> list:
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id.like("drift__%")).all()
        session.expunge_all()
        return runs


@pytest.fixture()
def monitor_home(champion_home, tmp_path, monkeypatch, airflow_db):
    home = tmp_path / "home"
    shutil.copytree(champion_home, home)
    monkeypatch.setenv("AIRLOOP_HOME", str(home))
    monkeypatch.setenv("AIRLOOP_DRIFT_POLL_SECONDS", "0.5")
    # days of traffic after a January champion: the checks below do not wait for a share of new data
    # (step 1b sets it to show the wait)
    monkeypatch.setenv("AIRLOOP_DRIFT_OVERRIDES", '{"min_new_share": 0}')
    import mlflow

    from airloop.settings import load_settings

    mlflow.set_tracking_uri(load_settings().mlflow_tracking_uri)
    return home


def test_drift_monitor_triggers_only_on_drift_and_the_retrain_carries_the_evidence(monitor_home, monkeypatch):
    import mlflow

    from airloop.drift.monitor import past_checks
    from airloop.lake import Lake
    from airloop.registry import ModelRegistry
    from airloop.settings import load_settings

    settings = load_settings()
    lake = Lake(monitor_home / "lake")
    drift_dag = dag_named("drift_monitor")
    before = {r.run_id for r in _train_runs()}

    # 1. Undrifted: the sensor sees 1,500 of the 2,000 rows it waits for, defers; the rest arrives later.
    day1 = datetime(2013, 1, 31, 14, tzinfo=UTC)
    calm = _served_rows(monitor_home, None, day1, seed=1, drifted=False)
    assert len(calm) > 3000
    _log(monitor_home, calm.iloc[:1500])
    late = threading.Timer(3.0, _log, args=(monitor_home, calm.iloc[1500:]))
    late.start()
    run = drift_dag.test(logical_date=datetime(2013, 1, 31, 15, tzinfo=UTC))
    late.join()
    assert str(run.state) == "success"
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["no_retrain"] == "success" and states["trigger_retrain"] == "skipped"
    [first] = past_checks(lake)
    # Only 1,500 rows existed when the run started: a window of all of them means it waited for the late ones.
    assert first["window"]["rows"] == len(calm) and first["window"]["after"] is None
    temp = next(f for f in first["features"] if f["feature"] == "temp")
    assert first["shared"]["temp"] == ["origin", "time_hour"] and temp["rows"] < len(calm) / 5  # readings
    assert first["decision"]["status"] == "quiet" and not first["decision"]["alerts"]
    assert {r.run_id for r in _train_runs()} == before

    # 1b. Drifted, but a retrain now would add nothing the champion has not seen (no validated day after
    # its data end): under a deployment's min_new_share the drift is reported and waits.
    monkeypatch.setenv("AIRLOOP_DRIFT_OVERRIDES", '{"min_new_share": 0.1}')
    _log(monitor_home, _served_rows(monitor_home, 2000, day1 + timedelta(hours=12), seed=4, drifted=True))
    run = drift_dag.test(logical_date=datetime(2013, 1, 31, 20, tzinfo=UTC))
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["no_retrain"] == "success" and states["trigger_retrain"] == "skipped"
    waited = past_checks(lake)[-1]
    assert waited["decision"]["status"] == "too_little_new_data" and "temp" in waited["decision"]["alerts"]
    client = mlflow.MlflowClient()
    v1_run = client.get_model_version("flight_delay", "1").run_id
    fit_rows = int(client.get_run(v1_run).data.tags["airloop.fit_rows"])
    assert waited["new_data"] == {"rows": 0, "fit_rows": fit_rows, "since": "2013-01-30", "share": 0.0}
    assert {r.run_id for r in _train_runs()} == before
    monkeypatch.setenv("AIRLOOP_DRIFT_OVERRIDES", '{"min_new_share": 0}')

    # 2. Drifted: a heat wave; the window starts where the last one ended.
    _log(monitor_home, _served_rows(monitor_home, 3000, day1 + timedelta(days=1), seed=2, drifted=True))
    run = drift_dag.test(logical_date=datetime(2013, 2, 1, 15, tzinfo=UTC))
    assert str(run.state) == "success"
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["trigger_retrain"] == "success" and states["no_retrain"] == "skipped"
    second = past_checks(lake)[-1]
    assert second["window"]["after"] == waited["window"]["until"] and second["window"]["rows"] == 3000
    assert {"temp", "dewp", "seats"} <= set(second["decision"]["alerts"])
    temp = next(f for f in second["features"] if f["feature"] == "temp")
    assert temp["statistic"] > 0.5 and temp["psi"] > 1 and temp["p_adjusted"] < 1e-10
    report = Path(second["report"]["html"])
    assert report.exists() and "temp" in report.read_text()
    monitoring = mlflow.get_run(second["mlflow_run_id"])
    assert (
        monitoring.data.tags["airloop.champion_version"] == "1"
        and monitoring.data.tags["airloop.decision"] == "retrain"
    )
    assert monitoring.info.artifact_uri.startswith((monitor_home / "mlflow").as_uri())
    assert {a.path for a in mlflow.MlflowClient().list_artifacts(second["mlflow_run_id"], "drift")} == {
        "drift/report.html",
        "drift/summary.json",
    }

    [triggered] = [r for r in _train_runs() if r.run_id not in before]
    conf = triggered.conf
    assert conf["reason"].startswith("drift_monitor: drift in ") and "temp" in conf["reason"]
    assert conf["holdout_end"] == "2013-01-30"  # the day after the last validated day
    assert set(conf["drift_evidence"]["drifted_features"]) >= {"temp", "dewp", "seats"}

    # 3. The triggered training run (its conf, on this small lake's window) carries the evidence.
    train = dag_named("train_model").test(
        logical_date=datetime(2013, 2, 1, 16, tzinfo=UTC),
        run_conf={
            **conf,
            "train_days": 22,
            "holdout_days": 7,
            "hyperparameters": {**QUICK_MODEL, "epochs": 2},
        },
    )
    assert str(train.state) == "success"
    registry = ModelRegistry(settings.mlflow_tracking_uri, "flight_delay")
    v2 = registry.version("2")
    tags = registry.client.get_run(v2.run_id).data.tags
    assert tags["airloop.trigger_reason"] == conf["reason"]
    evidence = json.loads(tags["airloop.drift_evidence"])
    assert evidence["drifted_features"]["temp"]["status"] == "alert"
    assert evidence["report"]["html"] == str(report)

    # 4. Still drifted, but within the cooldown of the retrain: reported, no second trigger.
    _log(
        monitor_home,
        _served_rows(monitor_home, 2500, day1 + timedelta(days=1, hours=2), seed=3, drifted=True),
    )
    run = drift_dag.test(logical_date=datetime(2013, 2, 1, 18, tzinfo=UTC))
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["trigger_retrain"] == "skipped"
    third = past_checks(lake)[-1]
    assert third["decision"]["status"] == "cooldown" and "temp" in third["decision"]["alerts"]
