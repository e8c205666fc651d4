"""Feature computation from the validated zone: pure functions of frames, one data interval at a time.

Every feature row carries ``event_timestamp``: the instant from which the value is known. Feast's
point-in-time join then gives an event at time t the latest row stamped at or before t, so a value can
never contain information from after the event - provided each row's inputs precede its stamp, which
these functions guarantee (and ``tests/unit/test_features.py`` proves on hand-made timelines).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from airloop.intervals import DayInterval
from airloop.usecase import AttributeFeatures, HistoryFeatures, ObservationFeatures, UseCase

TS = "event_timestamp"


def key_string(value: object) -> str | None:
    """A join-key value as the string the feature store keys on: an integer (also an integral float, as an
    int column with a null reads, and a boolean as 0/1) without a decimal point, anything else as ``str``;
    a null (None, NaN, NA, NaT) is None. The serving path calls it per request value."""
    if (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float | np.floating) and value != value)
    ):
        return None
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def key_strings(values: pd.Series) -> pd.Series:
    """``key_string`` of every value, as an object Series (null stays None): vectorized for integer and
    string columns (the common cases), value by value otherwise - one rule, one result, online and offline."""
    if pd.api.types.is_integer_dtype(values) and not values.isna().any():
        return values.astype("int64").astype(str).astype(object)
    if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
        if all(isinstance(v, str) for v in values.dropna()):
            return values.astype(object).where(values.notna(), None)
    return values.map(key_string, na_action="ignore").astype(object).where(values.notna(), None)


def entity_keys(frame: pd.DataFrame, use_case: UseCase, entity: str) -> pd.Series:
    """The entity's join key per row, a string: its column, or its columns joined with '-' (route =
    'EWR-IAH'; an integer composite key (1, 17) = '1-17')."""
    columns = use_case.entities[entity]
    joined = key_strings(frame[columns[0]])
    for column in columns[1:]:
        joined = joined + "-" + key_strings(frame[column])
    return joined


def event_times(frame: pd.DataFrame, use_case: UseCase) -> pd.Series:
    """Prediction instant per event (UTC): the declared time column plus its minutes column."""
    fs = use_case.features
    assert fs is not None
    stamps = pd.to_datetime(frame[fs.event_time_column], utc=True)
    if fs.event_time_minutes_column:
        stamps = stamps + pd.to_timedelta(frame[fs.event_time_minutes_column].astype("int64"), unit="m")
    return stamps


def observation_features(
    frame: pd.DataFrame, spec: ObservationFeatures, use_case: UseCase, timestamp: str
) -> pd.DataFrame:
    """One row per observation, stamped at its own time (an observation is known once it is made)."""
    key = use_case.entity_key(spec.entity)
    out = pd.DataFrame({key: entity_keys(frame, use_case, spec.entity)})
    for column in spec.columns:
        out[column] = frame[column].astype("float64")
    out[TS] = pd.to_datetime(frame[timestamp], utc=True)
    return out.reset_index(drop=True)


def known_outcomes(events: pd.DataFrame, spec: HistoryFeatures, use_case: UseCase) -> pd.DataFrame:
    """Events whose ``spec.measure`` is known, with the instant it became known (see ``HistoryFeatures``).

    Events without the measure (e.g. a cancelled flight has no departure delay) are left out.
    Columns: key, known (UTC instant), value.
    """
    happened = events[events[spec.measure].notna()]
    value = happened[spec.measure].astype("float64")
    known = event_times(happened, use_case) + pd.Timedelta(minutes=spec.known_after_minutes)
    if spec.measure_is_minutes_late:
        known = known + pd.to_timedelta(value, unit="m")
    return pd.DataFrame(
        {
            "key": entity_keys(happened, use_case, spec.entity).to_numpy(),
            "known": known.to_numpy(),
            "value": value.to_numpy(),
        }
    )


def history_snapshot(
    events: pd.DataFrame, spec: HistoryFeatures, use_case: UseCase, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Trailing-window statistics per entity known at ``as_of`` (a tz-aware instant).

    ``events`` come from ``known_outcomes``. Uses only outcomes with ``known < as_of`` (strictly) and
    ``known >= as_of - window``. Per window: share above ``spec.above``, mean, count. Entities without
    any event in the longest window get no row: the serving path treats them as unknown (declared
    default + flag).
    """
    key = use_case.entity_key(spec.entity)
    longest = max(spec.windows_days)
    recent = events[
        (events["known"] < as_of)
        & (events["known"] >= as_of - pd.Timedelta(days=longest))
        & events["key"].notna()
    ]
    out = pd.DataFrame({key: pd.Series(sorted(recent["key"].unique()), dtype="object")})
    for w in spec.windows_days:
        window = recent[recent["known"] >= as_of - pd.Timedelta(days=w)]
        grouped = window.assign(high=(window["value"] > spec.above).astype("float64")).groupby("key")
        share, mean, count = (
            f"{spec.entity}_{stat}_{w}d" for stat in (spec.share_name, spec.mean_name, spec.count_name)
        )
        stats = pd.DataFrame(
            {
                share: grouped["high"].mean(),
                mean: grouped["value"].mean(),
                count: grouped["value"].size().astype("float64"),
            }
        )
        out = out.merge(stats, left_on=key, right_index=True, how="left")
        out[count] = out[count].fillna(0.0)
    out[TS] = as_of
    return out.reset_index(drop=True)


