"""The drift report as one self-contained HTML page (no network): a sortable table of every monitored
feature and, per feature, the reference-vs-window overlay of bin shares (histogram) and of the ECDFs,
drawn as inline SVG."""

from __future__ import annotations

import html
import math
from typing import Any

_STATUS_COLOUR = {
    "alert": "#c0392b",
    "warn": "#d68910",
    "significant": "#2471a3",
    "ok": "#1e8449",
    "too_few_rows": "#7f8c8d",
    "partial_cycle": "#7f8c8d",
}
_ORDER = {"alert": 0, "warn": 1, "significant": 2, "ok": 3, "too_few_rows": 4, "partial_cycle": 5}

_SCRIPT = """
function sortTable(col, numeric) {
  const table = document.getElementById('features');
  const rows = Array.from(table.tBodies[0].rows);
  const dir = table.dataset.col == col && table.dataset.dir == 'asc' ? 'desc' : 'asc';
  rows.sort((a, b) => {
    let x = a.cells[col].dataset.v ?? a.cells[col].innerText,
        y = b.cells[col].dataset.v ?? b.cells[col].innerText;
    if (numeric) {
      x = parseFloat(x); y = parseFloat(y); x = isNaN(x) ? -1e300 : x; y = isNaN(y) ? -1e300 : y;
    }
    return (x < y ? -1 : x > y ? 1 : 0) * (dir == 'asc' ? 1 : -1);
  });
  rows.forEach(r => table.tBodies[0].appendChild(r));
  table.dataset.col = col; table.dataset.dir = dir;
}
"""


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def _bars(
    labels: list[str], reference: list[float], current: list[float], width: int = 420, height: int = 150
) -> str:
    if not reference:
        return ""
    n = len(reference)
    top = max([*reference, *current, 1e-9])
    slot = width / n
    parts = [f'<svg width="{width}" height="{height + 18}" role="img">']
    for i, (r, c) in enumerate(zip(reference, current, strict=False)):
        x = i * slot
        for j, (value, colour) in enumerate(((r, "#95a5a6"), (c, "#2e86c1"))):
            h = value / top * height
            parts.append(
                f'<rect x="{x + j * slot / 2 + 1:.1f}" y="{height - h:.1f}" '
                f'width="{max(slot / 2 - 2, 1):.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{html.escape(labels[i])}: "
                f"{'reference' if j == 0 else 'window'} {value:.3f}</title></rect>"
            )
    parts.append(f'<text x="0" y="{height + 14}" font-size="10">{html.escape(labels[0])}</text>')
    parts.append(
        f'<text x="{width}" y="{height + 14}" font-size="10" text-anchor="end">'
        f"{html.escape(labels[-1])}</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def _ecdf(
    xs: list[float], reference: list[float], current: list[float], width: int = 420, height: int = 150
) -> str:
    if len(xs) < 2:
        return ""
    lo, hi = xs[0], xs[-1]
    span = (hi - lo) or 1.0

    def path(ys: list[float]) -> str:
        return " ".join(
            f"{(x - lo) / span * width:.1f},{height - y * height:.1f}" for x, y in zip(xs, ys, strict=False)
        )

    return (
        f'<svg width="{width}" height="{height + 18}" role="img">'
        f'<polyline fill="none" stroke="#95a5a6" stroke-width="2" points="{path(reference)}"/>'
        f'<polyline fill="none" stroke="#2e86c1" stroke-width="2" points="{path(current)}"/>'
        f'<text x="0" y="{height + 14}" font-size="10">{lo:.4g}</text>'
        f'<text x="{width}" y="{height + 14}" font-size="10" text-anchor="end">{hi:.4g}</text></svg>'
    )


def _figure(feature: dict[str, Any]) -> str:
    bins = feature.get("bins") or {}
    if "categories" in bins:
        bars = _bars(bins["categories"], bins["reference"], bins["current"])
        ecdf = ""
    else:
        edges = bins.get("edges") or []
        labels = [f"[{edges[i]:.4g}, {edges[i + 1]:.4g})" for i in range(len(edges) - 1)] or ["-"]
        bars = _bars(labels, bins.get("reference", []), bins.get("current", []))
        ecdf = _ecdf(bins.get("ecdf_x", []), bins.get("ecdf_reference", []), bins.get("ecdf_current", []))
    unseen = feature.get("unseen") or {}
    extra = (
        f"<p>unseen values: {html.escape(', '.join(f'{k} ({v})' for k, v in list(unseen.items())[:20]))}</p>"
        if unseen
        else ""
    )
    return (
        f'<section id="f-{html.escape(feature["feature"])}"><h3>{html.escape(feature["feature"])} '
        f'<small style="color:{_STATUS_COLOUR.get(feature["status"], "#000")}">'
        f"{feature['status']}</small></h3>"
        f"<p>{html.escape('; '.join(feature.get('reasons') or []))}</p>"
        f'<div style="display:flex;gap:24px"><div><b>bin shares</b> (grey: reference, blue: window)<br>'
        f"{bars}</div>" + (f"<div><b>ECDF</b><br>{ecdf}</div>" if ecdf else "") + f"</div>{extra}</section>"
    )


