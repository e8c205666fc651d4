"""The console's read model: typed records of what the platform holds, read from its own stores.

Each function takes the resources it reads (the registry, the lake, the use case) and returns frozen
dataclasses the pages render and the JSON endpoints return (``as_json``). Nothing here writes; nothing is
made up when a store lacks something: a field is ``None`` (or empty) and the page says so.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airloop.lake import Lake
from airloop.registry import CHALLENGER, CHAMPION, SHADOW, AliasMove, ModelRegistry

if TYPE_CHECKING:
    from airloop.settings import Settings
    from airloop.usecase import UseCase

logger = logging.getLogger(__name__)

METRICS = ("roc_auc", "pr_auc", "log_loss", "brier")
"""Holdout metrics shown beside the baseline's (MLflow metrics ``holdout_<m>``, ``baseline_holdout_<m>``)."""


def as_json(record: Any) -> Any:
    """A record (dataclass, list of them, dict) as JSON-able values."""
    if is_dataclass(record) and not isinstance(record, type):
        return {k: as_json(v) for k, v in asdict(record).items()}
    if isinstance(record, dict):
        return {str(k): as_json(v) for k, v in record.items()}
    if isinstance(record, list | tuple):
        return [as_json(v) for v in record]
    return record


# -- models -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelVersionRecord:
    version: str
    aliases: list[str]
    created_at: str | None
    """When the version was registered (UTC, ISO)."""
    run_id: str | None
    """The MLflow run of the network that serves (the *deployed* run)."""
    experiment_id: str | None
    judged_run_id: str | None
    window: dict[str, str]
    """``train_start``, ``holdout_start``, ``holdout_end`` (exclusive) of the judged recipe."""
    data_end: str | None
    """The version was trained on data before this day (exclusive)."""
    trigger_reason: str | None
    triggered_by: str | None
    dag_id: str | None
    airflow_run_id: str | None
    drift_evidence: dict[str, Any]
    metrics: dict[str, float]
    """Holdout metrics of the judged recipe."""
    baseline: dict[str, float]
    gate_verdict: str | None
    gate_reason: str | None
    champion_saw_days: int | None
    behaviour: list[dict[str, Any]]
    promotion: str | None
    """Why the champion was kept when this version was not promoted."""
    live_verdict: str | None
    live_reason: str | None
    moves: list[AliasMove]
    """Audit-trail entries about this version (an alias set on it or removed from it), oldest first."""


@dataclass(frozen=True)
class ModelsView:
    model: str
    champion: str | None
    challenger: str | None
    shadow: str | None
    versions: list[ModelVersionRecord]
    """Newest first."""
    audit: list[AliasMove]
    """Every alias move, newest first."""

    def version(self, number: str | None) -> ModelVersionRecord | None:
        return next((v for v in self.versions if v.version == number), None)


def _json_tag(tags: dict[str, str], key: str, default: Any) -> Any:
    try:
        return json.loads(tags[key]) if tags.get(key) else default
    except ValueError:
        logger.warning("tag %s is not JSON: %.80s", key, tags[key])
        return default


