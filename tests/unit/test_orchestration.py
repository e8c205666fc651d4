"""Task logic of the DAGs that needs no Airflow database (``airloop.orchestration.tasks``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest


def test_scheduled_training_window_ends_with_the_data_interval():
    from airloop.orchestration.tasks import plan_training

    interval_end = datetime(2013, 7, 1, 7, tzinfo=UTC)  # Monday 03:00 New York
    plan = plan_training({}, interval_end, interval_end, "train_model", "scheduled__x")
    assert plan["window"]["holdout_end"] == "2013-07-01"
    assert plan["lineage"]["airloop.trigger_reason"] == "scheduled retraining"


def test_scheduled_training_past_the_declared_history_skips():
    from airflow.sdk.exceptions import AirflowSkipException

    from airloop.orchestration.tasks import plan_training

    interval_end = datetime(2026, 11, 23, 8, tzinfo=UTC)  # flights declares history up to 2013-12-31
    with pytest.raises(AirflowSkipException, match="history ends 2013-12-31"):
        plan_training({}, interval_end, interval_end, "train_model", "scheduled__x")
    # a manual run names its window: the declared history does not stop it
    plan = plan_training({"holdout_end": "2013-07-01"}, None, interval_end, "train_model", "manual__x")
    assert plan["window"]["holdout_end"] == "2013-07-01"
