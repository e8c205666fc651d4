"""Ingestion: extract a day from the source into the raw zone, validate it, publish or quarantine it.

Each function is keyed on one data interval (a local day) and is idempotent: running a day again replaces
its raw partition and moves it to exactly one of validated/ or quarantine/. Nothing here reads the clock.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import Any

from airloop.intervals import DayInterval
from airloop.lake import Lake
from airloop.sources import DataSource, SourceReadError
from airloop.usecase import UseCase
from airloop.validation import (
    SourceReport,
    ValidationContext,
    conform,
    prepare,
    repair,
    timestamp_checks,
    validate_frame,
)

logger = logging.getLogger(__name__)

READ_ERROR_FILE = "_READ_ERROR.txt"


@dataclass
class DayResult:
    """What happened to one day: small enough to travel as an XCom."""

    ds: str
    status: str  # "validated" | "quarantined"
    rows: dict[str, int]
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    location: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def extract_day(use_case: UseCase, source: DataSource, lake: Lake, day: date) -> dict[str, int]:
    """Copy every source's records of ``day`` into the raw zone; return rows per source.

    Unreadable input is kept byte-for-byte in the raw partition with a ``_READ_ERROR.txt`` beside it, so
    validation quarantines it with its reason (and the run can be repeated once the source is fixed).
    """
    interval = DayInterval(day, use_case.timezone)
    rows: dict[str, int] = {}
    for spec in use_case.sources:
        try:
            frame = source.extract(spec, interval)
        except SourceReadError as err:
            logger.error("cannot read %s for %s: %s", spec.name, interval.ds, err.message)
            lake.write_raw_bytes(spec.name, day, {**err.files, READ_ERROR_FILE: err.message.encode()})
            rows[spec.name] = -1
            continue
        lake.write_partition("raw", spec.name, day, frame)
        rows[spec.name] = len(frame)
    logger.info("extracted %s: %s", interval.ds, rows)
    return rows


def validate_day(use_case: UseCase, lake: Lake, day: date) -> DayResult:
    """Validate the raw partitions of ``day``; publish the whole day or quarantine the whole day.

    A day is published only when every source passes its critical expectations, so downstream readers
    always see complete days. Dimension sources are checked first; their values feed the reference rules
    (e.g. ``flights.carrier`` must be a known airline) of the same day.
    """
    interval = DayInterval(day, use_case.timezone)
    reports: list[SourceReport] = []
    frames = {}
    references: dict[tuple[str, str], list[str]] = {}
    repaired: list[str] = []
    for spec in use_case.ordered_sources():
        raw_dir = lake.partition("raw", spec.name, day)
        if (raw_dir / READ_ERROR_FILE).exists():
            reports.append(SourceReport.unreadable(spec.name, (raw_dir / READ_ERROR_FILE).read_text()))
            continue
        raw = lake.read_partition("raw", spec.name, day)
        prepared, fixed = repair(prepare(raw, spec), spec)
        repaired.extend(fixed)
        history = lake.row_count_history(spec.name, day, spec.row_count.history_days)
        report = validate_frame(prepared, spec, ValidationContext(interval, references.copy(), history))
        report = replace(report, checks=[*report.checks, *timestamp_checks(raw, prepared, spec)])
        reports.append(report)
        if report.passed:
            frames[spec.name] = conform(prepared, spec)
            for column in spec.columns if spec.kind == "dimension" else []:
                if column.dtype == "string":
                    references[(spec.name, column.name)] = prepared[column.name].dropna().unique().tolist()
    rows = {r.source: r.rows for r in reports}
    failures = [f"{r.source}.{c.line()}" for r in reports for c in r.failures]
    warnings = [f"{r.source}.{c.line()}" for r in reports for c in r.warnings]
    # values let through by a tolerance, and implausible readings nulled: said, never silent
    tolerated = [f"{r.source}.{c.line()}" for r in reports for c in r.tolerated]
    notes = {"tolerated": tolerated, "repaired": repaired}
    names = [s.name for s in use_case.sources]
    for line in tolerated + repaired:
        logger.warning("%s: %s", interval.ds, line)
    if not failures:
        lake.publish_day(
            day,
            frames,
            {"ds": interval.ds, "use_case": use_case.name, "rows": rows, "warnings": warnings, **notes},
        )
        logger.info("validated %s: %s rows, %d warnings", interval.ds, rows, len(warnings))
        return DayResult(interval.ds, "validated", rows, [], warnings, str(lake.manifest_path(day)))
    where = lake.quarantine_day(
        day,
        names,
        render_report(use_case, interval, reports, repaired),
        {
            "ds": interval.ds,
            "failures": failures,
            "warnings": warnings,
            **notes,
            "sources": {r.source: r.gx_result for r in reports},
        },
    )
    return DayResult(interval.ds, "quarantined", rows, failures, warnings, str(where))


def render_report(
    use_case: UseCase,
    interval: DayInterval,
    reports: list[SourceReport],
    repaired: Sequence[str] = (),
) -> str:
    """The quarantine report a person reads first (Markdown)."""
    lines = [
        f"# Quarantined: {use_case.name} data of {interval.ds}",
        "",
        f"Data interval {interval.start.isoformat()} .. {interval.end.isoformat()} ({use_case.timezone}).",
        "Nothing of this day was published to the validated zone. Its raw data lies in this folder, one",
        "sub-folder per source; `validation.json` holds the full Great Expectations results.",
        "Fix the source, then re-run the day (README: 'Re-running a day').",
        "",
    ]
    for report in reports:
        state = "FAILED" if not report.passed else "passed"
        lines.append(f"## {report.source}: {state} ({report.rows} rows)")
        lines.append("")
        for check in report.failures:
            lines.append(f"- FAILED {check.line()}")
        for check in report.warnings:
            lines.append(f"- warning {check.line()}")
        for check in report.tolerated:
            lines.append(f"- tolerated {check.line()}")
        for line in repaired:
            if line.startswith(f"{report.source}."):
                lines.append(f"- repaired {line.split('.', 1)[1]}")
        if report.passed and not report.warnings:
            lines.append(f"- all {len(report.checks)} checks passed")
        lines.append("")
    return "\n".join(lines)


def ingest_day(use_case: UseCase, source: DataSource, lake: Lake, day: date) -> DayResult:
    """Extract then validate one day (what one scheduled run does, without Airflow)."""
    extract_day(use_case, source, lake, day)
    return validate_day(use_case, lake, day)


def failure_message(results: list[dict[str, Any]]) -> str:
    """One message naming every quarantined day and each failed expectation with its counts."""
    bad = [r for r in results if r["status"] == "quarantined"]
    parts = [f"{len(bad)} of {len(results)} day(s) quarantined:"]
    for r in bad:
        parts.append(f"  {r['ds']} ({r['location']}):")
        parts.extend(f"    - {line}" for line in r["failures"])
    return "\n".join(parts)


def summarize(results: list[dict[str, Any]], primary: str) -> dict[str, Any]:
    """Counts for logs, Asset event extras and the demo summary."""
    ok = [r for r in results if r["status"] == "validated"]
    return {
        "days": len(results),
        "validated": len(ok),
        "quarantined": len(results) - len(ok),
        "validated_days": [r["ds"] for r in ok],
        "quarantined_days": [r["ds"] for r in results if r["status"] != "validated"],
        f"{primary}_rows": sum(r["rows"].get(primary, 0) for r in ok),
    }
