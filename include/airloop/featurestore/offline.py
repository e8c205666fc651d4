"""Offline side: materializing exact intervals, and point-in-time-correct historical features and training
sets (Feast historical retrieval over the lake's partitions)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

import pandas as pd

from airloop.features import TS, apply_defaults, entity_keys, event_times
from airloop.usecase import UseCase

if TYPE_CHECKING:
    from feast import FeatureStore

logger = logging.getLogger(__name__)


ROW_ID = "row_id"


def materialize_days(store: FeatureStore, use_case: UseCase, days: list[date]) -> None:
    """Materialize exactly the given days' intervals (contiguous runs of days in one call each)."""
    from airloop.intervals import DayInterval

    for first, last in _runs(sorted(days)):
        start = DayInterval(first, use_case.timezone).start
        end = DayInterval(last, use_case.timezone).end
        logger.info("materializing %s .. %s", start, end)
        store.materialize(start_date=start, end_date=end)


def _runs(days: list[date]) -> list[tuple[date, date]]:
    runs: list[tuple[date, date]] = []
    for d in days:
        if runs and (d - runs[-1][1]).days == 1:
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


def entity_frame(events: pd.DataFrame, use_case: UseCase) -> pd.DataFrame:
    """Feast entity rows for events: join keys, prediction instant, request fields, and a row id."""
    fs = use_case.features
    assert fs is not None
    out = pd.DataFrame(index=events.index)
    for entity in use_case.entities:
        out[use_case.entity_key(entity)] = entity_keys(events, use_case, entity).astype("object")
    for name, dtype in fs.request_fields.items():
        out[name] = events[name].astype(dtype if dtype != "string" else "object")
    out[TS] = event_times(events, use_case)
    out[ROW_ID] = range(len(out))
    return out.reset_index(drop=True)


def historical_features(
    store: FeatureStore, use_case: UseCase, events: pd.DataFrame, at: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Point-in-time-correct features for ``events`` (rows of the primary source), in their order.

    Each row's features are those known at its own prediction instant, or at ``at`` for all rows
    (batch scoring ahead of time: only what was known when the batch ran).
    """
    fs = use_case.features
    assert fs is not None
    entities = entity_frame(events, use_case)
    if at is not None:
        entities[TS] = at
    # Feast's offline stores identify entity rows by their join keys and timestamp (dask:
    # _drop_duplicates; duckdb/ibis: _entity_row_id), silently merging e.g. two flights of one origin in
    # the same minute. Each row's timestamp is made unique by adding its row number in
    # microseconds - far below the resolution of any feature stamp (whole minutes) - and restored after.
    exact = entities[TS].copy()
    entities[TS] = entities[TS] + pd.to_timedelta(entities[ROW_ID], unit="us")
    job = store.get_historical_features(
        entity_df=entities, features=store.get_feature_service(fs.service, allow_cache=True)
    )
    frame = job.to_df().sort_values(ROW_ID).reset_index(drop=True)
    if len(frame) != len(entities):
        raise RuntimeError(f"historical retrieval returned {len(frame)} rows for {len(entities)} events")
    frame[TS] = exact.to_numpy()
    return frame


def training_set(
    store: FeatureStore, use_case: UseCase, events: pd.DataFrame, carry: Sequence[str] = ()
) -> pd.DataFrame:
    """Features (defaults applied, missing flags) + label for the ``events`` whose outcome is known: what a
    model trains on; ``carry``: event columns kept beside them (context, slices)."""
    from airloop.labels import make_label

    labelled = make_label(events.reset_index(drop=True), use_case.label).reset_index(drop=True)
    features = apply_defaults(historical_features(store, use_case, labelled), use_case)
    for column in (use_case.label.name, f"{use_case.label.name}_status", *carry):
        if column not in features.columns:
            features[column] = labelled[column].to_numpy()
    return features
