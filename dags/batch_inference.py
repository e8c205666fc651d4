"""
### batch_inference

Daily batch scoring with the `champion` model: at the end of each data interval, every flight scheduled
on the next day is scored with the features known at that instant (offline store, point in time) and the
champion's own preprocessing, in chunks; the predictions partition `lake/predictions/flight_delay/ds=DAY`
(with the model version) is replaced atomically and the `airloop_batch_predictions` Asset is emitted.
Manual runs take `day` (YYYY-MM-DD): that day is scored as of its midnight.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task
from task_runner import library_task

from airloop.orchestration import DEFAULT_ARGS, PREDICTIONS, use_case_calendar

CALENDAR = use_case_calendar()


@dag(
    dag_id="batch_inference",
    schedule=CALENDAR.timetable(),
    start_date=CALENDAR.start,
    end_date=CALENDAR.end,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["airloop", "inference", CALENDAR.use_case],
    doc_md=__doc__,
    params={
        "day": Param(None, type=["null", "string"], format="date", description="day to score (manual runs)"),
        "chunk_rows": Param(5000, type="integer", minimum=100, description="rows scored per chunk"),
    },
)
def batch_inference() -> None:
    @task
    def plan(params=None, data_interval_end=None, dag_run=None) -> dict:
        from airloop.orchestration.tasks import plan_batch

        return plan_batch(params, data_interval_end if dag_run.run_type == "scheduled" else None)

    # Runs where AIRLOOP_TASK_RUNNER says (this worker, or a runtime-image container); its result is the
    # Asset event's extra.
    library_task("score", "batch_score", outlets=[PREDICTIONS], plan=plan())


batch_inference()
