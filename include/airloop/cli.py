"""``airloop`` command line: the demo, and ingestion without Airflow (same library code).

    python -m airloop.cli demo --first-day 2013-01-01 --last-day 2013-06-30
    python -m airloop.cli ingest --first-day 2013-01-01 --last-day 2013-01-31
    python -m airloop.cli summary --first-day 2013-01-01 --last-day 2013-06-30
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from airloop.intervals import day_range
from airloop.lake import Lake
from airloop.settings import load_settings

logger = logging.getLogger("airloop")


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def lake_summary(lake: Lake, days: list[str]) -> dict[str, Any]:
    """What the lake holds for ``days``: validated/quarantined days, rows per source, warnings."""
    validated = [d for d in days if d in set(lake.validated_days())]
    quarantined = [d for d in days if d in set(lake.quarantined_days())]
    rows: dict[str, int] = {}
    warned = []
    for ds in validated:
        manifest = lake.manifest(ds)
        for source, n in manifest["rows"].items():
            rows[source] = rows.get(source, 0) + int(n)
        if manifest.get("warnings"):
            warned.append((ds, manifest["warnings"]))
    return {"validated": validated, "quarantined": quarantined, "missing": sorted(set(days) - set(validated) - set(quarantined)),
            "rows": rows, "warnings": warned}


def print_summary(lake: Lake, days: list[str], primary: str) -> dict[str, Any]:
    s = lake_summary(lake, days)
    _out(f"Partitions: {len(s['validated'])} days validated, {len(s['quarantined'])} quarantined, "
         f"{len(s['missing'])} not ingested (of {len(days)} days {days[0]}..{days[-1]})")
    _out(f"Rows in the validated zone: {primary} {s['rows'].get(primary, 0):,}; " + ", ".join(
        f"{k} {v:,}" for k, v in sorted(s["rows"].items()) if k != primary) + " (dimension rows counted per daily snapshot)")
    if s["warnings"]:
        _out(f"Warnings on {len(s['warnings'])} day(s) (published anyway), e.g.:")
        for ds, warnings in s["warnings"][:3]:
            _out(f"  {ds}: {warnings[0]}")
    for ds in s["quarantined"]:
        _out(f"QUARANTINED {ds}: {lake.quarantine_dir(ds) / 'REPORT.md'}")
    _out(f"Lake: {lake.root} (raw/, validated/, quarantine/)")
    return s


def serve_and_replay(use_case: Any, settings: Any, first: date, days: int) -> dict[str, Any]:
    """Start the service, send the real flights of the days after the training window through the
    HTTP API (the live traffic the drift monitor will see), stop it gracefully."""
    import pandas as pd

    from airloop.batch import schedule
    from airloop.serving.runner import local_service, replay
    from airloop.sources import make_source

    source = make_source(settings.source.kind, settings.source.path)
    events = pd.concat([schedule(use_case, source, first + timedelta(days=i)) for i in range(days)], ignore_index=True)
    _out(f"Starting the BentoML service on 127.0.0.1:3000; replaying {len(events):,} flights of "
         f"{first}..{first + timedelta(days=days - 1)} ...")
    with local_service(3000, Path(os.environ["AIRFLOW_HOME"]).parent / "serving.log") as client:
        result = replay(client, events, use_case.known_before_event)
    return {**result, "days": f"{first}..{first + timedelta(days=days - 1)}"}


def print_training(trained: dict[str, Any]) -> None:
    """Model metrics beside the baseline's, the gate's verdict and the champion."""
    t, v, p = trained["train"], trained["evaluate"], trained["promote"]
    w = t["window"]
    _out(f"Model flight_delay v{t['version']}: trained on {w['train_start']}..{w['holdout_start']} "
         f"({t['train_rows']:,} rows, {t['train_seconds']:.0f} s on {t['device']}), holdout {w['holdout_start']}.."
         f"{w['holdout_end']} (exclusive)")
    _out("  holdout      ROC AUC  PR AUC  log loss  Brier")
    for name, m in (("torch", t["metrics"]), ("baseline", t["baseline_metrics"])):
        _out(f"  {name:<11} {m['roc_auc']:.4f}   {m['pr_auc']:.4f}  {m['log_loss']:.4f}    {m['brier']:.4f}")
    _out(f"  gate: {v['verdict']} - {v['reason']}")
    _out("  behaviour: " + "; ".join(f"{b['name']} {'ok' if b['passed'] else 'FAILED'}" for b in v["behaviour"]))
    _out(f"  champion: v{p['champion']} ({'promoted' if p['promoted'] else 'kept'})")


def cmd_demo(args: argparse.Namespace) -> int:
    from airloop.airflow_runtime import local_airflow
    from airloop.usecases import load_use_case

    settings = load_settings()
    use_case = load_use_case(settings.use_case)
    lake = Lake(settings.lake)
    days = [d.isoformat() for d in day_range(date.fromisoformat(args.first_day), date.fromisoformat(args.last_day))]
    airflow_home = Path(os.environ["AIRFLOW_HOME"])
    _out(f"Airloop demo: use case '{use_case.name}', {len(days)} days {days[0]}..{days[-1]}")
    _out(f"Starting Airflow (standalone, LocalExecutor on SQLite) on 127.0.0.1:{args.port}; "
         f"log: {airflow_home / 'demo-airflow.log'}")
    started = time.monotonic()
    stages: list[tuple[str, str, str, float, dict[str, str]]] = []
    materialized: dict[str, Any] = {}
    trained: dict[str, Any] = {}
    live: dict[str, Any] = {}
    with local_airflow(port=args.port, log_path=airflow_home / "demo-airflow.log") as api:
        for dag_id in ("ingest_validate", "materialize_features", "train_model", "batch_inference"):
            api.wait_until(f"{dag_id} parsed", lambda d=dag_id: api.dag(d), 180)
            api.set_paused(dag_id, False)
        known = set(api.run_ids("materialize_features"))
        run_id = api.trigger("ingest_validate", conf={"first_day": days[0], "last_day": days[-1]})
        _out(f"Triggered ingest_validate run {run_id} through the REST API; waiting ...")
        t0 = time.monotonic()
        state = api.wait_run("ingest_validate", run_id, timeout=args.timeout)
        stages.append(("ingest_validate", run_id, state, time.monotonic() - t0, api.task_states("ingest_validate", run_id)))
        if state == "success":
            _out("Validated-zone Asset emitted; waiting for the materialize_features run it schedules ...")
            feature_run = api.wait_new_run("materialize_features", known, timeout=120)
            state = api.wait_run("materialize_features", feature_run, timeout=args.timeout)
            stages.append(("materialize_features", feature_run, state, time.monotonic() - t0 - stages[0][3],
                           api.task_states("materialize_features", feature_run)))
            if state == "success":
                materialized = api.xcom("materialize_features", feature_run, "materialize")
                holdout_end = (date.fromisoformat(days[-1]) + timedelta(days=1)).isoformat()
                train_run = api.trigger("train_model", conf={"holdout_end": holdout_end, "reason": "demo"})
                _out(f"Triggered train_model run {train_run} (window ending {holdout_end}); waiting ...")
                t1 = time.monotonic()
                state = api.wait_run("train_model", train_run, timeout=args.timeout)
                stages.append(("train_model", train_run, state, time.monotonic() - t1,
                               api.task_states("train_model", train_run)))
                if state == "success":
                    trained = {"train": api.xcom("train_model", train_run, "train"),
                               "evaluate": api.xcom("train_model", train_run, "evaluate"),
                               "promote": api.xcom("train_model", train_run, "promote")}
                    live = serve_and_replay(use_case, settings, date.fromisoformat(holdout_end), args.replay_days)
                    batch_run = api.trigger("batch_inference", conf={"day": holdout_end})
                    api.set_paused("batch_inference", False)
                    t2 = time.monotonic()
                    state = api.wait_run("batch_inference", batch_run, timeout=args.timeout)
                    stages.append(("batch_inference", batch_run, state, time.monotonic() - t2,
                                   api.task_states("batch_inference", batch_run)))
                    if state == "success":
                        live["batch"] = api.xcom("batch_inference", batch_run, "score")
    _out()
    _out(f"=== Airloop demo summary ({time.monotonic() - started:.0f} s in all) ===")
    for dag_id, rid, st, secs, tasks in stages:
        _out(f"Airflow run {dag_id}/{rid}: {st} in {secs:.0f} s "
             f"({sum(1 for s in tasks.values() if s == 'success')}/{len(tasks)} task instances succeeded)")
    print_summary(lake, days, use_case.primary_source)
    if materialized:
        _out(f"Feature store: {materialized['rows_total']:,} feature rows of {len(materialized['days'])} days "
             f"materialized to the online store (" + ", ".join(f"{k} {v:,}" for k, v in materialized["rows"].items()) + ")")
    if trained:
        print_training(trained)
    if live:
        _out(f"Serving: {live['rows']:,} real flights of {live['days']} replayed through POST /predict in "
             f"{live['requests']} requests ({live['errors']} errors, model "
             f"{', '.join('v' + v for v in live['versions']) or 'none'}, "
             f"predicted delay rate {live['predicted_delay_rate']:.1%}); live log: {settings.lake / 'live'}")
    if live.get("batch"):
        b = live["batch"]
        _out(f"Batch inference: {b['rows']:,} flights of {b['day']} scored with v{b['model_version']} "
             f"(predicted delay rate {b['delay_rate']:.1%}): {settings.lake / 'predictions'}")
    _out("Airflow UI: `make airflow`, then http://127.0.0.1:8080 (user admin, password in "
         f"{airflow_home / 'simple_auth_manager_passwords.json'})")
    return 0 if all(st == "success" for _, _, st, _, _ in stages) and len(stages) == 4 else 1


def cmd_ingest(args: argparse.Namespace) -> int:
    """Ingest a range in this process, without Airflow (debugging, notebooks, containers)."""
    from airloop.ingest import ingest_day
    from airloop.sources import make_source
    from airloop.usecases import load_use_case

    settings = load_settings()
    use_case = load_use_case(settings.use_case)
    lake = Lake(settings.lake)
    source = make_source(settings.source.kind, settings.source.path)
    days = day_range(date.fromisoformat(args.first_day), date.fromisoformat(args.last_day))
    bad = [r for d in days if (r := ingest_day(use_case, source, lake, d)).status != "validated"]
    print_summary(lake, [d.isoformat() for d in days], use_case.primary_source)
    return 1 if bad else 0


def cmd_summary(args: argparse.Namespace) -> int:
    from airloop.usecases import load_use_case

    settings = load_settings()
    days = [d.isoformat() for d in day_range(date.fromisoformat(args.first_day), date.fromisoformat(args.last_day))]
    print_summary(Lake(settings.lake), days, load_use_case(settings.use_case).primary_source)
    return 0


def cmd_feast_repo(args: argparse.Namespace) -> int:
    """Write the Feast CLI folder for the current settings and print its path."""
    from airloop.featurestore import write_cli_repo
    from airloop.usecases import load_use_case

    settings = load_settings()
    _out(str(write_cli_repo(settings, load_use_case(settings.use_case))))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train, evaluate and (if the gate allows) promote, without Airflow: the same library calls."""
    import json

    from airloop.training import TrainingWindow, build_datasets, evaluate_and_decide, promote, train_and_register
    from airloop.usecases import load_use_case

    settings = load_settings()
    use_case = load_use_case(settings.use_case)
    assert use_case.model is not None
    lake = Lake(settings.lake)
    window = TrainingWindow.ending(date.fromisoformat(args.holdout_end), args.train_days or use_case.model.train_days,
                                   args.holdout_days or use_case.model.holdout_days)
    who = f"cli:{os.environ.get('USER', 'unknown')}"
    lineage = {"airloop.triggered_by": who, "airloop.trigger_reason": args.reason, "airloop.drift_evidence": "{}"}
    _out(json.dumps(build_datasets(settings, use_case, lake, window)))
    trained = train_and_register(settings, use_case, lake, window, json.loads(args.hyperparameters), lineage, args.at)
    _out(json.dumps({k: trained[k] for k in ("version", "metrics", "baseline_metrics")}, indent=1))
    verdict = evaluate_and_decide(settings, use_case, lake, window, trained["version"])
    _out(f"gate: {verdict['verdict']}: {verdict['reason']}")
    if args.promote:
        _out(json.dumps(promote(settings, use_case, verdict, who, args.at)))
    return 0


