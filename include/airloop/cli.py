"""``airloop`` command line: each DAG's step without Airflow (the same library calls its tasks make, through
the same composition root), the registry, and the demo (``airloop_tools.demo``). ``--use-case`` selects
the declaration (default: ``AIRLOOP_USE_CASE``).

    python -m airloop.cli demo --first-day 2013-01-01 --last-day 2013-06-30
    python -m airloop.cli ingest --first-day 2013-01-01 --last-day 2013-01-31
    python -m airloop.cli materialize --first-day 2013-01-01 --last-day 2013-01-31
    python -m airloop.cli summary --first-day 2013-01-01 --last-day 2013-06-30
    python -m airloop.cli --use-case grid_peak train --holdout-end 2014-06-01 --at 2014-06-01T00:00:00+10:00
    python -m airloop.cli score --day 2013-07-08
    python -m airloop.cli drift-check
    python -m airloop.cli feedback --first-day 2013-07-01 --last-day 2013-07-07
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from airloop.intervals import day_range
from airloop.lake import Lake
from airloop.resources import load_resources
from airloop.summary import lake_summary, summary_lines

T = TypeVar("T")

logger = logging.getLogger("airloop")


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def print_summary(lake: Lake, days: list[str], primary: str) -> dict[str, Any]:
    summary = lake_summary(lake, days)
    for line in summary_lines(lake, summary, days, primary):
        _out(line)
    return summary


def _days(args: argparse.Namespace) -> list[date]:
    return day_range(date.fromisoformat(args.first_day), date.fromisoformat(args.last_day))


def cmd_demo(args: argparse.Namespace) -> int:
    from airloop_tools.demo import DemoPlan, run_loop

    use_case = load_resources().use_case
    span = use_case.demo
    if span is None and not (args.first_day and args.last_day):
        raise SystemExit(
            f"use case {use_case.name} declares no demo span (UseCase.demo): give --first-day and --last-day"
        )
    first = date.fromisoformat(args.first_day) if args.first_day else span.first_day  # type: ignore[union-attr]
    last = date.fromisoformat(args.last_day) if args.last_day else span.last_day  # type: ignore[union-attr]
    live = args.live_days or (span.live_days if span else 7)
    after = args.after_days or (span.after_days if span else 3)
    return run_loop(
        DemoPlan(first, last, live_days=live, after_days=after, port=args.port, timeout=args.timeout),
        fresh=not args.keep_state,
    )


def cmd_ingest(args: argparse.Namespace) -> int:
    """ingest_validate without Airflow: extract and validate each day; publish or quarantine it."""
    from airloop.ingest import ingest_day

    res = load_resources()
    days = _days(args)
    bad = [r for d in days if (r := ingest_day(res.use_case, res.source, res.lake, d)).status != "validated"]
    print_summary(res.lake, [d.isoformat() for d in days], res.use_case.primary_source)
    return 1 if bad else 0


def cmd_summary(args: argparse.Namespace) -> int:
    res = load_resources()
    print_summary(res.lake, [d.isoformat() for d in _days(args)], res.use_case.primary_source)
    return 0


def cmd_materialize(args: argparse.Namespace) -> int:
    """materialize_features without Airflow: compute the days' feature partitions, apply the definitions if
    they changed, materialize exactly those days into the online store."""
    from airloop.feature_pipeline import compute_days
    from airloop.featurestore import apply_if_changed, build_definitions, materialize_days

    res = load_resources()
    computed = compute_days(res.use_case, res.lake, _days(args))
    store = res.feature_store()
    apply_if_changed(store, build_definitions(res.use_case, res.settings))
    materialize_days(store, res.use_case, [date.fromisoformat(d) for d in computed["days"]])
    _out(json.dumps(computed))
    return 0


def cmd_feast_repo(args: argparse.Namespace) -> int:
    """Write the Feast CLI folder for the current settings and print its path."""
    from airloop.featurestore import write_cli_repo

    res = load_resources()
    _out(str(write_cli_repo(res.settings, res.use_case)))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """train_model without Airflow: the window's datasets, train + register, the gate, (--promote) promote."""
    from airloop.training import (
        build_datasets,
        champion_data_end,
        evaluate_and_decide,
        plan_window,
        promote,
        train_and_register,
    )

    res = load_resources()
    settings, use_case, lake = res.settings, res.use_case, res.lake
    spec = _require(use_case.model, "model", use_case.name)
    champion_end = champion_data_end(settings, use_case)
    window = plan_window(
        use_case,
        date.fromisoformat(args.holdout_end),
        champion_end,
        args.train_days or spec.train_days,
        args.holdout_days or spec.holdout_days,
    )
    who = f"cli:{os.environ.get('USER', 'unknown')}"
    lineage = {
        "airloop.triggered_by": who,
        "airloop.trigger_reason": args.reason,
        "airloop.drift_evidence": "{}",
        "airloop.champion_data_end": champion_end.isoformat() if champion_end else "",
    }
    _out(json.dumps(build_datasets(settings, use_case, lake, window)))
    trained = train_and_register(
        settings, use_case, lake, window, json.loads(args.hyperparameters), lineage, args.at
    )
    _out(json.dumps({k: trained[k] for k in ("version", "metrics", "baseline_metrics")}, indent=1))
    verdict = evaluate_and_decide(settings, use_case, lake, window, trained["version"])
    _out(f"gate: {verdict['verdict']}: {verdict['reason']}")
    if args.promote:
        _out(json.dumps(promote(settings, use_case, verdict, who, args.at)))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """batch_inference without Airflow: score a day's events with the champion as of an instant (default:
    the day's start, in the use case's timezone)."""
    from airloop.batch import score_day
    from airloop.intervals import DayInterval

    res = load_resources()
    _require(res.use_case.features, "features", res.use_case.name)
    day = date.fromisoformat(args.day)
    as_of = (
        datetime.fromisoformat(args.as_of) if args.as_of else DayInterval(day, res.use_case.timezone).start
    )
    _out(json.dumps(score_day(res.settings, res.use_case, res.lake, res.source, day, as_of, args.chunk_rows)))
    return 0


