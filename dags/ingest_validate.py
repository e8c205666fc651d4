"""
### ingest_validate

Daily ingestion of the configured use case (demo: NYC flights of 2013).

`extract` copies each source's records of a data interval (one local day) into the raw zone of the lake;
`validate_and_publish` checks them with Great Expectations suites built from the use-case declaration and
publishes complete days to the validated zone, or moves the whole day to quarantine with a readable
`REPORT.md`; `emit_validated_asset` announces the validated days (Asset `airloop_validated_zone`);
`check_quarantine` fails the run naming every failed expectation and its counts.

**History in one run**: trigger with params `first_day`/`last_day` (YYYY-MM-DD) to ingest a range;
it is split into `chunk_days` chunks that run as mapped tasks in parallel. Re-running a day replaces it.
Catch-up (`AIRLOOP_INGEST__CATCHUP=true`) and `airflow backfill create` also work: every run is keyed
on its own data interval.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from airloop.orchestration import DEFAULT_ARGS, VALIDATED_ZONE, range_params, use_case_calendar

CALENDAR = use_case_calendar()


@dag(
    dag_id="ingest_validate",
    schedule=CALENDAR.timetable(),
    start_date=CALENDAR.start,
    end_date=CALENDAR.end,
    catchup=CALENDAR.catchup,
    max_active_runs=2,
    default_args=DEFAULT_ARGS,
    tags=["airloop", "ingestion", CALENDAR.use_case],
    doc_md=__doc__,
    params=range_params(),
)
def ingest_validate() -> None:
    @task
    def plan_days(params=None, data_interval_start=None, data_interval_end=None) -> list[list[str]]:
        from airloop.orchestration.tasks import plan_days

        return plan_days(params, data_interval_start, data_interval_end)

    @task(max_active_tis_per_dagrun=CALENDAR.max_parallel_chunks)
    def extract(days: list[str]) -> list[str]:
        from airloop.orchestration.tasks import extract_days

        return extract_days(days)

    @task(max_active_tis_per_dagrun=CALENDAR.max_parallel_chunks)
    def validate_and_publish(days: list[str]) -> list[dict]:
        from airloop.orchestration.tasks import validate_days

        return validate_days(days)

    @task(outlets=[VALIDATED_ZONE])
    def emit_validated_asset(results: list[list[dict]], outlet_events=None) -> None:
        from airloop.orchestration.tasks import asset_extra, flatten

        outlet_events[VALIDATED_ZONE].extra = asset_extra(flatten(results))

    @task(retries=0)
    def check_quarantine(results: list[list[dict]]) -> dict:
        from airloop.orchestration.tasks import check_quarantine, flatten

        return check_quarantine(flatten(results))

    results = validate_and_publish.expand(days=extract.expand(days=plan_days()))
    emit_validated_asset(results)
    check_quarantine(results)


ingest_validate()
