"""Serving: closed-loop HTTP load from a separate process against `bentoml serve`, beside the in-process
ceiling (the same Feast online lookup + model called directly), single-row and 50-row requests.

State: .airloop/bench (prepared by bench_training.py's ``prepare``; a champion is trained there once,
quickly, and June 28-30 materialized). Requests: real flights of 2013-06-30.
Shadow evaluation's cost: the same cells for 1-row and 50-row ``/predict`` against a service without a
shadow version and one scoring another version in shadow (the champion's judged network), side by side.
Usage: python bench/bench_serving.py [--seconds 10] [--concurrency 1 8 32] [--client aiohttp|httpx]
       [--no-shadow] [--only-durability]
Durability's cost: the same /predict cells with the serving journal off (the baseline: before answered
rows were journaled), on, and on with fsync, side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))


def ensure_champion() -> None:
    from bench_training import BENCH_HOME, prepare

    os.environ["AIRLOOP_HOME"] = str(BENCH_HOME)
    prepare("2013-01-01", "2013-07-01")
    from airloop.featurestore import materialize_days, open_store
    from airloop.lake import Lake
    from airloop.registry import ModelRegistry
    from airloop.settings import load_settings
    from airloop.training import TrainingWindow, evaluate_and_decide, promote, train_and_register
    from airloop.usecases import load_use_case

    settings, use_case = load_settings(), load_use_case("flights")
    if ModelRegistry(settings.mlflow_tracking_uri, use_case.model_name).version_of("champion") is None:
        lake = Lake(settings.lake)
        window = TrainingWindow.ending(
            date(2013, 7, 1), use_case.model.train_days, use_case.model.holdout_days
        )
        trained = train_and_register(
            settings,
            use_case,
            lake,
            window,
            # The declared architecture (what serving and batch scoring cost depends on), trained 3 epochs:
            # this champion's quality is not what these benches measure (bench_training.py does).
            {"epochs": 3},
            {"airloop.triggered_by": "bench"},
            "2013-07-01T00:00:00-04:00",
        )
        promote(
            settings,
            use_case,
            evaluate_and_decide(settings, use_case, lake, window, trained["version"]),
            "bench",
            "2013-07-01T00:00:00-04:00",
        )
    materialize_days(open_store(settings, use_case), use_case, [date(2013, 6, d) for d in (28, 29, 30)])


def load(client_kind: str, port: int, endpoint: str, path: Path, clients: int, seconds: float) -> dict:
    """One closed-loop cell from a separate process (``loadgen.py``): requests, errors, rows/s, latencies."""
    out = subprocess.run(
        [
            sys.executable,
            str(HERE / "loadgen.py"),
            f"http://127.0.0.1:{port}{endpoint}",
            str(path),
            str(clients),
            str(seconds),
            client_kind,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def shadow_version(settings, use_case) -> str:
    """A second version to score in shadow: the champion's judged network, registered once."""
    from airloop.registry import ModelRegistry

    registry = ModelRegistry(settings.mlflow_tracking_uri, use_case.model_name)
    champion = registry.version_of("champion")
    for v in registry.client.search_model_versions(f"name='{use_case.model_name}'"):
        if v.tags.get("bench.shadow_of") == champion:
            return str(v.version)
    tags = registry.version(champion).tags
    uri = tags["airloop.judged_model_uri"]
    return registry.register(
        uri, tags["airloop.judged_run_id"], {"bench.shadow_of": champion}, uri.split("/")[-1]
    )


def predict_cells(args, client, port: int, tmp: Path, bodies: dict[int, list], label: str) -> list[dict]:
    """/predict with 1- and 50-row bodies at each of ``args.concurrency`` clients on a running service."""
    cells = []
    for size in (1, 50):
        path = tmp / f"bodies{size}.json"
        path.write_text(json.dumps(bodies[size]))
        client.post("/predict", json=bodies[size][0])  # warm
        for c in args.concurrency:
            cell = load(args.client, port, "/predict", path, c, args.seconds)
            cells.append({"service": label, "rows": size, "clients": c, **cell})
    return cells


def shadow_cost(args, settings, use_case, bodies: dict[int, list]) -> list[dict]:
    """The /predict cells without and with a version in shadow, each on a fresh service."""
    from airloop.registry import ModelRegistry
    from airloop_tools.service_runner import local_service

    registry = ModelRegistry(settings.mlflow_tracking_uri, use_case.model_name)
    shadow = shadow_version(settings, use_case)
    at = "2013-07-01T00:00:00-04:00"
    results = []
    try:
        for label in ("no shadow", f"v{shadow} in shadow"):
            if label == "no shadow":
                registry.clear_alias("shadow", "bench", "shadow cost: baseline", at)
            else:
                registry.move_alias("shadow", shadow, "bench", "shadow cost", at)
            with tempfile.TemporaryDirectory() as tmp, local_service(3013, Path(tmp) / "serve.log") as client:
                results += predict_cells(args, client, 3013, Path(tmp), bodies, label)
    finally:
        registry.clear_alias("shadow", "bench", "shadow cost measured", at)
    return results


