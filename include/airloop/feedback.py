"""Ground-truth feedback: join what the service predicted with what actually happened.

For each day with validated outcomes, the live-traffic log's rows of the events of that day (by the local
day of their logged event time) are joined to the validated events by the primary source's key; live
accuracy and ROC AUC per model version are written to ``lake/monitoring/live_metrics/ds=DAY.json`` for the
drift monitor.
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


def day_metrics(served: pd.DataFrame, outcomes: pd.DataFrame, use_case: UseCase) -> dict[str, Any]:
    """Live metrics of one day's served predictions against their outcomes (pure)."""
    from sklearn.metrics import roc_auc_score

    key = use_case.key
    labelled = _comparable(make_label(outcomes, use_case.label), use_case)[[*key, use_case.label.name]]
    latest = served.sort_values("served_at").drop_duplicates(subset=key, keep="last")  # last answer per event
    joined = _comparable(latest, use_case).merge(labelled, on=key, how="inner")
    result: dict[str, Any] = {"served": int(len(latest)), "with_outcome": int(len(joined)), "by_version": {}}
    for version, part in joined.groupby("model_version"):
        y, p = part[use_case.label.name].to_numpy(), part["probability"].to_numpy()
        auc = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None
        result["by_version"][str(version)] = {
            "rows": int(len(part)),
            "accuracy": float(np.mean(part["label"].to_numpy() == y)),
            "roc_auc": auc,
            "positive_rate": float(y.mean()),
        }
    return result


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


def record_day(lake: Lake, store: LiveStore, use_case: UseCase, day: date) -> dict[str, Any] | None:
    """Compute and store the live metrics of ``day``; ``None`` when nothing was served for it."""
    if use_case.features is None:
        raise ValueError(f"use case {use_case.name} declares no features (FeatureSet.event_time_column)")
    columns = [*use_case.logged_columns(), "probability", "label", "model_version"]
    parts = [
        c[(event_days(c, use_case) == day).to_numpy()] for c in store.scan(None, None, columns) if len(c)
    ]
    served = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if served.empty or day.isoformat() not in set(lake.validated_days()):
        return None
    metrics = {
        "ds": day.isoformat(),
        **day_metrics(served, lake.read_partition("validated", use_case.primary_source, day), use_case),
    }
    write_json(lake.root / "monitoring" / "live_metrics" / f"ds={day.isoformat()}.json", metrics)
    logger.info("live metrics %s: %s", day, metrics)
    return metrics
