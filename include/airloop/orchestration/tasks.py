"""Bodies of the Airflow tasks, as plain functions of plain arguments.

Each resolves the settings, the use case, the source adapter and the lake when it runs, then calls the
domain library. They return small JSON-able values (XComs) and raise the Airflow exceptions that decide
a task's state, which is why they live beside the DAG glue rather than in the domain modules.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

if TYPE_CHECKING:
    from airloop.resources import Resources

logger = logging.getLogger(__name__)


def _resources() -> Resources:
    """The typed resources of the settings in this task's environment (the composition root)."""
    from airloop.resources import load_resources

    return load_resources()


def plan_days(
    params: dict[str, Any], interval_start: datetime | None, interval_end: datetime | None
) -> list[list[str]]:
    """The days this run ingests, in chunks.

    ``first_day..last_day`` from params when given; else the run's data interval (a scheduled run: one
    local day); else, for a manual run at instant T (Airflow 3 gives it an empty interval at T), the
    last complete local day before T. A run with neither dates nor interval fails with a clear message.
    """
    from airloop.intervals import chunk, day_range, days_in_interval, last_complete_day

    res = _resources()
    first, last = params.get("first_day"), params.get("last_day")
    if first or last:
        if not (first and last):
            raise AirflowFailException("give both first_day and last_day (YYYY-MM-DD), or neither")
        days = day_range(date.fromisoformat(first), date.fromisoformat(last))
    elif interval_start is None or interval_end is None:
        raise AirflowFailException("this run has no data interval: pass first_day and last_day (YYYY-MM-DD)")
    elif interval_end > interval_start:
        days = days_in_interval(interval_start, interval_end, res.use_case.timezone)
    else:
        days = [last_complete_day(interval_start, res.use_case.timezone)]
    size = int(params.get("chunk_days") or res.settings.ingest.chunk_days)
    chunks = chunk(days, size)
    logger.info("ingesting %d day(s) %s..%s in %d chunk(s)", len(days), days[0], days[-1], len(chunks))
    return chunks


def extract_days(days: list[str]) -> list[str]:
    """Extract each day into the raw zone; return the days (they feed the validation task)."""
    from airloop.ingest import extract_day

    res = _resources()
    for ds in days:
        extract_day(res.use_case, res.source, res.lake, date.fromisoformat(ds))
    return days


def validate_days(days: list[str]) -> list[dict[str, Any]]:
    """Validate each day in order; publish or quarantine it. Never fails on bad data (see ``check``)."""
    from airloop.ingest import validate_day

    res = _resources()
    return [validate_day(res.use_case, res.lake, date.fromisoformat(ds)).to_dict() for ds in days]


