"""``airloop`` command line: the demo (``airloop.demo``), and the library's steps without Airflow.

    python -m airloop.cli demo --first-day 2013-01-01 --last-day 2013-06-30
    python -m airloop.cli ingest --first-day 2013-01-01 --last-day 2013-01-31
    python -m airloop.cli materialize --first-day 2013-01-01 --last-day 2013-01-31
    python -m airloop.cli summary --first-day 2013-01-01 --last-day 2013-06-30
    python -m airloop.cli --use-case grid_peak train --holdout-end 2014-06-01 --at 2014-06-01T00:00:00+10:00
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import date
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


def cmd_demo(args: argparse.Namespace) -> int:
    from airloop.demo import DemoPlan, run_loop
    from airloop.usecases import load_use_case

    use_case = load_use_case(load_settings().use_case)
    span = use_case.demo
    if span is None and not (args.first_day and args.last_day):
        raise SystemExit(f"use case {use_case.name} declares no demo span (UseCase.demo): give --first-day and --last-day")
    first = date.fromisoformat(args.first_day) if args.first_day else span.first_day  # type: ignore[union-attr]
    last = date.fromisoformat(args.last_day) if args.last_day else span.last_day  # type: ignore[union-attr]
    live = args.live_days or (span.live_days if span else 7)
    after = args.after_days or (span.after_days if span else 3)
    return run_loop(DemoPlan(first, last, live_days=live, after_days=after, port=args.port, timeout=args.timeout),
                    fresh=not args.keep_state)


def cmd_ingest(args: argparse.Namespace) -> int:
    """Ingest a range in this process, without Airflow (debugging, notebooks, containers)."""
    from airloop.ingest import ingest_day
    from airloop.resources import source_path
    from airloop.sources import make_source
    from airloop.usecases import load_use_case

    settings = load_settings()
    use_case = load_use_case(settings.use_case)
    lake = Lake(settings.lake)
    source = make_source(settings.source.kind, source_path(settings, use_case))
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


def cmd_materialize(args: argparse.Namespace) -> int:
    """What materialize_features does, without Airflow: compute the days' feature partitions, apply the
    definitions if they changed, materialize exactly those days into the online store."""
    import json

    from airloop.feature_pipeline import compute_days
    from airloop.featurestore import apply_if_changed, build_definitions, materialize_days
    from airloop.resources import load_resources

    res = load_resources()
    days = day_range(date.fromisoformat(args.first_day), date.fromisoformat(args.last_day))
    computed = compute_days(res.use_case, res.lake, days)
    store = res.feature_store()
    apply_if_changed(store, build_definitions(res.use_case, res.settings))
    materialize_days(store, res.use_case, [date.fromisoformat(d) for d in computed["days"]])
    _out(json.dumps(computed))
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
    parser.add_argument("--use-case", help="registered use case (default: AIRLOOP_USE_CASE, else flights)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in (("demo", cmd_demo), ("ingest", cmd_ingest), ("materialize", cmd_materialize),
                       ("summary", cmd_summary)):
        p = sub.add_parser(name)
        p.add_argument("--first-day", required=name != "demo", help="default (demo): the use case's demo span")
        p.add_argument("--last-day", required=name != "demo")
        p.set_defaults(func=func)
        if name == "demo":
            p.add_argument("--port", type=int, default=8080)
            p.add_argument("--timeout", type=float, default=1800)
            p.add_argument("--live-days", type=int, help="days of later events replayed for the first model")
            p.add_argument("--after-days", type=int, help="days replayed after the drift-triggered retrain")
            p.add_argument("--keep-state", action="store_true", help="keep the lake and MLflow of an earlier demo")
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
    if args.use_case:  # before any settings are read: every step and child process sees it
        os.environ["AIRLOOP_USE_CASE"] = args.use_case
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
