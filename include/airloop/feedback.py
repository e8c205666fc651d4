"""Ground-truth feedback: join what the service predicted with what actually happened.

For each day with validated outcomes, the live-traffic log's rows of the events of that day (by the local
day of their logged event time) are joined to the validated events by the primary source's key; live
accuracy and ROC AUC per model version (and its score histogram, for a pooled measure over days) are written
to ``lake/monitoring/live_metrics/ds=DAY.json`` for the drift monitor. Rows a shadow version scored too
(``ModelSpec.shadow``) give both versions' metrics on the same events and are kept as paired evidence for
``airloop.shadow.judge_shadow``.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from airloop.features import event_times
from airloop.labels import make_label
from airloop.lake import Lake, write_json
from airloop.livelog import LiveStore
from airloop.sources import parse_timestamps
from airloop.usecase import UseCase

logger = logging.getLogger(__name__)


def joined_outcomes(served: pd.DataFrame, outcomes: pd.DataFrame, use_case: UseCase) -> pd.DataFrame:
    """The last answer logged per event joined to its validated outcome by the event key (pure); the
    label column holds the actual outcome as ``y``."""
    key = use_case.key
    labelled = _comparable(make_label(outcomes, use_case.label), use_case)[[*key, use_case.label.name]]
    latest = served.sort_values("served_at").drop_duplicates(subset=key, keep="last")  # last answer per event
    joined = _comparable(latest, use_case).merge(labelled, on=key, how="inner")
    return joined.rename(columns={use_case.label.name: "y"})


def _version_metrics(y: np.ndarray, p: np.ndarray, label: np.ndarray | None) -> dict[str, Any]:
    """One version's metrics on its rows of a day (accuracy when the decision labels are given)."""
    from airloop.model.metrics import roc_auc_or_none

    accuracy = {} if label is None else {"accuracy": float(np.mean(label == y))}
    return {
        "rows": int(len(y)),
        **accuracy,
        "roc_auc": roc_auc_or_none(y, p),
        "positive_rate": float(y.mean()),
    }


def live_entry(y: np.ndarray, p: np.ndarray, label: np.ndarray | None = None) -> dict[str, Any]:
    """The live metrics of the version that answered, on its rows of a day: ``_version_metrics`` and
    ``scores``, the class-conditional score histogram from which a window's pooled ROC AUC is computed
    (``ModelSpec.live_measure`` pooled; ``drift.monitor``)."""
    from airloop.model.metrics import score_histogram

    return {**_version_metrics(y, p, label), "scores": score_histogram(y, p)}


def day_metrics(served: pd.DataFrame, outcomes: pd.DataFrame, use_case: UseCase) -> dict[str, Any]:
    """Live metrics of one day's served predictions against their outcomes (pure): per model version
    that answered, and, for rows a shadow version also scored, both versions on those same rows."""
    return _metrics(served, joined_outcomes(served, outcomes, use_case), use_case)


def _metrics(served: pd.DataFrame, joined: pd.DataFrame, use_case: UseCase) -> dict[str, Any]:
    """``day_metrics`` from the served rows and their join to the outcomes (``joined_outcomes``)."""
    latest = served.drop_duplicates(subset=use_case.key)
    result: dict[str, Any] = {"served": int(len(latest)), "with_outcome": int(len(joined)), "by_version": {}}
    for version, part in joined.groupby("model_version"):
        y = part["y"].to_numpy()
        result["by_version"][str(version)] = live_entry(
            y, part["probability"].to_numpy(), part["label"].to_numpy()
        )
    shadowed = shadow_rows(joined)
    if len(shadowed):
        result["shadow"] = [
            {
                "champion": str(champion),
                "shadow": str(shadow),
                "rows": int(len(part)),
                "champion_metrics": _version_metrics(
                    part["y"].to_numpy(), part["probability"].to_numpy(), part["label"].to_numpy()
                ),
                "shadow_metrics": _version_metrics(
                    part["y"].to_numpy(),
                    part["shadow_probability"].to_numpy(),
                    part["shadow_label"].to_numpy(),
                ),
            }
            for (champion, shadow), part in shadowed.groupby(["model_version", "shadow_version"])
        ]
    return result


