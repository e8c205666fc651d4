"""Batch inference: rows/s of the batch-scoring task beside the pyfunc alone and the raw network forward.

State: .airloop/bench (bench_training.py's ``prepare``; the champion of bench_serving.py's
``ensure_champion``). A week of flights (2013-06-24 .. 06-30, ~6.7k rows) is scored three ways, same rows,
same process:

- batch task: ``airloop.batch.score_day`` once per day, as the DAG runs it (champion lookup and load, the
  day's schedule, Feast offline point-in-time retrieval via DuckDB, pyfunc, predictions partition written);
- pyfunc on features: ``RegisteredModel.predict`` on the same days' feature frames (preprocessing + network);
- raw forward: the torch network alone on the already-preprocessed tensors of those rows.

Each is timed with torch's default intra-op threads and with one thread, interleaved (on a shared 2-core
worker the default threads wait on each other whenever another process holds a core); the table takes
the best of ``--repeats`` warm passes (raw forward: best of 4 x repeats), and the ratios are taken against
the fastest raw forward of the run. The first pass of the batch task is reported apart (the setup has
already imported the libraries; an Airflow task process also pays those imports, Feast's ~4 s among
them). A stage breakdown (the functions ``score_day`` calls, timed one by one on the same rows) says
where the time goes. The bench lake's predictions partitions of those days are rewritten, as the task
does, and checked against the pyfunc's predictions on the same features.
Usage: python bench/bench_batch.py [--first-day 2013-06-24] [--days 7] [--repeats 3]
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

BATCH = "batch task (score_day per day)"
PYFUNC = "pyfunc on features (RegisteredModel.predict)"
RAW = "raw forward (TabularNet on preprocessed tensors)"


def best_of(repeats: int, func) -> float:
    """Fastest wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--first-day", default="2013-06-24")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import logging
    import warnings

    import feast.infra.offline_stores.duckdb  # noqa: F401 - Feast's imports put "once" filters before ours

    warnings.filterwarnings("ignore")
    logging.disable(logging.INFO)
    from bench_serving import ensure_champion

    ensure_champion()
    import mlflow
    import numpy as np
    import torch
    from _machine import machine

    from airloop.batch import features_as_of, schedule, score_day
    from airloop.featurestore import open_store
    from airloop.intervals import DayInterval
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

    def batch_task() -> int:
        return sum(score_day(settings, use_case, lake, source, d, as_of[d])["rows"] for d in days)

    load = os.getloadavg()[0]  # other processes on the machine: the default torch threads suffer from them
    t0 = time.perf_counter()
    rows = batch_task()
    cold_s = time.perf_counter() - t0

    # The same rows, stage by stage (the functions score_day calls, one by one), then the model alone.
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)

    def open_model() -> RegisteredModel:
        version = ModelRegistry(settings.mlflow_tracking_uri, use_case.model_name).version_of(CHAMPION)
        return RegisteredModel(f"models:/{use_case.model_name}/{version}", version)

    model, store = open_model(), open_store(settings, use_case, apply=False)
    events = {d: schedule(use_case, source, d) for d in days}
    features = {d: features_as_of(store, use_case, events[d], as_of[d]) for d in days}
    assert sum(len(f) for f in features.values()) == rows
    scored = {d: model.predict(features[d]) for d in days}
    delay = model.model.unwrap_python_model()
    tensors = {d: [torch.from_numpy(a) for a in delay.pre.transform(features[d])] for d in days}

    def pyfunc() -> None:
        for d in days:
            model.predict(features[d])

    def forward() -> None:
        with torch.no_grad():
            for d in days:
                torch.sigmoid(delay.net(*tensors[d])).numpy()

    default_threads = torch.get_num_threads()
    seconds: dict[tuple[str, int], float] = {}
    for _ in range(args.repeats):  # thread settings interleaved, so a burst of load hits both alike
        for threads in dict.fromkeys([default_threads, 1]):
            torch.set_num_threads(threads)
            for path, func, n in ((BATCH, batch_task, 1), (PYFUNC, pyfunc, 1), (RAW, forward, 4)):
                s = best_of(n, func)
                seconds[path, threads] = min(s, seconds.get((path, threads), s))
    torch.set_num_threads(default_threads)
    stages = {
        "champion lookup + pyfunc load": best_of(args.repeats, lambda: [open_model() for _ in days]),
        "feature store open": best_of(
            args.repeats, lambda: [open_store(settings, use_case, apply=False) for _ in days]
        ),
        "schedule of the day (source extract)": best_of(
            args.repeats, lambda: [schedule(use_case, source, d) for d in days]
        ),
        "Feast point-in-time retrieval (DuckDB) + defaults": best_of(
            args.repeats, lambda: [features_as_of(store, use_case, events[d], as_of[d]) for d in days]
        ),
        "pyfunc predict (MLflow + preprocessing + network)": best_of(args.repeats, pyfunc),
        "(inside pyfunc) preprocessing (Preprocessor.transform)": best_of(
            args.repeats, lambda: [delay.pre.transform(features[d]) for d in days]
        ),
        "(inside pyfunc) network forward": best_of(max(args.repeats, 10), forward),
        "predictions partition write": best_of(
            args.repeats,
            lambda: [lake.write_partition("predictions", use_case.model_name, d, scored[d]) for d in days],
        ),
    }
    batch_task()  # leave the partitions as the task writes them; the lines scored the same rows alike
    for d in days:
        written = lake.read_partition("predictions", use_case.model_name, d.isoformat())
        np.testing.assert_allclose(written["probability"], scored[d]["probability"], rtol=1e-6)

    # The ceiling is the fastest raw forward of the run: under load the default threads' forward can be
    # many times slower than one thread's, which would flatter every ratio taken against it.
    raw_s = min(s for (path, _), s in seconds.items() if path == RAW)
    batch_s = seconds[BATCH, default_threads]
    ratio = raw_s / batch_s
    print(
        f"## Batch inference ({len(days)} days {days[0]} .. {days[-1]}, {rows:,} flights, one score_day "
        f"per day; best of {args.repeats} warm passes)\n"
    )
    print(f"Machine: {machine()}; torch {torch.__version__}; load average {load:.1f} at start\n")
    print("| path | torch threads | seconds | rows/s | % of the fastest raw forward rows/s |")
    print("|---|---:|---:|---:|---:|")
    for (path, n), s in seconds.items():
        print(f"| {path} | {n} | {s:.3f} | {rows / s:,.0f} | {100 * raw_s / s:.2f}% |")
    print(
        f"\nBatch task as the DAG runs it ({default_threads} torch threads) / fastest raw forward = "
        f"{100 * ratio:.2f}% (target >= 50%: {'met' if ratio >= 0.5 else 'NOT met'}). First pass of "
        f"the batch task {cold_s:.1f} s = {rows / cold_s:,.0f} rows/s.\n"
    )
    print(
        f"| stage of the batch task ({default_threads} torch threads; same rows, called one by one) "
        "| seconds | share of batch task |"
    )
    print("|---|---:|---:|")
    for name, s in stages.items():
        print(f"| {name} | {s:.3f} | {100 * s / batch_s:.0f}% |")
    top = sum(v for k, v in stages.items() if not k.startswith("(inside"))
    print(f"| sum of the stages (the task's pandas glue aside) | {top:.3f} | {100 * top / batch_s:.0f}% |")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "batch.json").write_text(
        json.dumps(
            {
                "days": [d.isoformat() for d in days],
                "rows": rows,
                "cold_s": cold_s,
                "paths": [
                    {"path": p, "torch_threads": n, "seconds": s, "rows_per_s": rows / s}
                    for (p, n), s in seconds.items()
                ],
                "stages_s": stages,
                "batch_over_raw": ratio,
                "load_average": load,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
