"""``dag.test()`` of materialize_features on days ingested by ingest_validate (real Airflow, GX, Feast)."""

from __future__ import annotations

from datetime import UTC, datetime

from conftest import dag_named


def test_materialize_ingested_days_then_serve(airflow_db, airloop_home):
    from airloop.featurestore import online_features, open_store
    from airloop.lake import Lake
    from airloop.settings import load_settings
    from airloop.usecases import load_use_case

    ingest = dag_named("ingest_validate").test(
        logical_date=datetime(2013, 3, 1, tzinfo=UTC),
        run_conf={"first_day": "2013-01-01", "last_day": "2013-01-08"},
    )
    assert str(ingest.state) == "success"
    dag = dag_named("materialize_features")
    run = dag.test(
        logical_date=datetime(2013, 3, 2, tzinfo=UTC),
        run_conf={"first_day": "2013-01-07", "last_day": "2013-01-08"},
    )
    assert str(run.state) == "success"
    lake = Lake(load_settings().lake)
    assert (lake.partition("features", "carrier_history", "2013-01-08") / "part-0.parquet").exists()
    assert not lake.partition("features", "carrier_history", "2013-01-06").exists()  # exactly the run's days
    use_case = load_use_case("flights")
    store = open_store(load_settings(), use_case, apply=False)
    flights = lake.read_partition("validated", "flights", "2013-01-08").head(5)
    served = online_features(store, use_case, flights, as_of=datetime(2013, 1, 9, 3, tzinfo=UTC))
    assert served["carrier_history__unknown"].sum() == 0 and served["carrier_history__stale"].sum() == 0
    # re-running the same days is safe and gives the same partitions
    before = lake.read_partition("features", "route_history", "2013-01-08")
    again = dag.test(
        logical_date=datetime(2013, 3, 3, tzinfo=UTC),
        run_conf={"first_day": "2013-01-07", "last_day": "2013-01-08"},
    )
    assert str(again.state) == "success"
    import pandas as pd

    pd.testing.assert_frame_equal(before, lake.read_partition("features", "route_history", "2013-01-08"))