def render_html(summary: dict[str, Any]) -> str:
    features = sorted(summary["features"], key=lambda f: (_ORDER.get(f["status"], 9), -(f["psi"] or 0)))
    decision = summary["decision"]
    perf = summary["performance"]
    measure = html.escape(perf.get("measure", "daily"))  # how live and holdout AUC were measured
    new_data = _new_data_note(summary.get("new_data"), summary["policy"])
    head = [
        "feature",
        "kind",
        "status",
        "test",
        "statistic",
        "p (adjusted)",
        "PSI",
        "null share ref",
        "null share now",
        "rows",
    ]
    numeric = [False, False, False, False, True, True, True, True, True, True]
    header = "".join(
        f'<th onclick="sortTable({i}, {str(n).lower()})">{h}</th>'
        for i, (h, n) in enumerate(zip(head, numeric, strict=True))
    )
    rows = []
    for f in features:
        colour = _STATUS_COLOUR.get(f["status"], "#000")
        cells = [
            f'<a href="#f-{html.escape(f["feature"])}">{html.escape(f["feature"])}</a>',
            f["kind"],
            f'<span style="color:{colour}">{f["status"]}</span>',
            f["test"],
        ]
        values = [
            f["statistic"],
            f["p_adjusted"],
            f["psi"],
            f["null_share_reference"],
            f["null_share_current"],
            f["rows"],
        ]
        rows.append(
            "<tr>"
            + "".join(f"<td>{c}</td>" for c in cells)
            + "".join(f'<td data-v="{v}">{_fmt(v)}</td>' for v in values)
            + "</tr>"
        )
    window = summary["window"]
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Drift {html.escape(window["id"])}</title>
<style>body{{font-family:sans-serif;margin:24px}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px}}
th{{cursor:pointer;background:#f4f6f7}} section{{margin:18px 0;border-top:1px solid #eee}}</style>
<script>{_SCRIPT}</script></head><body>
<h1>Drift report: {html.escape(summary["model"])} v{html.escape(str(summary["champion_version"]))}</h1>
<p>Window: served after {html.escape(str(window["after"]))} up to {html.escape(str(window["until"]))},
{window["rows"]} rows.
Policy: {html.escape(summary["policy"]["correction"])} at alpha {summary["policy"]["alpha"]},
min rows {summary["policy"]["min_rows"]},
cooldown {summary["policy"]["cooldown_hours"]} h.</p>
<h2>Decision: {html.escape(decision["status"])}</h2><p>{html.escape(decision["reason"])}</p>
<p>Performance ({measure}): champion holdout ROC AUC {_fmt(perf["champion_auc"])}, live
{_fmt(perf["live_auc"])} ({perf["labelled_rows"]} labelled rows).{new_data}</p>
<h2>Features</h2><p>Click a column to sort.{_shared_note(summary.get("shared") or {})}</p>
<table id="features"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>
<h2>Distributions</h2>{"".join(_figure(f) for f in features)}
</body></html>"""


def _new_data_note(fresh: dict[str, Any] | None, policy: dict[str, Any]) -> str:
    """What a retrain now would add, beside the policy's minimum (checks written before it: nothing)."""
    if not fresh or fresh.get("share") is None:
        return ""
    return (
        f" New data: {fresh['rows']} events since {html.escape(str(fresh['since']))}"
        " (the newest data the champion or the last triggered retrain trained on),"
        f" {fresh['share']:.1%} of the {fresh['fit_rows']} the champion was fit on"
        f" (min_new_share {policy.get('min_new_share', 0):.0%})."
    )


def _shared_note(shared: dict[str, list[str]]) -> str:
    """Which inputs were tested on distinct observations (their ``rows`` count observations)."""
    groups: dict[str, list[str]] = {}
    for name, per in shared.items():
        groups.setdefault(", ".join(per), []).append(name)
    return "".join(
        f" Tested on distinct ({html.escape(per)}) observations, not rows: {html.escape(', '.join(names))}."
        for per, names in groups.items()
    )
