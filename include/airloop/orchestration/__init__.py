"""Airflow glue shared by the DAG files: reliability defaults, Asset contracts, the use case's calendar.

This is the one part of the library that imports Airflow, and only ``airflow.sdk`` (light). Task bodies
live in ``airloop.orchestration.tasks`` and import the heavy libraries when a task runs, never when a DAG
file is parsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from airflow.sdk import Asset, CronDataIntervalTimetable, Param

from airloop.usecase import DriftPolicy

OWNER = "airloop"

DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(minutes=30),
}

VALIDATED_ZONE = Asset(name="airloop_validated_zone", uri="x-airloop://lake/validated", group="airloop")
"""Emitted when days land in the validated zone; ``extra`` lists them (``validated_days``)."""

ONLINE_FEATURES = Asset(name="airloop_online_features", uri="x-airloop://feast/online", group="airloop")
"""Emitted when feature days are computed and materialized; ``extra``: ``days``, ``rows``."""

PREDICTIONS = Asset(name="airloop_batch_predictions", uri="x-airloop://lake/predictions", group="airloop")
"""Emitted when a day's batch predictions are written; ``extra``: ``day``, ``rows``, ``model_version``."""


def range_params() -> dict[str, Param]:
    """Params of DAGs that can process a range of days in one run (history, late data)."""
    return {
        "first_day": Param(
            None, type=["null", "string"], format="date", description="range start (manual runs)"
        ),
        "last_day": Param(None, type=["null", "string"], format="date", description="range end, inclusive"),
        "chunk_days": Param(None, type=["null", "integer"], minimum=1, description="days per mapped task"),
    }


@dataclass(frozen=True)
class Calendar:
    """When the use case's DAGs run: taken from its declaration, so DAG files stay generic."""

    use_case: str
    schedule: str
    start: datetime
    end: datetime | None
    timezone: str
    catchup: bool
    max_parallel_chunks: int

    def timetable(self) -> CronDataIntervalTimetable:
        """Cron in the use case's timezone, with data intervals: run N covers exactly one local day."""
        return CronDataIntervalTimetable(self.schedule, timezone=self.timezone)


def use_case_calendar() -> Calendar:
    """The configured use case's declared calendar and the scheduling settings (env only; no I/O)."""
    from airloop.settings import load_settings
    from airloop.usecases import load_use_case

    settings = load_settings()
    use_case = load_use_case(settings.use_case)
    zone = ZoneInfo(use_case.timezone)
    start = datetime(
        use_case.start_date.year, use_case.start_date.month, use_case.start_date.day, tzinfo=zone
    )
    end = None
    if use_case.end_date is not None:
        last = use_case.end_date
        end = datetime(last.year, last.month, last.day, tzinfo=zone)
    return Calendar(
        use_case.name,
        use_case.schedule,
        start,
        end,
        use_case.timezone,
        settings.ingest.catchup,
        settings.ingest.max_parallel_chunks,
    )


def drift_policy() -> tuple[DriftPolicy, float]:
    """The configured use case's drift policy and the sensor's poll interval (env only; no I/O)."""
    from airloop.settings import load_settings
    from airloop.usecases import load_use_case

    settings = load_settings()
    use_case = load_use_case(settings.use_case).with_drift(settings.drift_overrides)
    return use_case.drift, settings.drift_poll_seconds