def shadow_rows(joined: pd.DataFrame) -> pd.DataFrame:
    """Joined rows that a shadow version scored too: the paired live evidence of two versions."""
    if "shadow_version" not in joined.columns:
        return joined.iloc[0:0]
    out = joined[joined["shadow_version"].notna() & joined["shadow_probability"].notna()].copy()
    out["model_version"] = out["model_version"].astype(str)
    out["shadow_version"] = out["shadow_version"].astype(str)
    return out


def _comparable(frame: pd.DataFrame, use_case: UseCase) -> pd.DataFrame:
    """Key columns in one form on both sides of the join: timestamps as UTC instants, integers as int64
    (a request's JSON number and the validated column must compare equal)."""
    out = frame.copy()
    source = use_case.source(use_case.primary_source)
    for name in use_case.key:
        column = source.column(name)
        if column.dtype == "timestamp":
            out[name] = parse_timestamps(out[name], column.timezone)
        elif column.dtype == "int64":
            out[name] = out[name].astype("int64")
        elif column.dtype == "string":
            out[name] = out[name].astype(object)
    return out


def event_days(frame: pd.DataFrame, use_case: UseCase) -> pd.Series:
    """The local calendar day (the data interval) of each logged event, from its logged event time."""
    return event_times(frame, use_case).dt.tz_convert(use_case.timezone).dt.date


SHADOW_COLUMNS = ["shadow_version", "shadow_probability", "shadow_label"]


def record_day(lake: Lake, store: LiveStore, use_case: UseCase, day: date) -> dict[str, Any] | None:
    """Compute and store the live metrics of ``day`` (returned without the score histograms); ``None`` when
    nothing was served for it. The rows a shadow version scored too are kept as the day's paired evidence,
    ``lake/monitoring/shadow/ds=DAY.parquet`` (event key, both versions, both probabilities, outcome ``y``;
    replaced on re-run)."""
    if use_case.features is None:
        raise ValueError(f"use case {use_case.name} declares no features (FeatureSet.event_time_column)")
    columns = [*use_case.logged_columns(), "probability", "label", "model_version", *SHADOW_COLUMNS]
    parts = [
        c[(event_days(c, use_case) == day).to_numpy()] for c in store.scan(None, None, columns) if len(c)
    ]
    served = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if served.empty or day.isoformat() not in set(lake.validated_days()):
        return None
    outcomes = lake.read_partition("validated", use_case.primary_source, day)
    joined = joined_outcomes(served, outcomes, use_case)
    metrics = {"ds": day.isoformat(), **_metrics(served, joined, use_case)}
    evidence = shadow_rows(joined)
    target = lake.root / "monitoring" / "shadow" / f"ds={day.isoformat()}.parquet"
    if len(evidence):
        keep = [*use_case.key, "model_version", "shadow_version", "probability", "shadow_probability", "y"]
        lake.write_dataset(
            "monitoring", f"shadow/ds={day.isoformat()}", evidence[keep].assign(ds=day.isoformat())
        )
    elif target.exists():  # a re-run that finds no shadowed rows replaces what an earlier run wrote
        target.unlink()
    write_json(lake.root / "monitoring" / "live_metrics" / f"ds={day.isoformat()}.json", metrics)
    summary = without_histograms(metrics)
    logger.info("live metrics %s: %s", day, summary)
    return summary


def without_histograms(metrics: dict[str, Any]) -> dict[str, Any]:
    """A day's live metrics without the versions' score histograms (for logs and task results; the
    file keeps them)."""

    strip = {v: {k: x for k, x in m.items() if k != "scores"} for v, m in metrics["by_version"].items()}
    return {**metrics, "by_version": strip}
