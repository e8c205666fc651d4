"""The console's HTML pages, rendered on the server from the read model (``views``).

Self-contained: inline CSS and SVG, no script and no network, so a page works in Airflow's plugin frame and
offline. Every value that comes from a store is escaped (``_e``). Links are built by ``Links``: the plugin
knows where it is mounted, where Airflow's UI is, and where (if anywhere) an MLflow UI is reachable.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from airloop.console.plot import bar_chart, line_chart
from airloop.console.views import DataView, DriftView, LiveView, ModelsView, ModelVersionRecord

TABS = (("models", "Models"), ("drift", "Drift"), ("data", "Data"), ("live", "Live"), ("actions", "Actions"))

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f24;background:#fff}
header{padding:10px 18px;border-bottom:1px solid #ddd;display:flex;gap:18px;align-items:baseline}
header h1{font-size:18px;margin:0} nav a{margin-right:14px;text-decoration:none;color:#2e6da4}
nav a.on{font-weight:bold;color:#1b1f24;border-bottom:2px solid #017cee} main{padding:12px 18px}
table{border-collapse:collapse;margin:8px 0 16px} th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;
vertical-align:top;font-size:13px} th{background:#f4f6f8} .num{text-align:right;font-variant-numeric:tabular-nums}
.tag{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;color:#fff;margin-right:4px}
.champion{background:#1e8449}.challenger{background:#2471a3}.shadow{background:#7f8c8d}
.retrain,.alert,.quarantined,.failed,.worse{background:#c0392b}.cooldown,.too_little_new_data,.warn,.inconclusive{background:#d68910}
.quiet,.ok,.validated,.promote,.first_champion,.within_tolerance,.better{background:#1e8449}
.missing,.too_few_rows{background:#95a5a6} .muted{color:#667} .box{border:1px solid #ddd;border-radius:6px;
padding:10px 14px;margin:10px 0} .cal{display:inline-block;margin:0 16px 16px 0;vertical-align:top}
.cal td{width:30px;height:26px;text-align:center;padding:2px;font-size:12px} .cal td a{color:#fff}
.day-validated{background:#d5f5e3}.day-quarantined{background:#c0392b;color:#fff}.day-missing{background:#eee}
pre{white-space:pre-wrap;background:#f7f7f7;padding:10px;border:1px solid #ddd;font-size:12px}
.flash{padding:8px 12px;border-radius:6px;margin:8px 0}.flash.ok{background:#d5f5e3}.flash.err{background:#fadbd8}
form.inline{display:inline} input[type=text]{width:420px;padding:4px} button{padding:4px 12px}
"""


def _e(value: Any) -> str:
    return "-" if value is None else html.escape(str(value))


