"""
### drift_monitor

Closes the loop. Runs continuously (one run after another, `max_active_runs=1`):

1. `wait_for_live_rows` - a deferrable sensor (plugins/live_traffic.py) waits in the triggerer until the
   live-traffic log holds `drift.new_rows` rows served since the last checked window, or
   `drift.max_wait_minutes` passed;
2. `check_drift` - that window against the champion's training reference (KS, PSI, chi-square, null
   share, prediction drift; performance drift from live outcomes), graded by the use case's drift policy;
   report `lake/monitoring/drift/checks/<window>/report.html` + `summary.json`, also as artifacts of a run
   in the MLflow experiment `<model>-monitoring`;
3. drift or performance drift past the cooldown -> `trigger_retrain` starts `train_model` with conf
   `{reason, drift_evidence, holdout_end}` (the evidence becomes MLflow tags of the training run);
   otherwise `no_retrain`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import dag, task
from live_traffic import LiveRowsSensor
from task_runner import library_task

from airloop.orchestration import DEFAULT_ARGS, drift_policy, use_case_calendar

CALENDAR = use_case_calendar()
POLICY, POLL_SECONDS = drift_policy()


@dag(
    dag_id="drift_monitor",
    schedule="@continuous",
    start_date=CALENDAR.start,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["airloop", "monitoring", "drift", CALENDAR.use_case],
    doc_md=__doc__,
)
def drift_monitor() -> None:
    window = LiveRowsSensor(
        task_id="wait_for_live_rows",
        new_rows=POLICY.new_rows,
        max_wait=timedelta(minutes=POLICY.max_wait_minutes),
        poll_seconds=POLL_SECONDS,
        timeout=timedelta(minutes=POLICY.max_wait_minutes + 60).total_seconds(),
    )

    @task.branch
    def retrain_or_not(retrain: bool) -> str:
        return "trigger_retrain" if retrain else "no_retrain"

    @task
    def trigger_retrain(conf: dict, **context) -> None:
        """Start ``train_model`` with the evidence (run id ``drift__<this run>``: a re-run does not start a
        second one). The standard TriggerDagRunOperator, created when the task runs: importing its module
        at parse time would cost this file ~0.5 s."""
        from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

        TriggerDagRunOperator(
            task_id="trigger_retrain",
            trigger_dag_id="train_model",
            conf=conf,
            trigger_run_id=f"drift__{context['run_id']}",
            skip_when_already_exists=True,
        ).execute(context)

    checked = library_task(
        "check_drift", "check_drift", multiple_outputs=True, window=window.output, run_id="{{ run_id }}"
    )
    retrain_or_not(checked["retrain"]) >> [
        trigger_retrain(checked["conf"]),
        EmptyOperator(task_id="no_retrain"),
    ]


drift_monitor()