def _iso_ms(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _about(move: AliasMove, version: str) -> bool:
    """Whether an audit entry set an alias on ``version`` or removed one from it."""
    return move.version == version or (move.version is None and move.previous == version)


def models_view(registry: ModelRegistry) -> ModelsView:
    """Every registered version of the use case's model with its lineage, metrics, verdicts and audit
    trail (an empty view when nothing is registered yet)."""
    from mlflow.exceptions import MlflowException

    client = registry.client
    try:
        audit = registry.audit_trail()
    except MlflowException:  # no registered model yet: nothing trained
        return ModelsView(registry.name, None, None, None, [], [])
    found = client.search_model_versions(f"name='{registry.name}'")
    records = []
    for mv in sorted(found, key=lambda m: -int(m.version)):
        tags = dict(mv.tags or {})
        metrics: dict[str, float] = {}
        experiment = None
        if mv.run_id:
            try:
                run = client.get_run(mv.run_id)
                metrics, experiment = dict(run.data.metrics), run.info.experiment_id
            except MlflowException as err:
                logger.warning("v%s: run %s unreadable: %s", mv.version, mv.run_id, err)
        saw = tags.get("gate.champion_saw_days")
        records.append(
            ModelVersionRecord(
                version=str(mv.version),
                aliases=sorted(getattr(mv, "aliases", None) or []),
                created_at=_iso_ms(mv.creation_timestamp),
                run_id=mv.run_id,
                experiment_id=experiment,
                judged_run_id=tags.get("airloop.judged_run_id"),
                window=_json_tag(tags, "airloop.window", {}),
                data_end=tags.get("airloop.data_end"),
                trigger_reason=tags.get("airloop.trigger_reason"),
                triggered_by=tags.get("airloop.triggered_by"),
                dag_id=tags.get("airloop.dag_id"),
                airflow_run_id=tags.get("airloop.run_id"),
                drift_evidence=_json_tag(tags, "airloop.drift_evidence", {}),
                metrics={m: metrics[f"holdout_{m}"] for m in METRICS if f"holdout_{m}" in metrics},
                baseline={
                    m: metrics[f"baseline_holdout_{m}"] for m in METRICS if f"baseline_holdout_{m}" in metrics
                },
                gate_verdict=tags.get("gate.verdict"),
                gate_reason=tags.get("gate.reason"),
                champion_saw_days=int(saw) if saw else None,
                behaviour=_json_tag(tags, "gate.behaviour", []),
                promotion=tags.get("promotion"),
                live_verdict=tags.get("live.verdict"),
                live_reason=tags.get("live.reason"),
                moves=[m for m in audit if _about(m, str(mv.version))],
            )
        )
    return ModelsView(
        registry.name,
        registry.version_of(CHAMPION),
        registry.version_of(CHALLENGER),
        registry.version_of(SHADOW),
        records,
        list(reversed(audit)),
    )


def version_for_run(view: ModelsView, dag_id: str, run_id: str) -> ModelVersionRecord | None:
    """The version an Airflow run of ``train_model`` registered (lineage tags), if any."""
    return next((v for v in view.versions if v.dag_id == dag_id and v.airflow_run_id == run_id), None)


# -- drift --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftedInput:
    feature: str
    status: str
    test: str
    statistic: float | None
    psi: float | None
    p_adjusted: float | None


@dataclass(frozen=True)
class DriftCheck:
    id: str
    after: str | None
    until: str
    rows: int
    event_span_hours: float | None
    champion_version: str | None
    status: str
    """``retrain``, ``cooldown``, ``too_little_new_data``, ``quiet`` or ``too_few_rows``."""
    retrain: bool
    reason: str
    alerts: list[str]
    warnings: list[str]
    top: list[DriftedInput]
    """The alerted and warned inputs, largest PSI first (at most ``top_n``)."""
    live_auc: float | None
    champion_auc: float | None
    auc_drop: float | None
    labelled_rows: int
    airflow_run_id: str | None
    """The ``drift_monitor`` run that checked the window (``None`` for a check run outside Airflow)."""
    triggered_run_id: str | None
    """The ``train_model`` run it started (``drift__<run>``), when it retrained."""
    mlflow_run_id: str | None
    has_report: bool


@dataclass(frozen=True)
class DriftView:
    checks: list[DriftCheck]
    """Newest first."""
    policy: dict[str, Any]


def drift_view(lake: Lake, use_case: UseCase, top_n: int = 5) -> DriftView:
    from airloop.drift.monitor import checks_root, past_checks

    checks = []
    for s in reversed(past_checks(lake)):
        window, decision, perf = s["window"], s["decision"], s.get("performance") or {}
        drifted = sorted(
            (f for f in s.get("features", []) if f.get("status") in ("alert", "warn")),
            key=lambda f: (f["status"] != "alert", -(f.get("psi") or 0.0)),
        )
        run = s.get("run")
        in_airflow = bool(run) and run != "manual"
        checks.append(
            DriftCheck(
                id=window.get("id") or Path(s["report"]["json"]).parent.name,
                after=window.get("after"),
                until=window["until"],
                rows=int(window.get("rows") or 0),
                event_span_hours=window.get("event_span_hours"),
                champion_version=s.get("champion_version"),
                status=decision["status"],
                retrain=bool(decision["retrain"]),
                reason=decision["reason"],
                alerts=list(decision.get("alerts", [])),
                warnings=list(decision.get("warnings", [])),
                top=[
                    DriftedInput(
                        f["feature"],
                        f["status"],
                        f["test"],
                        f.get("statistic"),
                        f.get("psi"),
                        f.get("p_adjusted"),
                    )
                    for f in drifted[:top_n]
                ],
                live_auc=perf.get("live_auc"),
                champion_auc=perf.get("champion_auc"),
                auc_drop=perf.get("drop"),
                labelled_rows=int(perf.get("labelled_rows") or 0),
                airflow_run_id=run if in_airflow else None,
                triggered_run_id=f"drift__{run}" if in_airflow and decision["retrain"] else None,
                mlflow_run_id=s.get("mlflow_run_id"),
                has_report=(checks_root(lake) / (window.get("id") or "") / "report.html").is_file(),
            )
        )
    return DriftView(checks, use_case.drift.model_dump(mode="json"))


# -- data ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayRecord:
    ds: str
    status: str
    """``validated``, ``quarantined`` or ``missing``."""
    rows: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    """Each failed expectation with its counts (quarantined days)."""


@dataclass(frozen=True)
class FeatureFreshness:
    view: str
    computed_days: int
    last_computed: str | None
    """The newest day with a feature partition in the lake."""
    last_materialized: tuple[str, str] | None
    """The newest interval materialized into the online store (start, end), per Feast's registry."""


@dataclass(frozen=True)
class DataView:
    days: list[DayRecord]
    """Every day from the first to the last known one, in order (gaps are ``missing``)."""
    features: list[FeatureFreshness]
    features_error: str | None
    """Why materialization intervals could not be read (the feature store was unreachable)."""

    @property
    def quarantined(self) -> list[DayRecord]:
        return [d for d in self.days if d.status == "quarantined"]


def day_records(lake: Lake) -> list[DayRecord]:
    """The calendar of days the lake knows: validated (manifest), quarantined (report), and the missing
    days between the first and the last of them."""
    validated, quarantined = set(lake.validated_days()), set(lake.quarantined_days())
    known = sorted(validated | quarantined)
    if not known:
        return []
    first, last = date.fromisoformat(known[0]), date.fromisoformat(known[-1])
    out = []
    for n in range((last - first).days + 1):
        ds = (first + timedelta(days=n)).isoformat()
        if ds in validated:
            manifest = lake.manifest(ds)
            out.append(
                DayRecord(ds, "validated", dict(manifest.get("rows", {})), list(manifest.get("warnings", [])))
            )
        elif ds in quarantined:
            result_path = lake.quarantine_dir(ds) / "validation.json"
            result = json.loads(result_path.read_text()) if result_path.is_file() else {}
            out.append(
                DayRecord(
                    ds, "quarantined", {}, list(result.get("warnings", [])), list(result.get("failures", []))
                )
            )
        else:
            out.append(DayRecord(ds, "missing"))
    return out


def feature_freshness(settings: Settings, use_case: UseCase) -> tuple[list[FeatureFreshness], str | None]:
    """Per feature view of the declaration: the computed partitions in the lake and the newest interval
    Feast's registry says was materialized (``None`` with the reason when the store cannot be read)."""
    from airloop.featurestore.config import features_dir

    fs = use_case.features
    views = [v.name for v in fs.groups] if fs else []
    intervals: dict[str, tuple[str, str]] = {}
    error = None
    try:
        from airloop.featurestore.config import open_store

        store = open_store(settings, use_case, apply=False)
        for fv in store.list_feature_views():
            if fv.materialization_intervals:
                start, end = max(fv.materialization_intervals, key=lambda i: i[1])
                intervals[fv.name] = (start.isoformat(), end.isoformat())
    except Exception as err:  # noqa: BLE001 - any store failure is shown on the page, never hidden
        logger.warning("feature store unreadable: %s", err)
        error = f"{type(err).__name__}: {err}"
    out = []
    for view in views:
        days = sorted(p.name[3:] for p in features_dir(settings, view).glob("ds=*") if p.is_dir())
        out.append(FeatureFreshness(view, len(days), days[-1] if days else None, intervals.get(view)))
    return out, error


def data_view(settings: Settings, use_case: UseCase, lake: Lake, with_features: bool = True) -> DataView:
    features, error = feature_freshness(settings, use_case) if with_features else ([], None)
    return DataView(day_records(lake), features, error)


# -- live ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveDay:
    ds: str
    served: int
    """Events served that day (the latest answer per event)."""
    with_outcome: int
    by_version: dict[str, dict[str, Any]]
    """Model version -> rows, accuracy, roc_auc, positive_rate, scores (the score histogram)."""
    shadow: list[dict[str, Any]]


@dataclass(frozen=True)
class LiveView:
    days: list[LiveDay]
    """Oldest first: the days whose outcomes landed (``live_feedback``)."""
    versions: list[str]


def live_view(lake: Lake) -> LiveView:
    folder = lake.root / "monitoring" / "live_metrics"
    days = []
    for path in sorted(folder.glob("ds=*.json")):
        m = json.loads(path.read_text())
        days.append(
            LiveDay(
                m.get("ds", path.stem[3:]),
                int(m.get("served", 0)),
                int(m.get("with_outcome", 0)),
                dict(m.get("by_version", {})),
                list(m.get("shadow", [])),
            )
        )
    versions = sorted({v for d in days for v in d.by_version}, key=lambda v: (len(v), v))
    return LiveView(days, versions)


# -- report files -------------------------------------------------------------------------------------


def contained(root: Path, *parts: str) -> Path:
    """``root/parts...`` when it resolves inside ``root`` (symlinks followed), else ``ValueError``: a name
    from a URL never reaches outside the folder it names a file of (``..``, absolute parts, links)."""
    base = root.resolve()
    for part in parts:
        if not part or part.startswith("/") or "\\" in part or "\x00" in part:
            raise ValueError(f"not a plain name: {part!r}")
    target = base.joinpath(*parts).resolve()
    if not target.is_relative_to(base) or target == base:
        raise ValueError(f"{'/'.join(parts)!r} is outside {root}")
    return target


def drift_report(lake: Lake, check_id: str) -> Path:
    """The HTML report of one drift check (``FileNotFoundError`` if there is none)."""
    from airloop.drift.monitor import checks_root

    path = contained(checks_root(lake), check_id, "report.html")
    if not path.is_file():
        raise FileNotFoundError(f"no drift report for window {check_id}")
    return path


def quarantine_report(lake: Lake, ds: str) -> Path:
    """The ``REPORT.md`` of a quarantined day (``FileNotFoundError`` if the day is not in quarantine)."""
    if date.fromisoformat(ds).isoformat() != ds:  # ValueError for anything but YYYY-MM-DD
        raise ValueError(f"not a day: {ds!r}")
    path = contained(lake.root / "quarantine", f"ds={ds}", "REPORT.md")
    if not path.is_file():
        raise FileNotFoundError(f"{ds} is not in quarantine")
    return path
