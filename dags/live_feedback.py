"""
### live_feedback

Scheduled on the `airloop_validated_zone` Asset: once ingestion lands a day's actual outcomes, the
predictions the service logged for that day's events are joined to them by the event key, and live accuracy
and ROC AUC per model version (with its score histogram, for a use case that measures live AUC pooled over
days) are written to `lake/monitoring/live_metrics/ds=DAY.json` (read by the drift monitor as performance
drift).

Shadow evaluation: rows a `shadow` version also scored give both versions' metrics on the same events;
`judge_shadow` pools them and promotes the shadow when it is better with confidence, retires it when the
champion is confirmed (or after the policy's `max_days`), or waits for more outcomes.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from airloop.orchestration import DEFAULT_ARGS, VALIDATED_ZONE, use_case_calendar

CALENDAR = use_case_calendar()


@dag(
    dag_id="live_feedback",
    schedule=[VALIDATED_ZONE],
    start_date=CALENDAR.start,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["airloop", "monitoring", CALENDAR.use_case],
    doc_md=__doc__,
)
def live_feedback() -> None:
    @task
    def record(triggering_asset_events=None) -> list:
        from airloop.orchestration.tasks import record_feedback

        return record_feedback(triggering_asset_events)

    @task
    def judge_shadow(dag_run=None) -> dict:
        from airloop.orchestration.tasks import judge_shadow

        return judge_shadow(f"{dag_run.dag_id}/{dag_run.run_id}", dag_run.run_after.isoformat())

    record() >> judge_shadow()


live_feedback()
