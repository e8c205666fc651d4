"""Ingestion throughput: days/s of extract + GX validation + publish, against the extract-only floor.

Both run side by side in this process on the same days of the demo data (a fresh lake each):
- floor: the source adapter's slice of each day written to the raw zone (no checks);
- ingest: what the DAG does per day (extract, build the suites, validate all sources, publish).
Usage: python bench/bench_ingest.py [--days 31]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine

from airloop.ingest import extract_day, ingest_day
from airloop.intervals import day_range
from airloop.lake import Lake
from airloop.settings import PROJECT_ROOT
from airloop.sources import ReplaySource
from airloop.usecases import load_use_case
from airloop.validation import _batch_definition


def run(days: int) -> dict:
    use_case = load_use_case("flights")
    source = ReplaySource(PROJECT_ROOT / "include" / "data" / "nycflights13")
    span = (
        day_range(date(2013, 3, 1), date(2013, 3, days))
        if days <= 31
        else day_range(date(2013, 1, 1), date.fromordinal(date(2013, 1, 1).toordinal() + days - 1))
    )
    extract_day(use_case, source, Lake(Path(tempfile.mkdtemp())), span[0])  # warm: data read, imports
    _batch_definition()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(Path(tmp) / "floor")
        t0 = time.perf_counter()
        for d in span:
            extract_day(use_case, source, lake, d)
        results["floor"] = time.perf_counter() - t0
        lake = Lake(Path(tmp) / "ingest")
        t0 = time.perf_counter()
        statuses = [ingest_day(use_case, source, lake, d).status for d in span]
        results["ingest"] = time.perf_counter() - t0
    assert statuses.count("validated") == len(span), statuses
    return {"days": len(span), **results}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=31)
    args = parser.parse_args()
    r = run(args.days)
    print(f"## Ingestion ({r['days']} days of nycflights13, one process)\n")
    print(f"Machine: {machine()}\n")
    print("| path | seconds | days/s | vs floor |")
    print("|---|---:|---:|---:|")
    for name in ("floor", "ingest"):
        print(f"| {name} | {r[name]:.2f} | {r['days'] / r[name]:.1f} | {r[name] / r['floor']:.1f}x |")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "ingest.json").write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
