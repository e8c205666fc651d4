"""Batch inference: score every event scheduled in a day with the champion, as of a given instant.

The schedule of the day comes from the source system (only the columns known before the event), the
features from the offline store as they were known at ``as_of`` (point-in-time: nothing stamped later),
the model from the registry's ``champion`` alias. Rows are scored in chunks, so memory stays flat; the
predictions partition ``lake/predictions/ds=DAY`` is replaced atomically and names the model version.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

import pandas as pd

from airloop.intervals import DayInterval
from airloop.lake import Lake
from airloop.settings import Settings
from airloop.sources import DataSource
from airloop.usecase import UseCase

logger = logging.getLogger(__name__)


def schedule(use_case: UseCase, source: DataSource, day: date) -> pd.DataFrame:
    """The day's events as known in advance: declared known-before-event columns only (no outcomes)."""
    from airloop.validation import prepare

    spec = use_case.source(use_case.primary_source)
    frame = prepare(source.extract(spec, DayInterval(day, use_case.timezone)), spec)
    return frame[[c for c in use_case.known_before_event if c in frame.columns]].reset_index(drop=True)


def features_as_of(store: Any, use_case: UseCase, events: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Point-in-time features of ``events`` as known at ``as_of`` (defaults + flags applied)."""
    from airloop.features import TS, apply_defaults
    from airloop.featurestore import historical_features

    frame = historical_features(store, use_case, events, at=pd.Timestamp(as_of).tz_convert("UTC"))
    out = apply_defaults(frame, use_case)
    out[TS] = frame[TS].to_numpy()
    return out


def score_day(
    settings: Settings,
    use_case: UseCase,
    lake: Lake,
    source: DataSource,
    day: date,
    as_of: datetime,
    chunk_rows: int = 5000,
) -> dict[str, Any]:

    from airloop.featurestore import open_store
    from airloop.model.pyfunc import RegisteredModel
    from airloop.registry import CHAMPION, open_registry

    version = open_registry(settings, use_case).version_of(CHAMPION)
    if version is None:
        raise LookupError(f"no champion of {use_case.model_name} to score with")
    model = RegisteredModel(f"models:/{use_case.model_name}/{version}", version)
    store = open_store(settings, use_case, apply=False)
    events = schedule(use_case, source, day)
    keep = [c for c in use_case.logged_columns() if c in events.columns]
    parts = []
    for start in range(0, len(events), chunk_rows):
        chunk = events.iloc[start : start + chunk_rows].reset_index(drop=True)
        features = features_as_of(store, use_case, chunk, as_of)
        scored = model.predict(features)
        parts.append(pd.concat([chunk[keep], scored], axis=1))
    predictions = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=keep + ["probability", "label"])
    )
    predictions["model_version"] = version
    predictions["scored_as_of"] = pd.Timestamp(as_of).tz_convert("UTC")
    lake.write_partition("predictions", use_case.model_name, day, predictions)
    logger.info(
        "scored %d events of %s with %s v%s as of %s",
        len(predictions),
        day,
        use_case.model_name,
        version,
        as_of,
    )
    return {
        "day": day.isoformat(),
        "rows": len(predictions),
        "model_version": version,
        "positive_rate": float(predictions["label"].mean()) if len(predictions) else 0.0,
    }
