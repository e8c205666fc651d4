"""The label rule of a use case, applied to a frame of events."""

from __future__ import annotations

import logging

import pandas as pd

from airloop.usecase import Label

logger = logging.getLogger(__name__)

UNKNOWN = "unknown"


def label_status(frame: pd.DataFrame, label: Label) -> pd.Series:
    """Outcome status per row: the first ``when_null`` status whose column is null, else the rule's
    ``positive_status``/``negative_status``, or ``unknown`` when the outcome itself is null."""
    value = frame[label.column]
    if label.rule == "above":
        positive = value > label.threshold
    elif label.rule == "below":
        positive = value < label.threshold
    elif label.rule == "true":
        positive = _truth(value)
    else:
        positive = value.astype("string").isin(label.categories or [])
    status = pd.Series(label.negative_status, index=frame.index, dtype="object")
    status[positive.fillna(False).astype(bool)] = label.positive_status
    status[value.isna() | positive.isna()] = UNKNOWN
    decided = pd.Series(False, index=frame.index)
    for rule in label.when_null:
        hit = frame[rule.column].isna() & ~decided
        status[hit] = rule.status
        decided |= hit
    return status


TRUE = {"true", "t", "yes", "y", "1"}
FALSE = {"false", "f", "no", "n", "0"}


def _truth(values: pd.Series) -> pd.Series:
    """A boolean outcome as True/False/NA: booleans as they are, numbers 1/0, text true/false/yes/no/1/0
    (any case); anything else is NA (an unknown outcome, not a negative)."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype("boolean")
    if pd.api.types.is_numeric_dtype(values):
        return values.map(lambda v: pd.NA if pd.isna(v) else v == 1 if v in (0, 1) else pd.NA).astype(
            "boolean"
        )
    text = values.astype("string").str.strip().str.lower()
    return text.map(
        lambda v: True if v in TRUE else False if v in FALSE else pd.NA, na_action="ignore"
    ).astype("boolean")


def make_label(frame: pd.DataFrame, label: Label) -> pd.DataFrame:
    """Return the rows of ``frame`` whose outcome is known, with the status column and the 0/1 label.

    Rows with an ``unknown`` outcome are left out (their count is logged): a label the rule cannot decide
    is not a negative example.
    """
    status = label_status(frame, label)
    positives = {label.positive_status} | {n.status for n in label.when_null if n.positive}
    known = (status != UNKNOWN).to_numpy()
    if not known.all():
        logger.warning(
            "label %s: %d of %d rows have no known outcome and are left out",
            label.name,
            int((~known).sum()),
            len(frame),
        )
    out = frame[known].copy()
    out[f"{label.name}_status"] = status[known]
    out[label.name] = status[known].isin(positives).astype("int8")
    return out
