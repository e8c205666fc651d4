"""Compute feature partitions for days of the validated zone (I/O around the pure ``airloop.features``).

Interval-keyed and idempotent: day D's rows of each feature view are written to
``lake/features/<view>/ds=D/part-0.parquet`` (atomically replaced on re-run); they depend only on the
validated data of D and of the days before D.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import pandas as pd

from airloop.features import day_features, history_input_days
from airloop.lake import Lake
from airloop.usecase import UseCase

logger = logging.getLogger(__name__)


def compute_days(use_case: UseCase, lake: Lake, days: list[date]) -> dict[str, Any]:
    """Write every feature view's partition for each validated day in ``days``; skip the others.

    The primary source of all days the histories need is read once for the whole list.
    """
    fs = use_case.features
    if fs is None:
        raise ValueError(f"use case {use_case.name} declares no features")
    validated = set(lake.validated_days())
    todo = [d for d in sorted(days) if d.isoformat() in validated]
    skipped = [d.isoformat() for d in sorted(days) if d.isoformat() not in validated]
    if skipped:
        logger.warning("not validated, no features: %s", skipped)
    needed_sources = (
        {o.source for o in fs.observations} | {a.source for a in fs.attributes} | {use_case.primary_source}
    )
    history_days: set[str] = set()
    for d in todo:
        for h in fs.histories:
            history_days |= {x.isoformat() for x in history_input_days(d, h)}
    history_days &= validated
    primary = {
        ds: lake.read_partition("validated", use_case.primary_source, ds)
        for ds in sorted(history_days | {d.isoformat() for d in todo})
    }
    rows: dict[str, int] = {}
    for d in todo:
        frames = {
            s: primary[d.isoformat()]
            if s == use_case.primary_source
            else lake.read_partition("validated", s, d)
            for s in needed_sources
        }
        wanted = {x.isoformat() for h in fs.histories for x in history_input_days(d, h)}
        past = [primary[ds] for ds in sorted(wanted) if ds in primary]
        history = pd.concat(past, ignore_index=True) if past else frames[use_case.primary_source].head(0)
        for view, frame in day_features(use_case, d, frames, history).items():
            lake.write_partition("features", view, d, frame, string_columns=(frame.columns[0],))
            rows[view] = rows.get(view, 0) + len(frame)
    logger.info("features for %d day(s): %s", len(todo), rows)
    return {"days": [d.isoformat() for d in todo], "skipped": skipped, "rows": rows}