def flatten(results: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return sorted((r for chunk in results for r in chunk), key=lambda r: r["ds"])


def asset_extra(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The Asset event's ``extra``; skips the task (no event) when no day was validated."""
    from airloop.ingest import summarize

    res = _resources()
    summary = summarize(results, res.use_case.primary_source)
    if not summary["validated"]:
        raise AirflowSkipException("no day was validated: no Asset event")
    return {k: summary[k] for k in ("validated_days", "validated", f"{res.use_case.primary_source}_rows")}


def check_quarantine(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Fail (without retry: the data will not change by itself) when any day was quarantined."""
    from airloop.ingest import failure_message, summarize

    res = _resources()
    summary = summarize(results, res.use_case.primary_source)
    logger.info("ingestion summary: %s", {k: v for k, v in summary.items() if not k.endswith("_days")})
    if summary["quarantined"]:
        raise AirflowFailException(failure_message(results))
    return summary


def plan_feature_days(params: dict[str, Any], triggering_asset_events: Any) -> list[list[str]]:
    """Days to (re)compute: ``first_day..last_day`` from params, else the validated days announced by
    the Asset events that triggered the run."""
    from airloop.intervals import chunk, day_range

    res = _resources()
    first, last = params.get("first_day"), params.get("last_day")
    if first and last:
        days = day_range(date.fromisoformat(first), date.fromisoformat(last))
    else:
        announced = {
            ds
            for events in (triggering_asset_events or {}).values()
            for event in events
            for ds in (event.extra or {}).get("validated_days", [])
        }
        days = [date.fromisoformat(ds) for ds in sorted(announced)]
    if not days:
        raise AirflowSkipException("no days to materialize (no params, no announced validated days)")
    size = int(params.get("chunk_days") or res.settings.ingest.chunk_days)
    logger.info("features for %d day(s) %s..%s", len(days), days[0], days[-1])
    return chunk(days, size)


def compute_feature_days(days: list[str]) -> dict[str, Any]:
    from airloop.feature_pipeline import compute_days

    res = _resources()
    return compute_days(res.use_case, res.lake, [date.fromisoformat(ds) for ds in days])


def apply_feature_definitions() -> str:
    """Bring the registry up to date with the declaration; the plan is logged (and returned)."""
    from airloop.featurestore import apply_if_changed, build_definitions

    res = _resources()
    store = res.feature_store()
    result = apply_if_changed(store, build_definitions(res.use_case, res.settings))
    return result.plan if result.changed else "unchanged"


def materialize_feature_days(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Materialize exactly the computed days into the online store; the Asset event's extra."""
    from airloop.featurestore import materialize_days

    res = _resources()
    days = sorted({ds for s in summaries for ds in s["days"]})
    if not days:
        raise AirflowSkipException("no validated day among the requested ones: nothing to materialize")
    rows: dict[str, int] = {}
    for s in summaries:
        for view, n in s["rows"].items():
            rows[view] = rows.get(view, 0) + n
    materialize_days(res.feature_store(), res.use_case, [date.fromisoformat(d) for d in days])
    logger.info("materialized %d day(s), rows per view: %s", len(days), rows)
    return {"days": days, "rows": rows, "rows_total": sum(rows.values())}


def plan_training(
    params: dict[str, Any], interval_end: datetime | None, run_after: datetime, dag_id: str, run_id: str
) -> dict[str, Any]:
    """The training window (params, else the latest one ending with the data interval) and the lineage."""
    import json

    from airloop.training import champion_data_end, plan_window

    res = _resources()
    spec = res.use_case.model
    if spec is None:
        raise AirflowFailException(f"use case {res.use_case.name} declares no model")
    if params.get("holdout_end"):
        end = date.fromisoformat(params["holdout_end"])
    elif interval_end is not None:
        end = interval_end.astimezone(ZoneInfo(res.use_case.timezone)).date()
        if res.use_case.end_date is not None and end > res.use_case.end_date + timedelta(days=1):
            # e.g. the demo's replayed 2013 unpaused in 2026: the weekly schedule's latest week has no data
            raise AirflowSkipException(
                f"scheduled window ending {end}: the use case's history ends "
                f"{res.use_case.end_date} (declared end_date), nothing to train on"
            )
    else:
        raise AirflowFailException("no holdout_end param and no data interval to end the window at")
    champion_end = champion_data_end(res.settings, res.use_case)
    window = plan_window(
        res.use_case,
        end,
        champion_end,
        int(params.get("train_days") or spec.train_days),
        int(params.get("holdout_days") or spec.holdout_days),
    )
    reason = params.get("reason") or ("scheduled retraining" if interval_end is not None else "manual")
    lineage = {
        "airloop.dag_id": dag_id,
        "airloop.run_id": run_id,
        "airloop.trigger_reason": reason,
        "airloop.triggered_by": f"airflow:{dag_id}/{run_id}",
        "airloop.drift_evidence": json.dumps(params.get("drift_evidence") or {}),
        "airloop.champion_data_end": champion_end.isoformat() if champion_end else "",
    }
    at = (interval_end or run_after).isoformat()
    logger.info("training window %s (%s)", window.as_dict(), reason)
    return {
        "window": window.as_dict(),
        "lineage": lineage,
        "at": at,
        "hyperparameters": params.get("hyperparameters") or {},
        "require_approval": bool(params.get("require_approval")),
    }


def build_training_set(plan: dict[str, Any]) -> dict[str, Any]:
    from airloop.training import TrainingWindow, build_datasets

    res = _resources()
    return build_datasets(res.settings, res.use_case, res.lake, TrainingWindow.from_dict(plan["window"]))


def train_model(plan: dict[str, Any]) -> dict[str, Any]:
    from airloop.training import TrainingWindow, train_and_register

    res = _resources()
    return train_and_register(
        res.settings,
        res.use_case,
        res.lake,
        TrainingWindow.from_dict(plan["window"]),
        plan["hyperparameters"],
        plan["lineage"],
        plan["at"],
    )


def evaluate_model(plan: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
    from airloop.training import TrainingWindow, evaluate_and_decide

    res = _resources()
    return evaluate_and_decide(
        res.settings, res.use_case, res.lake, TrainingWindow.from_dict(plan["window"]), trained["version"]
    )


def promote_model(plan: dict[str, Any], verdict: dict[str, Any]) -> dict[str, Any]:
    from airloop.training import promote

    res = _resources()
    return promote(res.settings, res.use_case, verdict, plan["lineage"]["airloop.triggered_by"], plan["at"])


def rollback_model(reason: str, who: str, at: str) -> dict[str, Any]:
    res = _resources()
    move = res.registry.rollback(who, reason, at)
    return move.__dict__


def plan_batch(params: dict[str, Any], interval_end: datetime | None) -> dict[str, Any]:
    """Which day to score as of when: the day after the data interval (as of the interval's end), or
    ``params['day']`` as of its midnight; JSON-ready, for ``batch_score`` wherever it runs."""
    from airloop.intervals import DayInterval

    res = _resources()
    if params.get("day"):
        day = date.fromisoformat(params["day"])
        as_of = DayInterval(day, res.use_case.timezone).start
    elif interval_end is not None:
        as_of = interval_end
        day = interval_end.astimezone(ZoneInfo(res.use_case.timezone)).date()
    else:
        raise AirflowFailException("no data interval: pass the day to score (YYYY-MM-DD)")
    return {
        "day": day.isoformat(),
        "as_of": as_of.isoformat(),
        "chunk_rows": int(params.get("chunk_rows") or 5000),
    }


def batch_score(plan: dict[str, Any]) -> dict[str, Any]:
    """Score ``plan['day']`` with the champion as of ``plan['as_of']`` (see ``plan_batch``)."""
    from airloop.batch import score_day

    res = _resources()
    return score_day(
        res.settings,
        res.use_case,
        res.lake,
        res.source,
        date.fromisoformat(plan["day"]),
        datetime.fromisoformat(plan["as_of"]),
        int(plan["chunk_rows"]),
    )


def record_feedback(triggering_asset_events: Any) -> list[dict[str, Any]]:
    """Live metrics for the validated days announced by the triggering Asset events."""
    from airloop.feedback import record_day

    res = _resources()
    days = sorted(
        {
            ds
            for events in (triggering_asset_events or {}).values()
            for e in events
            for ds in (e.extra or {}).get("validated_days", [])
        }
    )
    recorded = [
        m
        for ds in days
        if (m := record_day(res.lake, res.live_store, res.use_case, date.fromisoformat(ds))) is not None
    ]
    logger.info("live metrics recorded for %d of %d day(s)", len(recorded), len(days))
    return recorded


def judge_shadow(who: str, at: str) -> dict[str, Any]:
    """The live verdict on the champion and its shadow (``airloop.shadow``); acts on it."""
    from airloop.shadow import judge_shadow as judge

    res = _resources()
    return judge(res.registry, res.use_case, res.lake, who, at)


def check_drift(window: dict[str, Any] | None, run_id: str) -> dict[str, Any]:
    """Drift of the sensor's window against the champion; the decision and, if it retrains, the conf."""
    from airloop.drift.monitor import Window, check_window, retrain_conf

    res = _resources()
    if not window:
        logger.info("no new live rows within the maximum wait: nothing to check")
        return {"retrain": False, "status": "no_rows", "reason": "no new live rows"}
    summary = check_window(res.settings, res.use_case, res.lake, Window.from_dict(window), run_label=run_id)
    decision = summary["decision"]
    latest = summary["latest_validated_day"]
    # Retrain on the newest labelled data: the holdout ends the day after the last validated day.
    holdout_end = date.fromisoformat(latest) + timedelta(days=1) if latest else None
    return {
        "retrain": decision["retrain"],
        "status": decision["status"],
        "reason": decision["reason"],
        "report": summary["report"],
        "mlflow_run_id": summary["mlflow_run_id"],
        "alerts": decision["alerts"],
        "window": summary["window"],
        "conf": retrain_conf(summary, holdout_end) if decision["retrain"] else None,
    }
