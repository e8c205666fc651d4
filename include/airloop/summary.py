"""What the lake holds for a range of days, as data and as the lines the CLI and the demo print."""

from __future__ import annotations

from typing import Any

from airloop.lake import Lake


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
    return {
        "validated": validated,
        "quarantined": quarantined,
        "missing": sorted(set(days) - set(validated) - set(quarantined)),
        "rows": rows,
        "warnings": warned,
    }


def summary_lines(lake: Lake, s: dict[str, Any], days: list[str], primary: str) -> list[str]:
    """``lake_summary`` in words: counts, rows per source, warnings, quarantined days and their reports."""
    lines = []
    lines.append(
        f"Partitions: {len(s['validated'])} days validated, {len(s['quarantined'])} quarantined, "
        f"{len(s['missing'])} not ingested (of {len(days)} days {days[0]}..{days[-1]})"
    )
    lines.append(
        f"Rows in the validated zone: {primary} {s['rows'].get(primary, 0):,}"
        + "".join(f", {k} {v:,}" for k, v in sorted(s["rows"].items()) if k != primary)
        + (" (dimension rows counted per daily snapshot)" if len(s["rows"]) > 1 else "")
    )
    if s["warnings"]:
        lines.append(f"Warnings on {len(s['warnings'])} day(s) (published anyway), e.g.:")
        for ds, warnings in s["warnings"][:3]:
            lines.append(f"  {ds}: {warnings[0]}")
    for ds in s["quarantined"]:
        lines.append(f"QUARANTINED {ds}: {lake.quarantine_dir(ds) / 'REPORT.md'}")
    lines.append(f"Lake: {lake.root} (raw/, validated/, quarantine/)")
    return lines
