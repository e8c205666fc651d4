"""The label rule of a use case, applied to a frame of events."""

from __future__ import annotations

import pandas as pd

from airloop.usecase import Label


def label_status(frame: pd.DataFrame, label: Label) -> pd.Series:
    """Outcome status per row: ``cancelled``, ``diverted``, ``delayed`` or ``on_time``.

    cancelled: ``label.cancelled_when_null`` is null (never departed); diverted: departed but the delay
    column is null (never arrived where planned); delayed: delay > ``threshold_minutes`` (strictly).
    """
    delay = frame[label.delay_column]
    cancelled = frame[label.cancelled_when_null].isna()
    diverted = ~cancelled & delay.isna()
    delayed = ~cancelled & ~diverted & (delay > label.threshold_minutes)
    status = pd.Series("on_time", index=frame.index, dtype="object")
    status[delayed] = "delayed"
    status[diverted] = "diverted"
    status[cancelled] = "cancelled"
    return status


def make_label(frame: pd.DataFrame, label: Label) -> pd.DataFrame:
    """Return ``frame`` with the status column and the 0/1 label (positive for ``positive_statuses``)."""
    status = label_status(frame, label)
    out = frame.copy()
    out[f"{label.name}_status"] = status
    out[label.name] = status.isin(label.positive_statuses).astype("int8")
    return out