def cmd_drift_check(args: argparse.Namespace) -> int:
    """drift_monitor's check without Airflow: the live rows served since the last checked window against the
    champion's training reference; the report, and the retrain conf the DAG would trigger with."""
    from airloop.drift.monitor import check_window, cursor, pending_window, retrain_conf

    res = load_resources()
    window = pending_window(res.live_store, cursor(res.lake))
    if window is None:
        _out("no live rows since the last check: nothing to check")
        return 0
    summary = check_window(res.settings, res.use_case, res.lake, window, run_label="cli")
    decision, latest = summary["decision"], summary["latest_validated_day"]
    holdout_end = date.fromisoformat(latest) + timedelta(days=1) if latest else None
    _out(f"{decision['status']}: {decision['reason']}")
    _out(f"report: {summary['report']['html']}")
    if decision["retrain"]:
        _out(
            "retrain conf (airflow dags trigger train_model --conf ...): "
            + json.dumps(retrain_conf(summary, holdout_end))
        )
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    """live_feedback without Airflow: live metrics of the days' served predictions against their outcomes."""
    from airloop.feedback import record_day

    res = load_resources()
    for day in _days(args):
        metrics = record_day(res.lake, res.live_store, res.use_case, day)
        _out(json.dumps(metrics) if metrics else f"{day}: nothing served, or no validated outcomes yet")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """The prediction service in the foreground (``bentoml serve``) for the selected use case."""
    import subprocess
    import sys

    bentoml = os.path.join(os.path.dirname(sys.executable), "bentoml")
    return subprocess.call(
        [
            bentoml,
            "serve",
            "airloop.serving.service:PredictionService",
            "--host",
            args.host,
            "--port",
            str(args.port),
        ]
    )


