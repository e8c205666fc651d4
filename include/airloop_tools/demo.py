"""``make demo``: the whole closed loop, unattended, on embedded defaults, through Airflow's REST API.

1. ingest + validate the history (``ingest_validate``, one ranged run) -> the validated-zone Asset
   schedules ``materialize_features`` (Feast) and ``live_feedback``;
2. ``train_model`` trains and promotes v1 (window ending the day after the history);
3. the BentoML service starts and the real events of the following days are sent through
   ``POST /predict`` as live traffic (logged for the monitor);
4. their outcomes land: ``ingest_validate`` for those days (-> features, live accuracy of v1);
5. ``drift_monitor`` (continuous, sensor-driven) is switched on: its sensor finds the new live rows, the
   check finds drift against v1's training reference and triggers ``train_model`` with the evidence;
   v2's recipe is judged on the days v1 never saw, shipped trained through the newest labelled day and
   promoted if the gate allows (else the reason is recorded);
6. the service hot-swaps to the champion; more days are replayed and ingested (live accuracy after);
7. ``batch_inference`` scores the next day; a summary of every step is printed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airloop.intervals import day_range
from airloop.lake import Lake

if TYPE_CHECKING:
    from airloop.usecase import UseCase

logger = logging.getLogger(__name__)

LOOP_DAGS = (
    "ingest_validate",
    "materialize_features",
    "live_feedback",
    "train_model",
    "drift_monitor",
    "batch_inference",
)


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class DemoPlan:
    first_day: date
    last_day: date
    """The history ingested before the first model (its training window ends the day after)."""
    live_days: int = 7
    """Days of later events replayed as live traffic for v1, then ingested (their outcomes)."""
    after_days: int = 3
    """Days replayed after the drift-triggered retrain (served by the champion then), then ingested."""
    port: int = 8080
    service_port: int = 3000
    timeout: float = 1800
    train_conf: dict[str, Any] = field(default_factory=dict)
    """Extra ``train_model`` conf for both trainings (e.g. a small model for a shortened loop)."""

    @property
    def live_first(self) -> date:
        return self.last_day + timedelta(days=1)

    @property
    def after_first(self) -> date:
        return self.live_first + timedelta(days=self.live_days)

    @property
    def batch_day(self) -> date:
        return self.after_first + timedelta(days=self.after_days)


@dataclass
class Stage:
    dag_id: str
    run_id: str
    state: str
    seconds: float
    tasks: dict[str, str]


class Loop:
    """Runs the steps against a live Airflow (``AirflowREST``) and keeps what the summary reports."""

    def __init__(self, api: Any, plan: DemoPlan) -> None:
        self.api, self.plan = api, plan
        self.stages: list[Stage] = []
        self.results: dict[str, Any] = {}

    def _finish(self, dag_id: str, run_id: str, started: float) -> str:
        state = self.api.wait_run(dag_id, run_id, timeout=self.plan.timeout)
        self.stages.append(
            Stage(dag_id, run_id, state, time.monotonic() - started, self.api.task_states(dag_id, run_id))
        )
        if state != "success":
            raise RuntimeError(f"{dag_id} run {run_id} ended {state}; see the Airflow UI (`make airflow`)")
        return run_id

    def run(self, dag_id: str, conf: dict[str, Any]) -> str:
        started = time.monotonic()
        run_id = self.api.trigger(dag_id, conf=conf)
        out(f"  {dag_id} run {run_id} triggered; waiting ...")
        return self._finish(dag_id, run_id, started)

    def ingest(self, first: date, last: date) -> None:
        """One ranged ingestion run, then the two runs its validated-zone Asset event schedules."""
        known = {d: set(self.api.run_ids(d)) for d in ("materialize_features", "live_feedback")}
        self.run("ingest_validate", {"first_day": first.isoformat(), "last_day": last.isoformat()})
        for dag_id in ("materialize_features", "live_feedback"):
            started = time.monotonic()
            run_id = self.api.wait_new_run(dag_id, known[dag_id], timeout=180)
            out(f"  {dag_id} run {run_id} (scheduled by the validated-zone Asset); waiting ...")
            self._finish(dag_id, run_id, started)
            if dag_id == "materialize_features":
                self.results.setdefault("materialized", []).append(
                    self.api.xcom(dag_id, run_id, "materialize")
                )
            else:
                self.results.setdefault("judged", []).append(self.api.xcom(dag_id, run_id, "judge_shadow"))

    def train(self, run_id: str) -> dict[str, Any]:
        return {task: self.api.xcom("train_model", run_id, task) for task in ("train", "evaluate", "promote")}


def replay_days(client: Any, res: Any, first: date, days: int) -> dict[str, Any]:
    """Send the real events of ``days`` days from ``first`` through ``POST /predict``, in time order."""
    import pandas as pd

    from airloop.batch import schedule
    from airloop_tools.service_runner import replay

    events = pd.concat(
        [schedule(res.use_case, res.source, d) for d in day_range(first, first + timedelta(days=days - 1))],
        ignore_index=True,
    )
    result = replay(client, events, res.use_case)
    return {**result, "days": f"{first}..{first + timedelta(days=days - 1)}"}


def unfinished_runs(api: Any, dag_id: str) -> list[str]:
    runs = api.request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 1000})["dag_runs"]
    return [r["dag_run_id"] for r in runs if r["state"] in ("queued", "running")]


def next_run_of(api: Any, known: set[str], dag_id: str = "drift_monitor") -> str | None:
    """The oldest run not in ``known`` (a continuous DAG may have started several meanwhile)."""
    new = [r for r in api.run_ids(dag_id) if r not in known]  # newest first
    return new[-1] if new else None


def served_version(client: Any, metric: str = "airloop_model_info") -> str | None:
    """The model version the service reports in its Prometheus metrics (``airloop_shadow_info``: the
    version it scores in shadow)."""
    text = client.get("/metrics").text
    versions = re.findall(metric + r'\{[^}]*version="([^"]+)"[^}]*\}\s+1(?:\.0)?\b', text)
    return versions[-1] if versions else None


def fresh_state(settings: Any) -> None:
    """Start the loop from nothing: remove the lake, the MLflow store and the Feast state of ``home``
    (Airflow keeps its run history, so ``make airflow`` still shows earlier demos)."""
    import shutil

    for folder in (
        settings.lake,
        settings.home / "mlflow",
        settings.home / "feast",
        settings.home / "feature_repo",
    ):
        if folder.exists():
            out(f"  removing the previous demo's {folder}")
            shutil.rmtree(folder)


def run_loop(plan: DemoPlan, fresh: bool = True) -> int:
    from airloop.registry import CHAMPION, SHADOW
    from airloop.resources import load_resources
    from airloop_tools.airflow_runtime import local_airflow
    from airloop_tools.service_runner import local_service

    os.environ.setdefault("AIRLOOP_DRIFT_POLL_SECONDS", "5")  # Airflow inherits it: the sensor polls often
    # The demo compresses weeks of live traffic into `live_days`: its drift check does not wait for the
    # share of new data a production retrain waits for (the use case's drift.min_new_share).
    os.environ.setdefault("AIRLOOP_DRIFT_OVERRIDES", '{"min_new_share": 0}')
    res = load_resources()
    settings, use_case = res.settings, res.use_case
    if fresh and settings.env == "local":
        fresh_state(settings)
    lake, registry = res.lake, res.registry
    airflow_home = Path(os.environ["AIRFLOW_HOME"])
    started = time.monotonic()
    out(
        f"Airloop demo: use case '{use_case.name}'; history {plan.first_day}..{plan.last_day}, live traffic "
        f"{plan.live_first}..{plan.batch_day - timedelta(days=1)}"
    )
    out(
        "Starting Airflow (standalone: LocalExecutor on SQLite, scheduler, triggerer) on "
        f"127.0.0.1:{plan.port}; log: {airflow_home / 'demo-airflow.log'}"
    )
    failure = None
    with local_airflow(port=plan.port, log_path=airflow_home / "demo-airflow.log") as api:
        loop = Loop(api, plan)
        try:
            for dag_id in LOOP_DAGS:
                api.wait_until(f"{dag_id} parsed", lambda d=dag_id: api.dag(d), 180)
                if dag_id != "drift_monitor":
                    api.set_paused(dag_id, False)
            api.set_paused("drift_monitor", True)
            if fresh:  # a monitor run left waiting by an earlier demo would watch this one's traffic
                for run_id in unfinished_runs(api, "drift_monitor"):
                    out(f"  marking drift_monitor run {run_id}, left waiting by an earlier demo, failed")
                    api.request("PATCH", f"/dags/drift_monitor/dagRuns/{run_id}", json={"state": "failed"})
            out(f"1. Ingest + validate {plan.first_day}..{plan.last_day}")
            loop.ingest(plan.first_day, plan.last_day)
            out("2. Train the first model")
            holdout_end = plan.live_first.isoformat()
            first = loop.run(
                "train_model", {"holdout_end": holdout_end, "reason": "demo: first model", **plan.train_conf}
            )
            loop.results["v1"] = loop.train(first)
            env = {"AIRLOOP_SERVING_WATCH_SECONDS": "3"}
            with local_service(plan.service_port, airflow_home.parent / "serving.log", env=env) as client:
                out(
                    f"3. Serving on 127.0.0.1:{plan.service_port}; "
                    f"replaying {plan.live_days} days of real events"
                )
                loop.results["live_before"] = replay_days(client, res, plan.live_first, plan.live_days)
                out(
                    "4. Their outcomes land: "
                    f"ingest {plan.live_first}..{plan.after_first - timedelta(days=1)}"
                )
                loop.ingest(plan.live_first, plan.after_first - timedelta(days=1))
                out("5. drift_monitor on: its sensor waits for new live rows, then checks them")
                known = set(api.run_ids("drift_monitor"))
                api.set_paused("drift_monitor", False)
                t0 = time.monotonic()
                drift_run = api.wait_new_run("drift_monitor", known, timeout=180)
                loop._finish("drift_monitor", drift_run, t0)
                check = api.xcom("drift_monitor", drift_run, "check_drift")
                loop.results["drift"] = check
                if check["retrain"]:
                    out(f"  drift: {check['reason']}")
                    train_run = f"drift__{drift_run}"
                    out(f"  train_model run {train_run} (triggered by drift_monitor); waiting ...")
                    loop._finish(
                        "train_model",
                        api.wait_until(
                            "the triggered run",
                            lambda: train_run in api.run_ids("train_model") and train_run,
                            120,
                        ),
                        time.monotonic(),
                    )
                    loop.results["v2"] = loop.train(train_run)
                champion, shadow = registry.version_of(CHAMPION), registry.version_of(SHADOW)
                t0 = time.monotonic()
                try:
                    api.wait_until(
                        f"the service serving v{champion}" + (f" with v{shadow} in shadow" if shadow else ""),
                        lambda: (
                            served_version(client) == champion
                            and served_version(client, "airloop_shadow_info") == shadow
                        ),
                        60,
                    )
                    loop.results["served_champion"] = {"version": champion, "seconds": time.monotonic() - t0}
                except TimeoutError:  # /metrics did not show it; the replay below reports the versions served
                    out(f"  (the service's /metrics did not report v{champion} within 60 s)")
                out(
                    f"6. The service serves v{champion}"
                    + (f" (v{shadow} scored in shadow, never answered)" if shadow else "")
                    + f"; replaying {plan.after_days} more days"
                )
                known |= {drift_run}
                loop.results["live_after"] = replay_days(client, res, plan.after_first, plan.after_days)
            loop.ingest(plan.after_first, plan.batch_day - timedelta(days=1))
            try:  # the next continuous run checks the post-retrain traffic (cooldown applies)
                next_run = api.wait_until("the next drift_monitor run", lambda: next_run_of(api, known), 60)
                t0 = time.monotonic()
                loop._finish("drift_monitor", next_run, t0)
                loop.results["drift_after"] = api.xcom("drift_monitor", next_run, "check_drift")
            except (TimeoutError, RuntimeError) as err:
                out(f"  (second drift check not finished: {err})")
            api.set_paused("drift_monitor", True)
            out(f"7. Batch inference for {plan.batch_day}")
            batch = loop.run("batch_inference", {"day": plan.batch_day.isoformat()})
            loop.results["batch"] = api.xcom("batch_inference", batch, "score")
        except Exception as err:  # report what ran, then fail
            failure = err
            logger.exception("demo step failed")
    print_summary(loop, plan, settings, use_case, lake, airflow_home, time.monotonic() - started)
    if failure is not None:
        out(f"DEMO FAILED: {failure}")
        return 1
    return 0


def _live_accuracy(lake: Lake, use_case: UseCase, first: date, days: int) -> dict[str, dict[str, Any]]:
    """Live accuracy (rows-weighted) and ROC AUC per model version over ``days`` days, the AUC measured as
    the use case declares (``ModelSpec.live_measure``, through the performance trigger's own function)."""
    from airloop.drift.monitor import live_measure, live_performance

    entries: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for d in day_range(first, first + timedelta(days=days - 1)):
        path = lake.root / "monitoring" / "live_metrics" / f"ds={d.isoformat()}.json"
        if path.exists():
            for version, m in json.loads(path.read_text())["by_version"].items():
                entries.setdefault(version, []).append((d.isoformat(), m))
    result = {}
    for version, days_of in entries.items():
        rows = sum(m["rows"] for _, m in days_of)
        if rows:
            auc = live_performance(days_of, None, use_case.drift, live_measure(use_case)).live_auc
            result[version] = {
                "rows": rows,
                "accuracy": sum(m["accuracy"] * m["rows"] for _, m in days_of) / rows,
                "roc_auc": float("nan") if auc is None else auc,
                "measure": live_measure(use_case),
            }
    return result


def _shadow_live(lake: Lake, first: date, days: int) -> list[dict[str, Any]]:
    """Both versions' live ROC AUC on the same events (the champion answered, the shadow was logged),
    pooled over ``days`` days from the paired evidence ``live_feedback`` kept."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    paths = [
        lake.root / "monitoring" / "shadow" / f"ds={d}.parquet"
        for d in day_range(first, first + timedelta(days=days - 1))
    ]
    frames = [pd.read_parquet(path) for path in paths if path.exists()]
    if not frames:
        return []
    rows = pd.concat(frames, ignore_index=True)
    pooled = []
    for (champion, shadow), part in rows.groupby(["model_version", "shadow_version"]):
        if 0 < part["y"].sum() < len(part):
            pooled.append(
                {
                    "champion": champion,
                    "shadow": shadow,
                    "rows": len(part),
                    "champion_roc_auc": roc_auc_score(part["y"], part["probability"]),
                    "shadow_roc_auc": roc_auc_score(part["y"], part["shadow_probability"]),
                }
            )
    return pooled


def print_model(name: str, trained: dict[str, Any], model_name: str) -> None:
    t, v, p = trained["train"], trained["evaluate"], trained["promote"]
    w = t["window"]
    out(
        f"Model {name} = {model_name} v{t['version']}: judged recipe trained on {w['train_start']}.."
        f"{w['holdout_start']} ({t['train_rows']:,} rows), holdout {w['holdout_start']}..{w['holdout_end']} "
        f"(exclusive); the version ships trained through {t.get('data_end', w['holdout_start'])} (exclusive, "
        f"{t.get('fit_rows', t['train_rows']):,} rows; {t['train_seconds']:.0f} s training on {t['device']})"
    )
    out("  holdout      ROC AUC  PR AUC  log loss  Brier  (the judged recipe)")
    for label, m in (("torch", t["metrics"]), ("baseline", t["baseline_metrics"])):
        out(f"  {label:<11} {m['roc_auc']:.4f}   {m['pr_auc']:.4f}  {m['log_loss']:.4f}    {m['brier']:.4f}")
    out(f"  gate: {v['verdict']} - {v['reason']}")
    out(
        "  behaviour: "
        + "; ".join(f"{b['name']} {'ok' if b['passed'] else 'FAILED'}" for b in v["behaviour"])
    )
    out(f"  champion after this run: v{p['champion']} ({'promoted' if p['promoted'] else 'kept'})")


def print_summary(
    loop: Loop, plan: DemoPlan, settings: Any, use_case: Any, lake: Lake, airflow_home: Path, seconds: float
) -> None:
    from airloop.summary import lake_summary, summary_lines

    r = loop.results
    out()
    out(f"=== Airloop demo summary ({seconds:.0f} s in all) ===")
    for s in loop.stages:
        ok = sum(1 for v in s.tasks.values() if v in ("success", "skipped"))
        out(
            f"Airflow run {s.dag_id}/{s.run_id}: {s.state} in {s.seconds:.0f} s "
            f"({ok}/{len(s.tasks)} task instances succeeded or skipped)"
        )
    days = [d.isoformat() for d in day_range(plan.first_day, plan.batch_day - timedelta(days=1))]
    for line in summary_lines(lake, lake_summary(lake, days), days, use_case.primary_source):
        out(line)
    for m in r.get("materialized", []):
        out(f"Feature store: {m['rows_total']:,} feature rows of {len(m['days'])} days materialized online")
    for name in ("v1", "v2"):
        if name in r:
            print_model(name, r[name], use_case.model_name)
    for key, label in (("live_before", "before the retrain"), ("live_after", "after the retrain")):
        if key in r:
            live = r[key]
            out(
                f"Live traffic {label}: {live['rows']:,} real {use_case.primary_source} events "
                f"of {live['days']} through POST /predict "
                f"({live['requests']} requests, {live['errors']} errors, served by "
                f"{', '.join('v' + v for v in live['versions']) or 'none'})"
            )
    if "drift" in r:
        d = r["drift"]
        out(
            f"Drift check of {d['window']['rows']:,} live rows against the champion's training reference: "
            f"{d['status']}"
        )
        summary = json.loads(Path(d["report"]["json"]).read_text())
        alerts = sorted((f for f in summary["features"] if f["status"] == "alert"), key=lambda f: -f["psi"])
        for f in alerts[:8]:
            stat = f"KS {f['statistic']:.3f}" if f["test"] == "ks" else f"chi2 {f['statistic']:.0f}"
            out(f"  {f['feature']:<28} {stat:<12} PSI {f['psi']:6.2f}  p_adj {f['p_adjusted']:.1e}")
        if len(alerts) > 8:
            out(f"  ... and {len(alerts) - 8} more alerts")
        out(f"  {'retrain reason' if d['retrain'] else 'decision'}: {d['reason']}")
        out(f"  report: {d['report']['html']}")
    if "drift_after" in r:
        d = r["drift_after"]
        out(
            f"Next drift check ({d.get('window', {}).get('rows', 0):,} rows): "
            f"{d['status']} - {d['reason'][:200]}"
        )
    if "served_champion" in r:
        served = r["served_champion"]
        promoted = r.get("v2", {}).get("promote", {}).get("promoted", False)
        out(
            f"Hot swap: the service reported the new champion v{served['version']} {served['seconds']:.0f} s "
            "after the retrain"
            if promoted
            else f"Serving: the gate kept v{served['version']}; the service still reports it (no swap needed)"
        )
    before = _live_accuracy(lake, use_case, plan.live_first, plan.live_days)
    after = _live_accuracy(lake, use_case, plan.after_first, plan.after_days)
    for label, acc in (("before", before), ("after", after)):
        for version, m in sorted(acc.items()):
            out(
                f"Live accuracy {label} the retrain (v{version}): {m['accuracy']:.3f}, "
                f"ROC AUC {m['roc_auc']:.3f} ({m['measure']}) on {m['rows']:,} events with outcomes"
            )
    for pair in _shadow_live(lake, plan.after_first, plan.after_days):
        out(
            f"Same events, live ROC AUC: v{pair['champion']} (answering) {pair['champion_roc_auc']:.3f} vs "
            f"v{pair['shadow']} (in shadow, never answered) {pair['shadow_roc_auc']:.3f} on {pair['rows']:,} "
            f"events ({pair['champion_roc_auc'] - pair['shadow_roc_auc']:+.3f} for the answering version)"
        )
    verdicts = [v for v in r.get("judged", []) if v and v["action"] != "none"]
    if verdicts:
        v = verdicts[-1]
        out(f"Shadow judge (live_feedback): {v['action']} - {v['reason']}")
    if "batch" in r:
        b = r["batch"]
        out(
            f"Batch inference: {b['rows']:,} events of {b['day']} scored with v{b['model_version']} "
            f"(predicted positive rate {b['positive_rate']:.1%}): {settings.lake / 'predictions'}"
        )
    out("Where to look:")
    out(
        f"  Airflow UI: `make airflow`, http://127.0.0.1:8080 (admin; password in "
        f"{airflow_home / 'simple_auth_manager_passwords.json'}): every run above"
    )
    out(
        f"  MLflow UI: `make mlflow`, http://127.0.0.1:5000: experiments airloop-{use_case.name} (training) "
        f"and {use_case.model_name}-monitoring (drift checks), model {use_case.model_name} "
        "(aliases, audit tags)"
    )
    out(
        f"  Drift reports: {settings.lake / 'monitoring' / 'drift' / 'checks'}; "
        f"live log: {settings.lake / 'live'}"
    )