def attribute_features(
    dimension: pd.DataFrame,
    keys_seen: pd.Series,
    spec: AttributeFeatures,
    use_case: UseCase,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """Attributes of the entities seen in the interval, from that interval's snapshot, stamped ``as_of``."""
    key = use_case.entity_key(spec.entity)
    wanted = set(keys_seen.dropna().unique())
    rows = dimension[entity_keys(dimension, use_case, spec.entity).isin(wanted)]
    out = pd.DataFrame({key: entity_keys(rows, use_case, spec.entity)})
    for column in spec.columns:
        out[spec.rename.get(column, column)] = rows[column].astype("float64")
    out[TS] = as_of
    return out.drop_duplicates(subset=[key]).reset_index(drop=True)


def history_input_days(day: date, spec: HistoryFeatures) -> list[date]:
    """Scheduled days whose events can have happened inside the windows before ``day`` starts.

    One extra day: an event late on a day can have its outcome known after midnight.
    """
    longest = max(spec.windows_days) + 1 + int(spec.known_after_minutes // (24 * 60))
    return [day - timedelta(days=i) for i in range(longest, 0, -1)]


def day_features(
    use_case: UseCase, day: date, frames: dict[str, pd.DataFrame], history: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """All feature-view rows of one interval.

    ``frames``: the validated sources of ``day``; ``history``: validated primary-source events of the
    days before (``history_input_days``), possibly fewer where days are missing.
    """
    fs = use_case.features
    assert fs is not None
    as_of = pd.Timestamp(DayInterval(day, use_case.timezone).start).tz_convert("UTC")
    primary = frames[use_case.primary_source]
    out: dict[str, pd.DataFrame] = {}
    for obs in fs.observations:
        source = use_case.source(obs.source)
        out[obs.name] = observation_features(frames[obs.source], obs, use_case, source.event_timestamp or "")
    for hist in fs.histories:
        out[hist.name] = history_snapshot(known_outcomes(history, hist, use_case), hist, use_case, as_of)
    for attr in fs.attributes:
        seen = entity_keys(primary, use_case, attr.entity)
        out[attr.name] = attribute_features(frames[attr.source], seen, attr, use_case, as_of)
    return out


def apply_defaults(frame: pd.DataFrame, use_case: UseCase) -> pd.DataFrame:
    """Fill missing feature values with the declared defaults; add ``<view>__missing`` flags.

    Used on both the training frame and the online response, so the model sees the same substitutes.
    (On the serving path: one fillna and one concat, not a column-by-column loop.)
    """
    fs = use_case.features
    assert fs is not None
    groups = {g.name: _group_features(g) for g in fs.groups}
    groups["request"] = list(fs.request_schema)
    flags = {}
    for name, columns in groups.items():
        present = [c for c in columns if c in frame.columns]
        if present:
            flags[f"{name}__missing"] = frame[present].isna().any(axis=1).astype("int8")
    fill = {c: v for c, v in fs.defaults.items() if c in frame.columns and frame[c].isna().any()}
    out = frame.astype({c: "float64" for c in fill}).fillna(fill) if fill else frame.copy()
    return pd.concat(
        [out.drop(columns=[c for c in flags if c in out.columns]), pd.DataFrame(flags, index=frame.index)],
        axis=1,
    )


def _group_features(group: ObservationFeatures | HistoryFeatures | AttributeFeatures) -> list[str]:
    if isinstance(group, HistoryFeatures):
        return group.feature_names()
    if isinstance(group, AttributeFeatures):
        return [group.rename.get(c, c) for c in group.columns]
    return list(group.columns)


def feature_columns(use_case: UseCase) -> list[str]:
    """Every feature a model of this use case can see (the FeatureService's features)."""
    fs = use_case.features
    assert fs is not None
    columns: list[str] = []
    for group in fs.groups:
        columns += _group_features(group)
    return columns + list(fs.request_schema)
