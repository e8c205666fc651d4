"""
### rollback_model

Moves the `champion` alias of the use case's model back to the version it pointed to before its latest
move, recording who (this run), why (the `reason` param) and when in the version tags and the audit trail.
Manual only.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from airloop.orchestration import DEFAULT_ARGS, use_case_calendar

CALENDAR = use_case_calendar()


@dag(
    dag_id="rollback_model",
    schedule=None,
    start_date=CALENDAR.start,
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["airloop", "training", CALENDAR.use_case],
    doc_md=__doc__,
    params={"reason": Param("manual rollback", type="string", minLength=3)},
)
def rollback_model() -> None:
    @task
    def rollback(params=None, dag_run=None) -> dict:
        from airloop.orchestration.tasks import rollback_model

        who = f"airflow:{dag_run.dag_id}/{dag_run.run_id}"
        return rollback_model(params["reason"], who, dag_run.run_after.isoformat())

    rollback()


rollback_model()
