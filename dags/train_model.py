"""
### train_model

Trains the use case's PyTorch model and its scikit-learn baseline on a time window of point-in-time
features (Feast historical retrieval), logs both to MLflow with lineage, registers the model as a new
version of `flight_delay` with alias `challenger`, scores challenger and champion on the SAME most recent
labeled holdout, runs the behaviour tests, and moves `champion` only when the gate allows it.

Triggers: weekly (Monday 03:00, use-case time), manual (params below), or the drift monitor (conf
`reason` and `drift_evidence`, recorded as MLflow tags). `require_approval=true` adds a human approval
step (Airflow HITL) before the alias moves. Roll back with the `rollback_model` DAG.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task
from task_runner import library_task

from airloop.orchestration import DEFAULT_ARGS, use_case_calendar

CALENDAR = use_case_calendar()


@dag(
    dag_id="train_model",
    schedule=CronDataIntervalTimetable("0 3 * * 1", timezone=CALENDAR.timezone),
    start_date=CALENDAR.start,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["airloop", "training", CALENDAR.use_case],
    doc_md=__doc__,
    params={
        "holdout_end": Param(
            None, type=["null", "string"], format="date", description="window end (exclusive)"
        ),
        "train_days": Param(None, type=["null", "integer"], minimum=1),
        "holdout_days": Param(None, type=["null", "integer"], minimum=1),
        "hyperparameters": Param({}, type="object", description='overrides, e.g. {"epochs": 5}'),
        "require_approval": Param(False, type="boolean", description="ask a human before promoting"),
        "reason": Param(None, type=["null", "string"]),
        "drift_evidence": Param({}, type="object"),
    },
)
def train_model() -> None:
    @task
    def plan_window(params=None, data_interval_end=None, dag_run=None) -> dict:
        from airloop.orchestration.tasks import plan_training

        end = data_interval_end if dag_run.run_type == "scheduled" else None
        return plan_training(params, end, dag_run.run_after, dag_run.dag_id, dag_run.run_id)

    @task.branch
    def approval_needed(plan: dict, verdict: dict) -> str:
        return "approve" if plan["require_approval"] and verdict["promote"] else "promote"

    # Unanswered within 2 hours: the task fails and the champion stays (re-run `approve` to ask again).
    approve = ApprovalOperator(
        task_id="approve",
        subject=f"Promote the new {CALENDAR.use_case} challenger?",
        body="Gate verdict: {{ ti.xcom_pull(task_ids='evaluate')['reason'] }}",
        response_timeout=timedelta(hours=2),
        execution_timeout=timedelta(minutes=10),
    )

    @task(trigger_rule="none_failed_min_one_success")
    def promote(plan: dict, verdict: dict) -> dict:
        from airloop.orchestration.tasks import promote_model

        return promote_model(plan, verdict)

    # The heavy steps run where AIRLOOP_TASK_RUNNER says: this worker's process, or a runtime-image container.
    plan = plan_window()
    built = library_task("build_training_set", "build_training_set", plan=plan)
    trained = library_task("train", "train_model", plan=plan)
    built >> trained
    verdict = library_task("evaluate", "evaluate_model", plan=plan, trained=trained)
    branch = approval_needed(plan, verdict)
    promoted = promote(plan, verdict)
    branch >> [approve, promoted]
    approve >> promoted


train_model()
