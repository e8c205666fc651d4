"""Ground-truth feedback: join what the service predicted with what actually happened.

For each day with validated outcomes, the live-traffic log's rows of flights scheduled that day are
joined to the validated events by the primary source's key; live accuracy and ROC AUC per model version
are written to ``lake/monitoring/live_metrics/ds=DAY.json`` for the drift monitor.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from airloop.labels import make_label
from airloop.lake import Lake, write_json
from airloop.serving.livelog import LiveStore
from airloop.usecase import UseCase

logger = logging.getLogger(__name__)


def day_metrics(served: pd.DataFrame, outcomes: pd.DataFrame, use_case: UseCase) -> dict[str, Any]:
    """Live metrics of one day's served predictions against their outcomes (pure)."""
    from sklearn.metrics import roc_auc_score

    key = use_case.source(use_case.primary_source).key
    labelled = make_label(outcomes, use_case.label)[[*key, use_case.label.name]]
    latest = served.sort_values("served_at").drop_duplicates(subset=key, keep="last")  # last answer per flight
    joined = latest.merge(labelled, on=key, how="inner")
    result: dict[str, Any] = {"served": int(len(latest)), "with_outcome": int(len(joined)), "by_version": {}}
    for version, part in joined.groupby("model_version"):
        y, p = part[use_case.label.name].to_numpy(), part["probability"].to_numpy()
        auc = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None
        result["by_version"][str(version)] = {"rows": int(len(part)), "accuracy": float(np.mean(part["label"].to_numpy() == y)),
                                              "roc_auc": auc, "positive_rate": float(y.mean())}
    return result


def record_day(lake: Lake, store: LiveStore, use_case: UseCase, day: date) -> dict[str, Any] | None:
    """Compute and store the live metrics of ``day``; ``None`` when nothing was served for it."""
    key = use_case.source(use_case.primary_source).key
    columns = [*key, "year", "month", "day", "probability", "label", "model_version"]
    live = pd.concat([c[(c["year"] == day.year) & (c["month"] == day.month) & (c["day"] == day.day)]
                      for c in store.scan(None, None, columns)] or [pd.DataFrame(columns=[*columns, "served_at"])],
                     ignore_index=True)
    if live.empty:
        return None
    served = live[(live["year"] == day.year) & (live["month"] == day.month) & (live["day"] == day.day)]
    if served.empty or day.isoformat() not in set(lake.validated_days()):
        return None
    metrics = {"ds": day.isoformat(), **day_metrics(served, lake.read_partition("validated", use_case.primary_source, day), use_case)}
    write_json(lake.root / "monitoring" / "live_metrics" / f"ds={day.isoformat()}.json", metrics)
    logger.info("live metrics %s: %s", day, metrics)
    return metrics