def cmd_registry(args: argparse.Namespace) -> int:
    """Show the champion/challenger and the audit trail; ``--rollback REASON`` moves champion back."""
    from airloop.registry import ModelRegistry
    from airloop.usecases import load_use_case

    settings = load_settings()
    registry = ModelRegistry(settings.mlflow_tracking_uri, load_use_case(settings.use_case).model_name)
    if args.rollback:
        move = registry.rollback(f"cli:{os.environ.get('USER', 'unknown')}", args.rollback, args.at)
        _out(f"champion -> v{move.version} (was v{move.previous})")
    _out(f"champion: v{registry.version_of('champion')}, challenger: v{registry.version_of('challenger')}")
    for move in registry.audit_trail():
        _out(f"  {move.at}  {move.alias}: v{move.previous} -> v{move.version}  by {move.who}: {move.why}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="airloop", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in (("demo", cmd_demo), ("ingest", cmd_ingest), ("summary", cmd_summary)):
        p = sub.add_parser(name)
        p.add_argument("--first-day", required=True)
        p.add_argument("--last-day", required=True)
        p.set_defaults(func=func)
        if name == "demo":
            p.add_argument("--port", type=int, default=8080)
            p.add_argument("--timeout", type=float, default=1800)
            p.add_argument("--replay-days", type=int, default=2, help="days of later flights sent as live traffic")
    sub.add_parser("feast-repo", help="write the Feast CLI folder (feature_store.yaml)").set_defaults(
        func=cmd_feast_repo)
    p = sub.add_parser("train", help="train + evaluate (+ --promote) the model for a window, without Airflow")
    p.add_argument("--holdout-end", required=True, help="window end (exclusive), YYYY-MM-DD")
    p.add_argument("--train-days", type=int)
    p.add_argument("--holdout-days", type=int)
    p.add_argument("--hyperparameters", default="{}", help="JSON overrides")
    p.add_argument("--reason", default="manual (cli)")
    p.add_argument("--at", required=True, help="timestamp recorded on alias moves, e.g. 2013-07-01T00:00:00-04:00")
    p.add_argument("--promote", action="store_true")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("registry", help="champion, challenger and the audit trail; --rollback REASON")
    p.add_argument("--rollback")
    p.add_argument("--at", default="unknown", help="timestamp recorded with a rollback")
    p.set_defaults(func=cmd_registry)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
