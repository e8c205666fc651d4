"""Small SVG charts for the console (pure: values in, markup out; no JavaScript, no network)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

PALETTE = ("#2e86c1", "#c0392b", "#1e8449", "#d68910", "#7d3c98", "#117a65", "#7f8c8d")


def _finite(value: float | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def line_chart(
    x_labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    title: str,
    y_label: str = "",
    width: int = 720,
    height: int = 220,
    y_range: tuple[float, float] | None = None,
) -> str:
    """One line per series over categorical x positions (e.g. days), as an inline ``<svg>``.

    ``series[name][i]`` is the value at ``x_labels[i]``; ``None`` or NaN leaves a gap (the line is broken
    there, a lone point is drawn as a dot). ``y_range`` fixes the axis, otherwise it spans the values
    (a flat series gets +-0.5 around its value). Empty input gives a chart that says "no data".
    """
    left, right, top, bottom = 48, 150, 24, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for vs in series.values() for v in vs if _finite(v)]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}" class="chart">',
        f'<text x="{left}" y="14" font-size="13" font-weight="bold">{html.escape(title)}</text>',
    ]
    if not values or not x_labels:
        parts.append(f'<text x="{left}" y="{top + plot_h / 2:.0f}" font-size="12">no data</text></svg>')
        return "".join(parts)
    low, high = y_range if y_range else (min(values), max(values))
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    n = len(x_labels)

    def x(i: int) -> float:
        return left + (plot_w * (i + 0.5) / n)

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - low) / (high - low))

    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>')
    for k in range(5):
        v = low + (high - low) * k / 4
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end">{v:.3g}</text>'
        )
    step = max(1, math.ceil(n / 8))
    for i in range(0, n, step):
        parts.append(
            f'<text x="{x(i):.1f}" y="{top + plot_h + 14}" font-size="10" text-anchor="middle">'
            f"{html.escape(x_labels[i])}</text>"
        )
    if y_label:
        parts.append(
            f'<text x="12" y="{top + plot_h / 2:.0f}" font-size="10" '
            f'transform="rotate(-90 12 {top + plot_h / 2:.0f})" text-anchor="middle">'
            f"{html.escape(y_label)}</text>"
        )
    for s, (name, vs) in enumerate(series.items()):
        colour = PALETTE[s % len(PALETTE)]
        runs: list[list[tuple[float, float]]] = [[]]
        for i, raw in enumerate(list(vs)[:n]):
            if raw is None or not _finite(raw):
                if runs[-1]:
                    runs.append([])
                continue
            v = float(raw)
            runs[-1].append((x(i), y(v)))
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}">'
                f"<title>{html.escape(name)} {html.escape(x_labels[i])}: {v:.4g}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{a:.1f},{b:.1f}" for a, b in run)
                parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        ly = top + 12 + 16 * s
        parts.append(
            f'<rect x="{left + plot_w + 12}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{left + plot_w + 26}" y="{ly}" font-size="11">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    x_labels: Sequence[str],
    stacks: Mapping[str, Sequence[float]],
    *,
    title: str,
    width: int = 720,
    height: int = 200,
) -> str:
    """Stacked bars per x position (e.g. rows served per day, one stack part per model version)."""
    left, right, top, bottom = 48, 150, 24, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(x_labels)
    totals = [sum(float(vs[i]) for vs in stacks.values() if i < len(vs)) for i in range(n)]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}" class="chart">',
        f'<text x="{left}" y="14" font-size="13" font-weight="bold">{html.escape(title)}</text>',
    ]
    if not n or max(totals, default=0) <= 0:
        parts.append(f'<text x="{left}" y="{top + plot_h / 2:.0f}" font-size="12">no data</text></svg>')
        return "".join(parts)
    high = max(totals)
    slot = plot_w / n
    parts.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#999"/>'
    )
    parts.append(f'<text x="{left - 4}" y="{top + 8}" font-size="10" text-anchor="end">{high:,.0f}</text>')
    for i in range(n):
        base = 0.0
        for s, (name, vs) in enumerate(stacks.items()):
            v = float(vs[i]) if i < len(vs) else 0.0
            if v <= 0:
                continue
            h = plot_h * v / high
            yb = top + plot_h * (1 - base / high) - h
            parts.append(
                f'<rect x="{left + i * slot + 1:.1f}" y="{yb:.1f}" width="{max(slot - 2, 1):.1f}" '
                f'height="{h:.1f}" fill="{PALETTE[s % len(PALETTE)]}"><title>{html.escape(name)} '
                f"{html.escape(x_labels[i])}: {v:,.0f}</title></rect>"
            )
            base += v
    step = max(1, math.ceil(n / 8))
    for i in range(0, n, step):
        parts.append(
            f'<text x="{left + (i + 0.5) * slot:.1f}" y="{top + plot_h + 14}" font-size="10" '
            f'text-anchor="middle">{html.escape(x_labels[i])}</text>'
        )
    for s, name in enumerate(stacks):
        ly = top + 12 + 16 * s
        parts.append(
            f'<rect x="{left + plot_w + 12}" y="{ly - 9}" width="10" height="10" '
            f'fill="{PALETTE[s % len(PALETTE)]}"/>'
            f'<text x="{left + plot_w + 26}" y="{ly}" font-size="11">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