def _f(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _tag(text: str | None, kind: str | None = None) -> str:
    if not text:
        return ""
    return f'<span class="tag {html.escape(kind or text)}">{html.escape(text)}</span>'


@dataclass(frozen=True)
class Links:
    """Where things are: this console (``base``, e.g. ``/airloop``), Airflow's UI (``airflow``, its root path,
    ``""`` at the server root) and an MLflow UI reachable by the user's browser (``mlflow``, or ``None``)."""

    base: str
    airflow: str = ""
    mlflow: str | None = None

    def page(self, name: str, **query: str) -> str:
        tail = "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
        return f"{self.base}/{name}" + (f"?{tail}" if tail else "")

    def drift_report(self, check_id: str) -> str:
        return f"{self.base}/reports/drift/{quote(check_id, safe='')}"

    def quarantine_report(self, ds: str) -> str:
        return f"{self.base}/reports/quarantine/{quote(ds, safe='')}"

    def airflow_run(self, dag_id: str, run_id: str) -> str:
        return f"{self.airflow}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"

    def airflow_dag(self, dag_id: str) -> str:
        return f"{self.airflow}/dags/{quote(dag_id, safe='')}"

    def required_actions(self) -> str:
        return f"{self.airflow}/required_actions"

    def mlflow_run(self, experiment_id: str | None, run_id: str | None) -> str | None:
        if not self.mlflow or not run_id or not experiment_id:
            return None
        return f"{self.mlflow.rstrip('/')}/#/experiments/{quote(experiment_id)}/runs/{quote(run_id)}"


@dataclass(frozen=True)
class Flash:
    ok: bool
    text: str


@dataclass(frozen=True)
class PendingApproval:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    subject: str
    body: str | None
    options: list[str] = field(default_factory=list)


def layout(title: str, active: str, body: str, links: Links, user: str | None, use_case: str) -> str:
    tabs = "".join(
        f'<a href="{links.page(key)}" class="{"on" if key == active else ""}">{label}</a>'
        for key, label in TABS
    )
    who = f'<span class="muted">signed in as {_e(user)}</span>' if user else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Airloop - {_e(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
        f'<body><header><h1>Airloop</h1><span class="muted">use case {_e(use_case)}</span><nav>{tabs}</nav>'
        f"{who}</header><main>{body}</main></body></html>"
    )


def _flash(flash: Flash | None) -> str:
    if flash is None:
        return ""
    return f'<div class="flash {"ok" if flash.ok else "err"}" id="flash">{_e(flash.text)}</div>'


# -- models -------------------------------------------------------------------------------------------


def _window(v: ModelVersionRecord) -> str:
    w = v.window
    if not w:
        return "-"
    return (
        f"train {_e(w.get('train_start'))} .. {_e(w.get('holdout_start'))}, holdout "
        f"{_e(w.get('holdout_start'))}"
        f" .. {_e(w.get('holdout_end'))} (exclusive); ships trained through {_e(v.data_end)} (exclusive)"
    )


def _metrics_table(v: ModelVersionRecord) -> str:
    if not v.metrics and not v.baseline:
        return '<p class="muted">no holdout metrics logged</p>'
    head = "".join(f"<th>{m}</th>" for m in ("ROC AUC", "PR AUC", "log loss", "Brier"))
    rows = ""
    for label, values in (("model (judged recipe)", v.metrics), ("baseline", v.baseline)):
        cells = "".join(
            f'<td class="num">{_f(values.get(m))}</td>' for m in ("roc_auc", "pr_auc", "log_loss", "brier")
        )
        rows += f"<tr><td>{label}</td>{cells}</tr>"
    return f"<table><tr><th>holdout</th>{head}</tr>{rows}</table>"


def _behaviour(v: ModelVersionRecord) -> str:
    if not v.behaviour:
        return "-"
    return "; ".join(
        f"{_e(b.get('name'))} {'ok' if b.get('passed') else 'FAILED'}"
        + (f" ({_e(b.get('detail'))})" if not b.get("passed") and b.get("detail") else "")
        for b in v.behaviour
    )


def _evidence(v: ModelVersionRecord) -> str:
    ev = v.drift_evidence
    if not ev:
        return ""
    feats = ev.get("drifted_features") or {}
    top = sorted(feats.items(), key=lambda kv: -(kv[1].get("psi") or 0))[:5]
    perf = ev.get("performance") or {}
    items = "".join(
        f"<li>{_e(name)}: {_e(f.get('status'))} {_e(f.get('test'))} {_f(f.get('statistic'), 3)}, "
        f"PSI {_f(f.get('psi'), 2)}</li>"
        for name, f in top
    )
    window = ev.get("window") or {}
    return (
        f"<div><b>Drift evidence</b> (window {_e(window.get('id'))}, {_e(window.get('rows'))} rows, champion "
        f"v{_e(ev.get('champion_version'))}): {len(feats)} inputs drifted<ul>{items}</ul>"
        f"live ROC AUC {_f(perf.get('live_auc'), 3)} vs holdout {_f(perf.get('champion_auc'), 3)}</div>"
    )


def _moves(moves: Iterable[Any]) -> str:
    rows = "".join(
        f"<tr><td>{_e(m.at)}</td><td>{_tag(m.alias)}</td><td>"
        f"{'removed from v' + _e(m.previous) if m.version is None else 'v' + _e(m.previous) + ' &rarr; v' + _e(m.version) if m.previous else 'v' + _e(m.version)}"
        f"</td><td>{_e(m.who)}</td><td>{_e(m.why)}</td></tr>"
        for m in moves
    )
    if not rows:
        return '<p class="muted">no alias moves</p>'
    return f"<table><tr><th>when</th><th>alias</th><th>move</th><th>who</th><th>why</th></tr>{rows}</table>"


def _version_box(v: ModelVersionRecord, links: Links) -> str:
    mlflow = links.mlflow_run(v.experiment_id, v.run_id)
    run_link = (
        f'<a href="{_e(links.airflow_run(v.dag_id, v.airflow_run_id))}">Airflow run {_e(v.airflow_run_id)}</a>'
        if v.dag_id and v.airflow_run_id
        else f"trained by {_e(v.triggered_by)}"
    )
    mlflow_link = (
        f'<a href="{_e(mlflow)}">MLflow run {_e(v.run_id)}</a>'
        if mlflow
        else f'MLflow run <code>{_e(v.run_id)}</code> <span class="muted">(set AIRLOOP_MLFLOW_UI_URL to link it)</span>'
    )
    aliases = "".join(_tag(a) for a in v.aliases)
    gate = (
        f"{_tag(v.gate_verdict)} {_e(v.gate_reason)}"
        + (
            f" (the champion had trained on {v.champion_saw_days} of the holdout's days)"
            if v.champion_saw_days
            else ""
        )
        if v.gate_verdict
        else '<span class="muted">not judged yet</span>'
    )
    kept = f"<div><b>Not promoted</b>: {_e(v.promotion)}</div>" if v.promotion else ""
    live = (
        f"<div><b>Live (shadow) verdict</b>: {_tag(v.live_verdict)} {_e(v.live_reason)}</div>"
        if v.live_verdict
        else ""
    )
    return (
        f'<div class="box version" id="v{_e(v.version)}"><h3>v{_e(v.version)} {aliases}</h3>'
        f"<div><b>Registered</b> {_e(v.created_at)}; {run_link}; {mlflow_link}</div>"
        f"<div><b>Window</b>: {_window(v)}</div>"
        f"<div><b>Trigger</b>: {_e(v.trigger_reason)}</div>{_evidence(v)}"
        f'<div class="gate"><b>Gate</b>: {gate}</div>{kept}'
        f"<div><b>Behaviour tests</b>: {_behaviour(v)}</div>{live}"
        f"{_metrics_table(v)}"
        f"<details><summary>alias moves of v{_e(v.version)}</summary>{_moves(v.moves)}</details></div>"
    )


def models_page(view: ModelsView, links: Links) -> str:
    if not view.versions:
        return f"<h2>Models: {_e(view.model)}</h2><p>No version registered yet: run <code>train_model</code>.</p>"
    champion = view.version(view.champion)
    why = ""
    if champion is not None:
        last = next((m for m in view.audit if m.alias == "champion"), None)
        why = (
            f'<div class="box" id="serving"><h3>Serving: v{_e(champion.version)} {_tag("champion")}</h3>'
            f"<div><b>Why</b>: {_e(last.why if last else champion.gate_reason)}</div>"
            f"<div><b>Set by</b> {_e(last.who if last else None)} at {_e(last.at if last else None)}</div>"
            f'<div class="gate"><b>Its gate verdict</b>: {_tag(champion.gate_verdict)} {_e(champion.gate_reason)}</div>'
            f"<div><b>Holdout ROC AUC</b> {_f(champion.metrics.get('roc_auc'))} (baseline "
            f"{_f(champion.baseline.get('roc_auc'))})</div>"
            f'<div><a href="{links.page("actions")}">Roll back or retrain &rarr;</a></div></div>'
        )
    else:
        why = '<div class="box" id="serving"><h3>No champion</h3>No version passed the gate yet.</div>'
    others = (
        f"challenger v{_e(view.challenger)}" if view.challenger else "no challenger",
        f"shadow v{_e(view.shadow)}" if view.shadow else "no shadow",
    )
    return (
        f"<h2>Models: {_e(view.model)}</h2>{why}<p>{'; '.join(others)}.</p>"
        + "".join(_version_box(v, links) for v in view.versions)
        + f"<h3>Audit trail</h3>{_moves(view.audit)}"
    )


# -- drift --------------------------------------------------------------------------------------------


def drift_page(view: DriftView, links: Links, models: ModelsView | None = None) -> str:
    if not view.checks:
        body = "<p>No drift check yet: <code>drift_monitor</code> checks once enough live rows arrived.</p>"
    else:
        rows = []
        for c in view.checks:
            top = (
                ", ".join(f"{_e(t.feature)} ({_e(t.status)}, PSI {_f(t.psi, 2)})" for t in c.top)
                or '<span class="muted">none</span>'
            )
            perf = (
                f"live {_f(c.live_auc, 3)} vs holdout {_f(c.champion_auc, 3)} (drop {_f(c.auc_drop, 3)}, "
                f"{c.labelled_rows:,} labelled)"
                if c.live_auc is not None
                else "-"
            )
            triggered = ""
            if c.triggered_run_id:
                made = next(
                    (
                        v
                        for v in (models.versions if models else [])
                        if v.airflow_run_id == c.triggered_run_id
                    ),
                    None,
                )
                triggered = (
                    f'<br>&rarr; <a href="{_e(links.airflow_run("train_model", c.triggered_run_id))}">'
                    f"train_model {_e(c.triggered_run_id)}</a>"
                    + (
                        f' registered <a href="{links.page("models")}#v{_e(made.version)}">v{_e(made.version)}</a>'
                        if made
                        else ""
                    )
                )
            report = (
                f'<a href="{_e(links.drift_report(c.id))}">report</a>'
                if c.has_report
                else '<span class="muted">-</span>'
            )
            run = (
                f'<br><a href="{_e(links.airflow_run("drift_monitor", c.airflow_run_id))}">{_e(c.airflow_run_id)}</a>'
                if c.airflow_run_id
                else ""
            )
            rows.append(
                f'<tr class="check" id="check-{_e(c.id)}"><td>{_e(c.after) if c.after else "start"} .. {_e(c.until)}{run}</td>'
                f'<td class="num">{c.rows:,}</td><td>v{_e(c.champion_version)}</td>'
                f"<td>{_tag(c.status)}{triggered}<br><small>{_e(c.reason)}</small></td><td>{top}</td>"
                f"<td>{perf}</td><td>{report}</td></tr>"
            )
        body = (
            "<table><tr><th>window (served time)</th><th>rows</th><th>champion</th><th>decision</th>"
            "<th>top drifted inputs</th><th>performance</th><th></th></tr>" + "".join(rows) + "</table>"
        )
    policy = json.dumps(view.policy, indent=2, default=str)
    return f"<h2>Drift checks</h2>{body}<h3>Policy in force</h3><pre>{_e(policy)}</pre>"


# -- data ---------------------------------------------------------------------------------------------


def _calendar(days: list[Any], links: Links) -> str:
    from datetime import date

    months: dict[str, list[Any]] = {}
    for d in days:
        months.setdefault(d.ds[:7], []).append(d)
    out = []
    for month, items in months.items():
        first = date.fromisoformat(items[0].ds)
        cells = ["<td></td>"] * date.fromisoformat(f"{month}-01").weekday()
        cells += ["<td></td>"] * (first.day - 1)
        for d in items:
            day = d.ds[8:].lstrip("0")
            title = f"{d.ds}: {d.status}" + (f", {sum(d.rows.values()):,} rows" if d.rows else "")
            inner = (
                f'<a href="{_e(links.quarantine_report(d.ds))}">{day}</a>'
                if d.status == "quarantined"
                else day
            )
            cells.append(f'<td class="day-{d.status}" title="{_e(title)}">{inner}</td>')
        weeks = ["".join(cells[i : i + 7]) for i in range(0, len(cells), 7)]
        out.append(
            f'<table class="cal"><tr><th colspan="7">{month}</th></tr>'
            "<tr><th>Mo</th><th>Tu</th><th>We</th><th>Th</th><th>Fr</th><th>Sa</th><th>Su</th></tr>"
            + "".join(f"<tr>{w}</tr>" for w in weeks)
            + "</table>"
        )
    return "".join(out)


def data_page(view: DataView, links: Links) -> str:
    if not view.days:
        return "<h2>Data</h2><p>The lake holds no day yet: run <code>ingest_validate</code>.</p>"
    counts = {s: sum(1 for d in view.days if d.status == s) for s in ("validated", "quarantined", "missing")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    quarantined = "".join(
        f'<tr class="quarantined-day"><td><a href="{_e(links.quarantine_report(d.ds))}">{_e(d.ds)}</a></td>'
        f"<td>{'<br>'.join(_e(f) for f in d.failures) or '-'}</td></tr>"
        for d in view.quarantined
    )
    quarantine = (
        "<h3>Quarantined days</h3><table><tr><th>day</th><th>failed "
        f"expectations</th></tr>{quarantined}</table>"
        if quarantined
        else "<p>No day in quarantine.</p>"
    )
    sources = sorted({s for d in view.days for s in d.rows})
    table = "".join(
        f"<tr><td>{_e(d.ds)}</td><td>{_tag(d.status)}</td>"
        + "".join(f'<td class="num">{d.rows[s]:,}</td>' if s in d.rows else "<td></td>" for s in sources)
        + f"<td>{len(d.warnings)}</td><td><small>{'<br>'.join(_e(w) for w in d.warnings[:3])}</small></td></tr>"
        for d in reversed(view.days)
    )
    feats = "".join(
        f'<tr><td>{_e(f.view)}</td><td class="num">{f.computed_days}</td><td>{_e(f.last_computed)}</td>'
        f"<td>{_e(f.last_materialized[0]) + ' .. ' + _e(f.last_materialized[1]) if f.last_materialized else '-'}</td></tr>"
        for f in view.features
    )
    error = (
        f'<p class="flash err">Feature store: {_e(view.features_error)}</p>' if view.features_error else ""
    )
    return (
        f"<h2>Data</h2><p>{view.days[0].ds} .. {view.days[-1].ds}: {summary}.</p>"
        f"{_calendar(view.days, links)}{quarantine}"
        f"<h3>Feature views</h3>{error}<table><tr><th>view</th><th>computed days</th><th>newest "
        "partition</th>"
        f"<th>last materialized interval</th></tr>{feats}</table>"
        f"<h3>Days</h3><table><tr><th>day</th><th>status</th>"
        + "".join(f"<th>{_e(s)} rows</th>" for s in sources)
        + f"<th>warnings</th><th></th></tr>{table}</table>"
    )


def quarantine_report_page(ds: str, report_md: str, links: Links) -> str:
    return (
        f'<p><a href="{links.page("data")}">&larr; Data</a></p><h2>Quarantine report {_e(ds)}</h2>'
        f'<pre id="report">{_e(report_md)}</pre>'
    )


# -- live ---------------------------------------------------------------------------------------------


def live_page(view: LiveView, models: ModelsView | None = None) -> str:
    if not view.days:
        return (
            "<h2>Live</h2><p>No live metrics yet: they appear once outcomes of served days are ingested.</p>"
        )
    labels = [d.ds[5:] for d in view.days]
    auc = {f"v{v}": [d.by_version.get(v, {}).get("roc_auc") for d in view.days] for v in view.versions}
    acc = {f"v{v}": [d.by_version.get(v, {}).get("accuracy") for d in view.days] for v in view.versions}
    rows = {
        f"v{v}": [float(d.by_version.get(v, {}).get("rows", 0)) for d in view.days] for v in view.versions
    }
    promoted = ""
    if models is not None:
        moves = [m for m in reversed(models.audit) if m.alias == "champion" and m.version]
        promoted = "".join(f"<li>{_e(m.at)}: v{_e(m.version)} ({_e(m.why[:160])})</li>" for m in moves)
        promoted = f"<h3>Champion changes</h3><ul>{promoted}</ul>" if promoted else ""
    table = "".join(
        f'<tr><td>{_e(d.ds)}</td><td class="num">{d.served:,}</td><td class="num">{d.with_outcome:,}</td>'
        + "".join(
            f"<td>v{_e(v)}: {m.get('rows', 0):,} rows, accuracy {_f(m.get('accuracy'), 3)}, "
            f"ROC AUC {_f(m.get('roc_auc'), 3)}</td>"
            for v, m in sorted(d.by_version.items())
        )
        + "</tr>"
        for d in reversed(view.days)
    )
    return (
        "<h2>Live accuracy</h2>"
        + line_chart(labels, auc, title="live ROC AUC per day", y_label="ROC AUC")
        + line_chart(labels, acc, title="live accuracy per day", y_label="accuracy")
        + bar_chart(labels, rows, title="rows with outcomes per day, by the version that answered")
        + promoted
        + f"<h3>Per day</h3><table><tr><th>day</th><th>served</th><th>with outcome</th><th>by version</th></tr>"
        f"{table}</table>"
    )


# -- actions ------------------------------------------------------------------------------------------


def actions_page(
    models: ModelsView,
    links: Links,
    pending: list[PendingApproval],
    pending_error: str | None,
    flash: Flash | None,
    holdout_end: str | None = None,
) -> str:
    champion = f"v{_e(models.champion)}" if models.champion else "none"
    previous = next((m.previous for m in models.audit if m.alias == "champion"), None)
    rollback = (
        f"Moves the champion ({champion}) back to v{_e(previous)} (the version it held before its latest "
        "move)."
        if previous
        else "There is no earlier champion to roll back to."
    )
    approvals = "".join(
        f'<tr><td><a href="{_e(links.airflow_run(p.dag_id, p.run_id))}">{_e(p.dag_id)} / {_e(p.run_id)}</a></td>'
        f"<td>{_e(p.subject)}<br><small>{_e(p.body)}</small></td><td>"
        + "".join(
            f'<form class="inline" method="post" action="{links.page("actions/approval")}">'
            f'<input type="hidden" name="dag_id" value="{_e(p.dag_id)}"><input type="hidden" name="run_id" '
            f'value="{_e(p.run_id)}"><input type="hidden" name="task_id" value="{_e(p.task_id)}">'
            f'<input type="hidden" name="map_index" value="{p.map_index}"><input type="hidden" name="option" '
            f'value="{_e(o)}"><button type="submit">{_e(o)}</button></form> '
            for o in p.options
        )
        + "</td></tr>"
        for p in pending
    )
    hitl = (
        f"<table><tr><th>run</th><th>question</th><th>answer</th></tr>{approvals}</table>"
        if approvals
        else "<p>No promotion waits for approval.</p>"
    )
    if pending_error:
        hitl = f'<p class="flash err">{_e(pending_error)}</p>'
    return (
        f'<h2>Actions</h2>{_flash(flash)}<p class="muted">Each action is a call to Airflow\'s REST API with '
        "your own sign-in: Airflow decides whether you may do it.</p>"
        f'<div class="box"><h3>Roll back the champion</h3><p>{rollback}</p>'
        f'<form method="post" action="{links.page("actions/rollback")}" id="rollback-form">'
        '<input type="text" name="reason" minlength="3" required placeholder="why (recorded in the audit trail)">'
        ' <button type="submit" id="rollback">Trigger rollback_model</button></form></div>'
        '<div class="box"><h3>Retrain</h3><form method="post" action="'
        f'{links.page("actions/train")}" id="train-form"><input type="text" name="reason" minlength="3" required '
        'placeholder="why (an MLflow tag of the run)"> <label>holdout end (exclusive) <input type="date" '
        f'name="holdout_end" value="{_e(holdout_end) if holdout_end else ""}"></label> <label><input type="checkbox" name="require_approval" '
        'value="true"> ask for approval before promoting</label> <button type="submit">Trigger train_model</button>'
        "</form></div>"
        f'<div class="box"><h3>Pending promotions</h3>{hitl}<p><a href="{_e(links.required_actions())}">'
        "Required Actions in Airflow</a></p></div>"
    )