def durability_cost(args, bodies: dict[int, list]) -> list[dict]:
    """The /predict cells with the journal off (answered rows wait up to ~3 s in memory: what a SIGKILL
    lost before) and on (each batch's rows written before its answers), and on with fsync, each on a fresh
    service, side by side."""
    from airloop_tools.service_runner import local_service

    results = []
    for label, env in (
        ("journal off (before)", {"AIRLOOP_SERVING_JOURNAL": "false"}),
        ("journal on", {"AIRLOOP_SERVING_JOURNAL": "true"}),
        ("journal on + fsync", {"AIRLOOP_SERVING_JOURNAL": "true", "AIRLOOP_SERVING_JOURNAL_FSYNC": "true"}),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            env = {**env, "AIRLOOP_SERVING_JOURNAL_DIR": str(Path(tmp) / "journal")}
            with local_service(3014, Path(tmp) / "serve.log", env) as client:
                results += predict_cells(args, client, 3014, Path(tmp), bodies, label)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--client",
        choices=["aiohttp", "httpx"],
        default="aiohttp",
        help="load generator's HTTP client (see bench/loadgen.py)",
    )
    parser.add_argument("--no-shadow", action="store_true", help="skip the shadow-evaluation cost cells")
    parser.add_argument(
        "--only-durability", action="store_true", help="only the journal's cost cells (off / on / fsync)"
    )
    args = parser.parse_args()
    import warnings

    warnings.filterwarnings("ignore")
    ensure_champion()
    import mlflow
    import torch
    from _machine import machine

    from airloop.featurestore import online_lookup, open_store
    from airloop.lake import Lake
    from airloop.model.pyfunc import RegisteredModel
    from airloop.settings import load_settings
    from airloop.usecases import load_use_case
    from airloop_tools.service_runner import local_service, request_rows

    settings, use_case = load_settings(), load_use_case("flights")
    flights = Lake(settings.lake).read_partition("validated", "flights", "2013-06-30")
    as_of = "2013-06-30T23:00:00+00:00"
    rows = request_rows(flights, use_case.known_before_event)
    bodies = {
        1: [{"rows": [r], "as_of": as_of} for r in rows[:400]],
        50: [{"rows": rows[i : i + 50], "as_of": as_of} for i in range(0, 400, 50)],
    }

    # in-process ceiling: the service's own lookup + model calls (one request at a time), no HTTP
    torch.set_num_threads(1)  # as the service
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    model = RegisteredModel(f"models:/{use_case.model_name}@champion")
    lookup = online_lookup(open_store(settings, use_case, apply=False), use_case)
    ceiling = {}
    when = datetime.fromisoformat(as_of).astimezone(UTC)
    for size in (1, 50):
        columns = {c: flights[c].head(size).tolist() for c in lookup.request_columns}
        served, started = 0, time.perf_counter()
        while time.perf_counter() - started < min(args.seconds, 5):
            model.score(lookup.features(columns, when), [size])
            served += size
        ceiling[size] = served / (time.perf_counter() - started)

    if args.only_durability:
        cells = durability_cost(args, bodies)
        print_cells("Durability's cost (/predict, the same cells, fresh service each)", cells)
        print(f"\nMachine: {machine()}")
        return
    results = []
    batched = [{"rows": [r]} for r in rows[:400]]  # the adaptive-batching endpoint, one row per request
    with tempfile.TemporaryDirectory() as tmp, local_service(3012, Path(tmp) / "serve.log") as client:
        for endpoint, size, payload in [
            ("/predict", 1, bodies[1]),
            ("/predict", 50, bodies[50]),
            ("/predict_rows", 1, batched),
        ]:
            path = Path(tmp) / f"bodies{endpoint[1:]}{size}.json"
            path.write_text(json.dumps(payload))
            client.post(endpoint, json=payload[0])  # warm
            for c in args.concurrency:
                cell = load(args.client, 3012, endpoint, path, c, args.seconds)
                results.append({"endpoint": endpoint, "rows": size, "clients": c, **cell})
    shadow = [] if args.no_shadow else shadow_cost(args, settings, use_case, bodies)
    durability = durability_cost(args, bodies)
    print(
        f"## Serving (HTTP, closed loop, {args.seconds:.0f} s per cell, {args.client} client; "
        "real flights of 2013-06-30)\n"
    )
    print(f"Machine: {machine()}\n")
    print(
        "| endpoint | rows/request | clients | requests | errors | rows/s | p50 ms | p95 ms | p99 ms "
        "| % of in-process rows/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['endpoint']} | {r['rows']} | {r['clients']} | {r['requests']} | {r['errors']} "
            f"| {r['rows_per_s']:,.0f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} "
            f"| {100 * r['rows_per_s'] / ceiling[r['rows']]:.0f}% |"
        )
    print(
        "\nIn-process ceiling (the service's lookup + model, one request at a time, one thread): "
        f"1-row {ceiling[1]:,.0f} rows/s, "
        f"50-row {ceiling[50]:,.0f} rows/s"
    )
    if shadow:
        print_cells("Shadow evaluation's cost (/predict, the same cells, fresh service each)", shadow)
    print_cells("Durability's cost (/predict, the same cells, fresh service each)", durability)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "serving.json").write_text(
        json.dumps(
            {"http": results, "ceiling": ceiling, "shadow": shadow, "durability": durability}, indent=2
        )
    )


def print_cells(title: str, cells: list[dict]) -> None:
    print(f"\n### {title}\n")
    print("| service | rows/request | clients | errors | rows/s | p50 ms | p95 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in cells:
        print(
            f"| {r['service']} | {r['rows']} | {r['clients']} | {r['errors']} | {r['rows_per_s']:,.0f} "
            f"| {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} |"
        )


if __name__ == "__main__":
    main()
