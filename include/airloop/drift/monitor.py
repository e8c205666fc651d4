"""The drift check of one live-traffic window against the champion's reference, and its decision.

A *window* is the live rows (the configured live store: Parquet in the lake, or PostgreSQL) served in
``(after, until]`` (UTC): ``after`` is the end of the last checked window (the cursor), ``until`` the
latest served time seen when the sensor fired. Each check writes
``lake/monitoring/drift/checks/<window id>/{summary.json,report.html}`` atomically (a re-run of the same
window overwrites it) and the cursor is simply the latest summary, so a failed check is re-run as is.
Cooldown is measured in served time: a window ending less than ``cooldown_hours`` after the end of the
window that last triggered a retrain reports its drift but does not trigger again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from airloop.drift.engine import SCORE_COLUMN, DriftEngine, FeatureDrift
from airloop.lake import Lake, write_json
from airloop.livelog import LiveStore, live_store
from airloop.settings import Settings
from airloop.usecase import DriftPolicy, UseCase

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    after: datetime | None
    until: datetime
    rows: int

    @property
    def id(self) -> str:
        start = "start" if self.after is None else pd.Timestamp(self.after).strftime("%Y%m%dT%H%M%S%fZ")
        return f"{start}--{pd.Timestamp(self.until).strftime('%Y%m%dT%H%M%S%fZ')}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "after": None if self.after is None else pd.Timestamp(self.after).isoformat(),
            "until": pd.Timestamp(self.until).isoformat(),
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Window:
        after = None if data.get("after") is None else pd.Timestamp(data["after"]).to_pydatetime()
        return cls(after, pd.Timestamp(data["until"]).to_pydatetime(), int(data["rows"]))


def checks_root(lake: Lake) -> Path:
    return lake.root / "monitoring" / "drift" / "checks"


def past_checks(lake: Lake) -> list[dict[str, Any]]:
    """Summaries of the windows checked so far, oldest first."""
    summaries = [json.loads(p.read_text()) for p in checks_root(lake).glob("*/summary.json")]
    return sorted(summaries, key=lambda s: s["window"]["until"])


def cursor(lake: Lake) -> datetime | None:
    """End of the last checked window: the next window starts after it."""
    checks = past_checks(lake)
    return pd.Timestamp(checks[-1]["window"]["until"]).to_pydatetime() if checks else None


def last_retrain(lake: Lake) -> datetime | None:
    triggered = [c for c in past_checks(lake) if c["decision"]["retrain"]]
    return pd.Timestamp(triggered[-1]["window"]["until"]).to_pydatetime() if triggered else None


def last_retrain_data_end(lake: Lake) -> date | None:
    """The first day the last drift-triggered retrain did not train on (its ``holdout_end``: the day after
    the newest validated day when it was triggered), or None."""
    triggered = [c for c in past_checks(lake) if c["decision"]["retrain"] and c.get("latest_validated_day")]
    return (
        date.fromisoformat(triggered[-1]["latest_validated_day"]) + timedelta(days=1) if triggered else None
    )


def pending_window(store: LiveStore, after: datetime | None) -> Window | None:
    """The window of rows served since ``after``, or ``None`` when none arrived."""
    rows, latest = store.count_since(after)
    if not rows:
        return None
    assert latest is not None  # rows were served after ``after``: the latest of them is known
    return Window(after, latest, rows)


@dataclass
class Performance:
    champion_auc: float | None
    live_auc: float | None
    labelled_rows: int
    days: list[str]
    drop: float | None
    alert: bool
    measure: str = "daily"
    """How both AUCs were measured (``ModelSpec.live_measure``)."""

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def performance_drift(
    lake: Lake, version: str, champion_auc: float | None, policy: DriftPolicy, measure: str = "daily"
) -> Performance:
    """``live_performance`` of the champion version over the days it answered, from the feedback task's
    ``monitoring/live_metrics``."""
    days = []
    for path in sorted((lake.root / "monitoring" / "live_metrics").glob("ds=*.json")):
        entry = json.loads(path.read_text()).get("by_version", {}).get(str(version))
        if entry:
            days.append((path.stem[3:], entry))
    return live_performance(days, champion_auc, policy, measure)


def live_performance(
    days: list[tuple[str, dict[str, Any]]], champion_auc: float | None, policy: DriftPolicy, measure: str
) -> Performance:
    """The performance trigger (pure): the champion's live ROC AUC over ``days`` (day, its live metrics:
    ``feedback.day_metrics``' entry of the version) measured as the use case declares
    (``ModelSpec.live_measure``) - ``daily``, the rows-weighted mean of the daily AUCs; ``pooled``, the AUC
    of the days' score histograms summed (days recorded before histograms were kept are left out) - against
    its holdout AUC measured the same way; an alert when it dropped by more than ``performance_drop`` on at
    least ``min_labelled_rows`` rows."""
    from airloop.model.metrics import check_measure, histogram_roc_auc

    pooled = check_measure(measure) == "pooled"
    used = [(d, e) for d, e in days if (e.get("scores") if pooled else e.get("roc_auc") is not None)]
    rows = sum(entry["rows"] for _, entry in used)
    if pooled:
        live = histogram_roc_auc(entry["scores"] for _, entry in used)
    else:
        live = sum(entry["roc_auc"] * entry["rows"] for _, entry in used) / rows if rows else None
    drop = None if live is None or champion_auc is None else champion_auc - live
    alert = drop is not None and rows >= policy.min_labelled_rows and drop > policy.performance_drop
    return Performance(champion_auc, live, rows, [day for day, _ in used], drop, alert, measure)


@dataclass(frozen=True)
class NewData:
    """What a retrain now would add: the validated events from ``since`` on - the first day neither the
    champion nor the last drift-triggered retrain trained on (a retrain the gate kept out, or one the
    shadow judge overturned, already had the data up to there) - against the rows the champion was fit
    on (None: unknown, never blocks)."""

    rows: int
    fit_rows: int | None
    since: str | None

    @property
    def share(self) -> float | None:
        return self.rows / self.fit_rows if self.fit_rows else None

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "fit_rows": self.fit_rows, "since": self.since, "share": self.share}


def new_data(lake: Lake, use_case: UseCase, since: date | None, fit_rows: int | None) -> NewData:
    """Events of the primary source in the validated days from ``since`` (or from the last triggered
    retrain's data end, when later) on: the day manifests' counts."""
    tried = last_retrain_data_end(lake)
    since = tried if since is None or (tried is not None and tried > since) else since
    first = since.isoformat() if since is not None else ""
    rows = sum(
        int(lake.manifest(ds)["rows"].get(use_case.primary_source, 0))
        for ds in lake.validated_days()
        if ds >= first
    )
    return NewData(rows, fit_rows, since.isoformat() if since is not None else None)


@dataclass
class Decision:
    retrain: bool
    status: str
    """``retrain``, ``cooldown``, ``too_little_new_data``, ``quiet`` or ``too_few_rows``."""
    reason: str
    alerts: list[str]
    warnings: list[str]


def decide(
    results: list[FeatureDrift],
    performance: Performance,
    window: Window,
    policy: DriftPolicy,
    last_trigger: datetime | None,
    fresh: NewData | None = None,
) -> Decision:
    """Retrain or not: an alert that triggers (or the performance trigger) in a large enough window, out
    of the cooldown, with enough new data (``policy.min_new_share`` of ``fresh``; None: not checked)."""
    alerts = [r.feature for r in results if r.status == "alert"]
    warnings = [r.feature for r in results if r.status == "warn"]
    if window.rows < policy.min_rows:
        return Decision(
            False, "too_few_rows", f"{window.rows} rows < min_rows {policy.min_rows}", alerts, warnings
        )
    causes = []
    reported = set(policy.report_only)
    triggering = [r for r in results if r.status == "alert" and r.feature not in reported]
    if triggering:
        top = sorted(triggering, key=lambda r: -r.psi)
        causes.append(
            "drift in "
            + ", ".join(
                f"{r.feature} ({'KS ' + format(r.statistic, '.3f') + ', ' if r.test == 'ks' else ''}"
                f"PSI {r.psi:.2f})"
                for r in top[:5]
            )
            + (f" and {len(top) - 5} more" if len(top) > 5 else "")
        )
    if performance.alert:
        causes.append(
            f"live ROC AUC {performance.live_auc:.3f} is {performance.drop:.3f} below the champion's "
            f"holdout {performance.champion_auc:.3f} ({performance.labelled_rows} labelled rows, "
            f"{performance.measure})"
        )
    if not causes:
        silent = [a for a in alerts if a in reported]
        return Decision(
            False,
            "quiet",
            "no alert"
            + (f" that triggers (report-only alerts: {', '.join(silent)})" if silent else "")
            + (f"; warnings: {', '.join(warnings)}" if warnings else ""),
            alerts,
            warnings,
        )
    reason = "; ".join(causes)
    if last_trigger is not None and pd.Timestamp(window.until) - pd.Timestamp(last_trigger) < timedelta(
        hours=policy.cooldown_hours
    ):
        return Decision(
            False,
            "cooldown",
            f"{reason} - but within the {policy.cooldown_hours:g} h cooldown after the "
            f"retrain triggered at {pd.Timestamp(last_trigger).isoformat()}",
            alerts,
            warnings,
        )
    share = fresh.share if fresh is not None else None
    if share is not None and share < policy.min_new_share:
        assert fresh is not None
        return Decision(
            False,
            "too_little_new_data",
            f"{reason} - but the {fresh.rows} events since {fresh.since} (the newest data the champion "
            f"or the last triggered retrain trained on) are {share:.1%} of the {fresh.fit_rows} the "
            f"champion was fit on, below min_new_share {policy.min_new_share:.0%}",
            alerts,
            warnings,
        )
    return Decision(True, "retrain", reason, alerts, warnings)


@dataclass(frozen=True)
class Champion:
    """What a drift check compares live traffic with: the champion version's reference profile, its
    holdout ROC AUC (measured as live AUC is: ``ModelSpec.live_measure``), the first day it did not train
    on and the rows it was fit on."""

    version: str
    profile: dict
    holdout_auc: float | None
    run_id: str
    data_end: date | None
    fit_rows: int | None


def live_measure(use_case: UseCase) -> str:
    """The use case's declared live measure (``ModelSpec.live_measure``; ``daily`` without a model)."""
    return use_case.model.live_measure if use_case.model is not None else "daily"


def champion_reference(settings: Settings, use_case: UseCase) -> Champion:
    import mlflow

    from airloop.registry import CHAMPION, open_registry
    from airloop.training import data_end

    registry = open_registry(settings, use_case)
    version = registry.version_of(CHAMPION)
    if version is None:
        raise LookupError(f"no champion of {use_case.model_name}: nothing to compare live traffic with")
    mv = registry.version(version)
    path = mlflow.artifacts.download_artifacts(run_id=mv.run_id, artifact_path="reference_profile.json")
    # live AUC is compared with the holdout's measured alike (ModelSpec.live_measure); day by day, versions
    # registered before that tag fall back to the pooled holdout AUC (which ranks days against each other)
    pooled = mv.tags.get("airloop.holdout_roc_auc")
    auc = (
        pooled
        if live_measure(use_case) == "pooled"
        else mv.tags.get("airloop.holdout_daily_roc_auc") or pooled
    )
    fit_rows = mlflow.MlflowClient().get_run(mv.run_id).data.tags.get("airloop.fit_rows")
    return Champion(
        version,
        json.loads(Path(path).read_text()),
        float(auc) if auc else None,
        mv.run_id,
        data_end(mv.tags),
        int(fit_rows) if fit_rows else None,
    )


def scan_window(
    engine: DriftEngine,
    store: LiveStore,
    window: Window,
    champion: str,
    use_case: UseCase,
    batch_rows: int = 262144,
) -> tuple[int, float | None]:
    """Feed the window to the engine; the score only of rows the champion served (prediction drift).
    Returns the rows scanned and the hours from the window's first to its last event time (None when the
    use case declares no event time)."""
    from airloop.features import event_times

    fs = use_case.features
    times = [c for c in (fs.event_time_column, fs.event_time_minutes_column) if c] if fs else []
    columns = list(dict.fromkeys([*engine.columns, "model_version", *times]))
    rows, first, last = 0, None, None
    for chunk in store.scan(window.after, window.until, columns, batch_rows):
        if SCORE_COLUMN in chunk.columns:
            chunk.loc[chunk["model_version"].astype(str) != str(champion), SCORE_COLUMN] = float("nan")
        engine.update(chunk)
        rows += len(chunk)
        if times and len(chunk):
            stamps = event_times(chunk, use_case).dropna()
            if len(stamps):
                first = stamps.min() if first is None else min(first, stamps.min())
                last = stamps.max() if last is None else max(last, stamps.max())
    span = (last - first).total_seconds() / 3600 if first is not None and last is not None else None
    return rows, span


def retrain_conf(summary: dict[str, Any], holdout_end: date | None) -> dict[str, Any]:
    """``train_model`` conf for a drift-triggered retrain: the reason and compact evidence (MLflow tags)."""
    features = {
        f["feature"]: {
            "status": f["status"],
            "test": f["test"],
            "statistic": round(f["statistic"], 5),
            "p_adjusted": f["p_adjusted"],
            "psi": round(f["psi"], 4),
            "null_share_change": round(f["null_share_change"], 4),
        }
        for f in summary["features"]
        if f["status"] in ("alert", "warn")
    }
    conf: dict[str, Any] = {
        "reason": f"drift_monitor: {summary['decision']['reason']}"[:1000],
        "drift_evidence": {
            "window": summary["window"],
            "champion_version": summary["champion_version"],
            "drifted_features": features,
            "performance": summary["performance"],
            "new_data": summary.get("new_data"),
            "report": summary["report"],
        },
    }
    if holdout_end is not None:
        conf["holdout_end"] = holdout_end.isoformat()
    return conf


def check_window(
    settings: Settings, use_case: UseCase, lake: Lake, window: Window, run_label: str = "manual"
) -> dict[str, Any]:
    """Drift of ``window`` against the champion, the decision, the report (lake + MLflow); the summary."""
    from airloop.drift.report import render_html

    policy = use_case.drift
    champion = champion_reference(settings, use_case)
    version, champion_run = champion.version, champion.run_id
    engine = DriftEngine.from_profile(champion.profile, policy.features, policy.ignore, policy.prediction)
    scanned, span_hours = scan_window(engine, live_store(settings), window, version, use_case)
    results = engine.evaluate(policy, span_hours=span_hours)
    performance = performance_drift(lake, version, champion.holdout_auc, policy, live_measure(use_case))
    fresh = new_data(lake, use_case, champion.data_end, champion.fit_rows)
    decision = decide(
        results,
        performance,
        Window(window.after, window.until, scanned),
        policy,
        last_retrain(lake),
        fresh,
    )
    folder = checks_root(lake) / window.id
    validated = lake.validated_days()
    summary = {
        "window": {**window.as_dict(), "rows": scanned, "id": window.id, "event_span_hours": span_hours},
        "use_case": use_case.name,
        "model": use_case.model_name,
        "champion_version": version,
        "champion_run_id": champion_run,
        "policy": policy.model_dump(),
        "run": run_label,
        "features": [r.as_dict() for r in results],
        # input -> the columns of one observation: its test's rows are the window's distinct observations
        # (empty for a champion whose profile predates shared inputs: then every input is compared per row)
        "shared": {name: list(per) for name, per in engine.shared.items()},
        "performance": performance.as_dict(),
        "new_data": fresh.as_dict(),
        "decision": decision.__dict__,
        "report": {"html": str(folder / "report.html"), "json": str(folder / "summary.json")},
        "latest_validated_day": validated[-1] if validated else None,
    }
    html = render_html(summary)
    summary["mlflow_run_id"] = log_monitoring_run(settings, use_case, summary, html)
    write_json(folder / "summary.json", summary)
    _write_text(folder / "report.html", html)
    logger.info(
        "drift window %s (%d rows) vs v%s: %s - %s",
        window.id,
        scanned,
        version,
        decision.status,
        decision.reason,
    )
    return summary


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def log_monitoring_run(settings: Settings, use_case: UseCase, summary: dict[str, Any], html: str) -> str:
    """A run in the ``<model>-monitoring`` experiment, linked to the champion version, with the report."""
    import tempfile

    import mlflow

    from airloop.training import mlflow_experiment

    experiment_id = mlflow_experiment(settings, use_case, f"{use_case.model_name}-monitoring")
    client = mlflow.MlflowClient()
    decision = summary["decision"]
    tags = {
        "airloop.kind": "drift_check",
        "airloop.window": summary["window"]["id"],
        "airloop.model": use_case.model_name,
        "airloop.champion_version": summary["champion_version"],
        "airloop.champion_run_id": summary["champion_run_id"],
        "airloop.decision": decision["status"],
        "airloop.reason": decision["reason"][:5000],
        "mlflow.runName": f"drift {summary['window']['id']}",
    }
    run = client.create_run(experiment_id, tags=tags)
    metrics = {
        "window_rows": summary["window"]["rows"],
        "alerts": len(decision["alerts"]),
        "warnings": len(decision["warnings"]),
    }
    for f in summary["features"]:
        key = f["feature"].replace("/", "_")
        metrics[f"psi.{key}"] = f["psi"]
        metrics[f"statistic.{key}"] = f["statistic"]
    if summary["performance"]["live_auc"] is not None:
        metrics["live_roc_auc"] = summary["performance"]["live_auc"]
    for key, value in metrics.items():
        if value == value:  # not NaN
            client.log_metric(run.info.run_id, key, float(value))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "report.html").write_text(html)
        (Path(tmp) / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        client.log_artifacts(run.info.run_id, tmp, "drift")
    client.set_terminated(run.info.run_id)
    return run.info.run_id
