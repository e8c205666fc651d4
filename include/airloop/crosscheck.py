"""Cross-field rules of a source (``usecase.TimeParts``, ``usecase.ClockParts``): pure functions over a
frame (the validation suite) and over one row (the request contract)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from airloop.usecase import ClockParts, CrossCheck, TimeParts


def columns_of(rule: CrossCheck) -> list[str]:
    if isinstance(rule, TimeParts):
        return [rule.timestamp, *rule.parts]
    return [rule.clock, rule.hour, rule.minute]


def agrees(frame: pd.DataFrame, rule: CrossCheck) -> pd.Series:
    """Row-wise: True where the row obeys ``rule`` or holds a null in one of its columns."""
    columns = columns_of(rule)
    checked = frame[columns].notna().all(axis=1)
    ok = pd.Series(True, index=frame.index)
    if isinstance(rule, TimeParts):
        local = pd.to_datetime(frame[rule.timestamp], utc=True, errors="coerce").dt.tz_convert(rule.timezone)
        for column, part in rule.parts.items():
            ok &= pd.to_numeric(frame[column], errors="coerce") == getattr(local.dt, part)
    else:
        clock = pd.to_numeric(frame[rule.clock], errors="coerce")
        hour = pd.to_numeric(frame[rule.hour], errors="coerce")
        minute = pd.to_numeric(frame[rule.minute], errors="coerce")
        ok &= clock == hour * 100 + minute
    return ok.fillna(False) | ~checked


def row_disagreement(row: Mapping[str, Any], rule: CrossCheck) -> str | None:
    """Why one row breaks ``rule`` (naming the fields), or None. Timestamps are aware datetimes."""
    values = [row.get(c) for c in columns_of(rule)]
    if any(v is None for v in values):
        return None
    if isinstance(rule, TimeParts):
        stamp: datetime = row[rule.timestamp]
        local = stamp.astimezone(ZoneInfo(rule.timezone))
        wrong = [c for c, part in rule.parts.items() if row[c] != getattr(local, part)]
        if wrong:
            given = ", ".join(f"{c}={row[c]}" for c in wrong)
            implied = ", ".join(f"{c}={getattr(local, rule.parts[c])}" for c in wrong)
            return (
                f"{given} disagree with {rule.timestamp} {stamp.isoformat()} ({implied} in {rule.timezone})"
            )
        return None
    assert isinstance(rule, ClockParts)
    if row[rule.clock] != row[rule.hour] * 100 + row[rule.minute]:
        return (
            f"{rule.clock}={row[rule.clock]} disagrees with {rule.hour}={row[rule.hour]}, "
            f"{rule.minute}={row[rule.minute]} ({rule.describe()})"
        )
    return None
