"""
### materialize_features

Feature store stage, scheduled on the `airloop_validated_zone` Asset: whenever ingestion publishes days,
this DAG computes their feature partitions (`lake/features/<view>/ds=DAY`), brings the Feast registry up
to date with the use-case declaration (the plan is logged; nothing is applied when nothing changed), and
materializes **exactly those days' intervals** into the online store, then emits `airloop_online_features`.

Manual runs take `first_day`/`last_day` (YYYY-MM-DD) to recompute and re-materialize a range (late data).
Re-running is safe: partitions are replaced, and materializing a day writes the same values again.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from airloop.orchestration import (
    DEFAULT_ARGS,
    ONLINE_FEATURES,
    VALIDATED_ZONE,
    range_params,
    use_case_calendar,
)

CALENDAR = use_case_calendar()


@dag(
    dag_id="materialize_features",
    schedule=[VALIDATED_ZONE],
    start_date=CALENDAR.start,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["airloop", "features", CALENDAR.use_case],
    doc_md=__doc__,
    params=range_params(),
)
def materialize_features() -> None:
    @task
    def plan_days(params=None, triggering_asset_events=None) -> list[list[str]]:
        from airloop.orchestration.tasks import plan_feature_days

        return plan_feature_days(params, triggering_asset_events)

    @task(max_active_tis_per_dagrun=CALENDAR.max_parallel_chunks)
    def compute_features(days: list[str]) -> dict:
        from airloop.orchestration.tasks import compute_feature_days

        return compute_feature_days(days)

    @task
    def apply_definitions() -> str:
        from airloop.orchestration.tasks import apply_feature_definitions

        return apply_feature_definitions()

    @task(outlets=[ONLINE_FEATURES])
    def materialize(summaries: list[dict], outlet_events=None) -> dict:
        from airloop.orchestration.tasks import materialize_feature_days

        result = materialize_feature_days(list(summaries))
        outlet_events[ONLINE_FEATURES].extra = {k: result[k] for k in ("days", "rows_total")}
        return result

    summaries = compute_features.expand(days=plan_days())
    applied = apply_definitions()
    summaries >> applied
    materialize(summaries) << applied


materialize_features()