def cmd_registry(args: argparse.Namespace) -> int:
    """Show the champion/challenger and the audit trail; ``--rollback REASON`` moves champion back."""
    registry = load_resources().registry
    if args.rollback:
        move = registry.rollback(f"cli:{os.environ.get('USER', 'unknown')}", args.rollback, args.at)
        _out(f"champion -> v{move.version} (was v{move.previous})")
    _out(
        f"champion: v{registry.version_of('champion')}, challenger: v{registry.version_of('challenger')}, "
        f"shadow: {'v' + shadow if (shadow := registry.version_of('shadow')) else 'none'}"
    )
    for move in registry.audit_trail():
        to = f"v{move.version}" if move.version is not None else "(removed)"
        _out(f"  {move.at}  {move.alias}: v{move.previous} -> {to}  by {move.who}: {move.why}")
    return 0


def _require(value: T | None, field: str, use_case: str) -> T:
    """A declaration section a step needs, or a clear error naming it."""
    if value is None:
        raise SystemExit(f"use case {use_case} declares no {field!r} (UseCase.{field}): this step needs it")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="airloop", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--use-case", help="registered use case (default: AIRLOOP_USE_CASE, else flights)")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func: Any, help_text: str, days: bool | None = None) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(func=func)
        if days is not None:  # True: required, False: optional
            p.add_argument("--first-day", required=days, help="YYYY-MM-DD")
            p.add_argument("--last-day", required=days, help="YYYY-MM-DD (inclusive)")
        return p

    p = command("demo", cmd_demo, "the whole loop through Airflow (make demo)", days=False)
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--live-days", type=int, help="days of later events replayed for the first model")
    p.add_argument("--after-days", type=int, help="days replayed after the drift-triggered retrain")
    p.add_argument("--keep-state", action="store_true", help="keep the lake and MLflow of an earlier demo")
    command("ingest", cmd_ingest, "ingest_validate: extract, validate, publish or quarantine days", days=True)
    command(
        "materialize", cmd_materialize, "materialize_features: feature partitions + online store", days=True
    )
    p = command("train", cmd_train, "train_model: train + evaluate (+ --promote) for a window")
    p.add_argument("--holdout-end", required=True, help="window end (exclusive), YYYY-MM-DD")
    p.add_argument("--train-days", type=int)
    p.add_argument("--holdout-days", type=int)
    p.add_argument("--hyperparameters", default="{}", help="JSON overrides")
    p.add_argument("--reason", default="manual (cli)")
    p.add_argument(
        "--at", required=True, help="timestamp recorded on alias moves, e.g. 2013-07-01T00:00:00-04:00"
    )
    p.add_argument("--promote", action="store_true")
    p = command("score", cmd_score, "batch_inference: score a day with the champion")
    p.add_argument("--day", required=True, help="YYYY-MM-DD")
    p.add_argument("--as-of", help="ISO instant the features are taken as of (default: the day's start)")
    p.add_argument("--chunk-rows", type=int, default=5000)
    command("drift-check", cmd_drift_check, "drift_monitor: check the live rows since the last check")
    command("feedback", cmd_feedback, "live_feedback: live metrics of served days with outcomes", days=True)
    p = command("serve", cmd_serve, "the BentoML prediction service (foreground)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p = command("registry", cmd_registry, "champion, challenger and the audit trail; --rollback REASON")
    p.add_argument("--rollback")
    p.add_argument("--at", default="unknown", help="timestamp recorded with a rollback")
    command("summary", cmd_summary, "what the lake holds for days", days=True)
    command("feast-repo", cmd_feast_repo, "write the Feast CLI folder (feature_store.yaml)")
    args = parser.parse_args(argv)
    if args.use_case:  # before any settings are read: every step and child process sees it
        os.environ["AIRLOOP_USE_CASE"] = args.use_case
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
