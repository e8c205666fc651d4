"""The second use case (``grid_peak``: half-hourly electricity demand, a CSV source with naive local times,
integer entity keys, a threshold label on a measure) runs the whole loop with no platform code of its own:
ingest -> validate -> materialize -> train (torch and baseline) -> serve over HTTP -> feedback -> drift ->
retrain, through the same DAG files as flights. One phase per test, in order (a failure names its phase)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from conftest import dag_named, free_port

LAST_DAY = "2014-03-14"  # ingested Jan 1 .. Mar 14 (73 days, 48 half-hours each)
LIVE = [date(2014, 3, d) for d in range(1, 8)]  # served by v1 as live traffic
TRAIN = {"holdout_end": "2014-03-01", "train_days": 45, "holdout_days": 14}


@pytest.fixture(scope="module")
def grid(tmp_path_factory, airflow_db):
    """The use case selected for every phase (DAG files, library, the service process) and its state
    folder."""
    home = tmp_path_factory.mktemp("grid")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRLOOP_USE_CASE", "grid_peak")
        mp.setenv("AIRLOOP_HOME", str(home))
        mp.setenv("AIRLOOP_DRIFT_POLL_SECONDS", "0.5")
        mp.setenv("AIRLOOP_SERVING_WATCH_SECONDS", "1")
        from airloop.resources import load_resources

        yield load_resources()


def test_1_ingest_validates_the_csv_days(grid):
    run = dag_named("ingest_validate").test(
        logical_date=datetime(2014, 3, 20, tzinfo=UTC),
        run_conf={"first_day": "2014-01-01", "last_day": LAST_DAY},
    )
    assert str(run.state) == "success"
    validated = grid.lake.validated_days()
    assert len(validated) == 73 and validated[0] == "2014-01-01" and validated[-1] == LAST_DAY
    day = grid.lake.read_partition("validated", "demand", "2014-03-01")
    # naive market times read in the declared zone (AEST = UTC+10): the day starts at 14:00 UTC the day before
    assert len(day) == 48 and str(day["period_start"].min()) == "2014-02-28 14:00:00+00:00"
    assert day["period"].dtype == "int64" and day["period"].tolist() == list(range(1, 49))


def test_2_materialize_features_with_integer_keys(grid):
    run = dag_named("materialize_features").test(
        logical_date=datetime(2014, 3, 21, tzinfo=UTC),
        run_conf={"first_day": "2014-01-01", "last_day": "2014-03-07"},
    )
    assert str(run.state) == "success"
    half_hour = grid.lake.read_partition("features", "half_hour_history", "2014-03-07")
    assert sorted(half_hour["half_hour"], key=int) == [
        str(p) for p in range(1, 49)
    ]  # int keys as join strings
    assert (
        half_hour["half_hour_periods_7d"] == 7
    ).all()  # one value a day of the week before, each known by then
    daytype = grid.lake.read_partition("features", "daytype_history", "2014-03-07")
    assert {"0-1", "1-48"} <= set(daytype["daytype_half_hour"])  # composite (workday, period)


def test_3_train_registers_torch_beside_its_baseline(grid):
    run = dag_named("train_model").test(
        logical_date=datetime(2014, 3, 21, 1, tzinfo=UTC),
        run_conf={**TRAIN, "reason": "test: first grid model"},
    )
    assert str(run.state) == "success"
    assert grid.registry.version_of("champion") == "1"
    v1 = grid.registry.version("1")
    metrics = grid.registry.client.get_run(v1.run_id).data.metrics
    torch_auc, baseline_auc = metrics["holdout_roc_auc"], metrics["baseline_holdout_roc_auc"]
    assert torch_auc > 0.85 and baseline_auc > 0.85, metrics
    assert torch_auc >= baseline_auc - 0.02, metrics  # the demo split's figures are in the README
    artifacts = {a.path for a in grid.registry.client.list_artifacts(v1.run_id, "evaluation")}
    assert "evaluation/slices_workday.csv" in artifacts  # the declared slice, not a flights column


def test_4_serve_over_http_then_feedback(grid, tmp_path):
    import pandas as pd

    from airloop.batch import schedule
    from airloop.feedback import record_day
    from airloop_tools.service_runner import local_service, replay

    live = pd.concat([schedule(grid.use_case, grid.source, d) for d in LIVE], ignore_index=True)
    assert len(live) == 7 * 48 and "demand_gw" not in live  # the outcome is never sent
    with local_service(free_port(), tmp_path / "serve.log") as client:
        schema = client.get("/docs.json").json()
        assert "GridPeakRow" in json.dumps(schema)  # the request row is named after the use case
        served = replay(client, live, grid.use_case)
        assert served == {**served, "errors": 0, "rows": len(live), "versions": ["1"]}
        row = {"period_start": "2014-03-08 10:00:00", "period": 21, "workday": 0, "temperature": 21.5}
        ok = client.post("/predict", json={"rows": [row]})
        assert ok.status_code == 200 and 0 <= ok.json()["predictions"][0]["probability"] <= 1
        bad = client.post("/predict", json={"rows": [{**row, "period": 49}]})
        assert bad.status_code == 400 and "period" in bad.text
    # the service flushed its live log on SIGTERM; the week's outcomes are validated: joined by the key
    week = [record_day(grid.lake, grid.live_store, grid.use_case, d) for d in LIVE]
    assert all(m["served"] == m["with_outcome"] == 48 for m in week)
    by_day = [m["by_version"]["1"] for m in week]
    assert sum(m["accuracy"] for m in by_day) / 7 > 0.8
    # a weekend of autumn has no high-demand half-hour: ROC AUC is undefined there, not invented
    assert [m["roc_auc"] is None for m in by_day] == [m["positive_rate"] in (0.0, 1.0) for m in by_day]


def test_5_drift_triggers_a_retrain_with_its_evidence(grid):
    from airloop.drift.monitor import past_checks

    drift = dag_named("drift_monitor").test(logical_date=datetime(2014, 3, 21, 2, tzinfo=UTC))
    assert str(drift.state) == "success"
    [check] = past_checks(grid.lake)
    assert check["window"]["rows"] == 7 * 48 + 1  # the replay and the one extra request
    assert check["decision"]["retrain"], check["decision"]
    # grid_peak's live AUC is pooled over the week (live_measure): against v1's pooled holdout AUC
    performance = check["performance"]
    assert performance["measure"] == "pooled" and performance["labelled_rows"] == 7 * 48
    assert performance["champion_auc"] == float(grid.registry.version("1").tags["airloop.holdout_roc_auc"])
    assert 0.5 < performance["live_auc"] <= 1
    states = {ti.task_id: str(ti.state) for ti in drift.get_task_instances()}
    assert states["trigger_retrain"] == "success"
    conf = next(ti for ti in drift.get_task_instances() if ti.task_id == "check_drift").xcom_pull(
        task_ids="check_drift", key="conf"
    )
    assert conf["holdout_end"] == "2014-03-15"  # through the newest validated day
    # (the features of the days ingested after the live week, as the validated-zone Asset would schedule)
    features = dag_named("materialize_features").test(
        logical_date=datetime(2014, 3, 21, 3, tzinfo=UTC),
        run_conf={"first_day": "2014-03-08", "last_day": LAST_DAY},
    )
    assert str(features.state) == "success"
    retrain = dag_named("train_model").test(
        logical_date=datetime(2014, 3, 21, 4, tzinfo=UTC),
        run_conf={**conf, "train_days": 45, "holdout_days": 7},
    )
    assert str(retrain.state) == "success"
    v2 = grid.registry.version("2")
    tags = grid.registry.client.get_run(v2.run_id).data.tags
    assert tags["airloop.trigger_reason"].startswith("drift_monitor: drift in ")
    assert v2.tags["gate.verdict"] and v2.tags["gate.reason"]
    assert grid.registry.version_of("champion") in ("1", "2")


def test_6_the_cli_runs_the_same_steps_without_airflow(grid, capsys):
    """``airloop score | feedback | drift-check | registry`` on the state the DAGs left (the same library
    calls as their tasks)."""
    from airloop import cli

    assert cli.main(["score", "--day", "2014-03-15"]) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scored["rows"] == 48 and scored["model_version"] == grid.registry.version_of("champion")
    predictions = grid.lake.read_partition("predictions", "grid_peak", "2014-03-15")
    assert set(grid.use_case.logged_columns()) <= set(predictions.columns)  # the key, the event time
    assert cli.main(["feedback", "--first-day", "2014-03-02", "--last-day", "2014-03-02"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["with_outcome"] == 48
    assert cli.main(["drift-check"]) == 0  # every live row was checked by the DAG run of test_5
    assert "no live rows since the last check" in capsys.readouterr().out
    assert cli.main(["registry"]) == 0
    assert f"champion: v{grid.registry.version_of('champion')}" in capsys.readouterr().out
