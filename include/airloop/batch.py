"""Batch inference: score every event scheduled in a day with the champion, as of a given instant.

The schedule of the day comes from the source system (only the columns known before the event), the
features from the feature views' offline partitions as they were known at ``as_of`` (point-in-time:
nothing stamped later; ``featurestore.asof.AsOfLookup`` reads one instant with TTL partition pruning and
equals Feast's historical retrieval, ``features_as_of``, which stays as the reference), the model from the
registry's ``champion`` alias (loaded once per process and version). Rows are scored in chunks, so memory
stays flat; the predictions partition ``lake/predictions/ds=DAY`` is replaced atomically and names the
model version.
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


_MODELS: dict[tuple[str, ...], Any] = {}


def _champion_model(tracking_uri: str, uri: str, version: str, run_id: str, allow_pickled: bool) -> Any:
    """A registered version, loaded once per process: a version's model never changes (the key holds the
    tracking store and the version's run, so a store rebuilt from scratch is not confused with an old one).
    ``allow_pickled``: see ``RegisteredModel``."""
    from airloop.model.pyfunc import RegisteredModel

    key = (tracking_uri, uri, run_id)
    if key not in _MODELS:
        _MODELS.clear()  # keep one: a new champion replaces the old
        _MODELS[key] = RegisteredModel(uri, version, allow_pickled)
    return _MODELS[key]


def score_day(
    settings: Settings,
    use_case: UseCase,
    lake: Lake,
    source: DataSource,
    day: date,
    as_of: datetime,
    chunk_rows: int = 5000,
) -> dict[str, Any]:
    """Score ``day``'s scheduled events with the champion as of ``as_of``; write the predictions partition."""
    from airloop.featurestore import open_store
    from airloop.featurestore.asof import asof_lookup
    from airloop.registry import CHAMPION, open_registry

    registry = open_registry(settings, use_case)
    version = registry.version_of(CHAMPION)
    if version is None:
        raise LookupError(f"no champion of {use_case.model_name} to score with")
    model = _champion_model(
        str(settings.mlflow_tracking_uri),
        f"models:/{use_case.model_name}/{version}",
        version,
        registry.version(version).run_id,
        settings.allow_pickled_models,
    )
    lookup = asof_lookup(open_store(settings, use_case, apply=False), use_case)
    events = schedule(use_case, source, day)
    keep = [c for c in use_case.logged_columns() if c in events.columns]
    parts = []
    for start in range(0, len(events), chunk_rows):
        chunk = events.iloc[start : start + chunk_rows].reset_index(drop=True)
        features = lookup.features({c: chunk[c].to_numpy() for c in lookup.request_columns}, as_of)
        probability, label = model.score(features)
        parts.append(chunk[keep].assign(probability=probability, label=label))
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
