"""Great Expectations 1.x suites built from a use-case declaration, and readable results.

``build_expectations`` turns one declared ``Source`` (plus the context of the interval: its bounds, the
reference values of the same day's dimension tables, recent row counts) into GX expectations;
``validate_frame`` runs them on an in-memory frame with an ephemeral GX context and returns a
``SourceReport`` that a person can read and a machine can store (the full GX result is kept beside it).

Severity: a failed ``critical`` expectation quarantines the day; a ``warning`` is reported and published.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import median
from typing import Any

import pandas as pd

from airloop.intervals import DayInterval
from airloop.sources import parse_timestamps
from airloop.usecase import Column, Source

logger = logging.getLogger(__name__)

PANDAS_TYPES = {"int64": ["int64", "int32", "Int64"], "float64": ["float64", "float32", "int64", "int32"]}


@dataclass(frozen=True)
class ValidationContext:
    """What the rules of one source need to know about the interval being checked."""

    interval: DayInterval
    reference_values: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    """``(source, column) -> values`` of already-validated dimension snapshots of the same day."""
    row_history: list[int] = field(default_factory=list)
    """Row counts of recent validated intervals (for the relative row-count rule)."""


@dataclass
class Check:
    """One expectation's outcome, in words."""

    rule: str
    column: str | None
    severity: str
    success: bool
    observed: str
    tolerated: int = 0
    """Rows a passing rule let through within its ``mostly`` tolerance (reported, never silent)."""

    def line(self) -> str:
        where = f"{self.column}: " if self.column else ""
        return f"{where}{self.rule} -> {self.observed}"


@dataclass
class SourceReport:
    """Validation outcome of one source for one interval."""

    source: str
    rows: int
    checks: list[Check]
    gx_result: dict[str, Any]
    read_error: str | None = None

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.success and c.severity == "critical"]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if not c.success and c.severity != "critical"]

    @property
    def tolerated(self) -> list[Check]:
        """Passing rules that let bad values through (``mostly``): each says how many, with examples."""
        return [c for c in self.checks if c.success and c.tolerated]

    @property
    def passed(self) -> bool:
        return self.read_error is None and not self.failures

    @classmethod
    def unreadable(cls, source: str, message: str) -> SourceReport:
        check = Check("input must be a readable table", None, "critical", False, message)
        return cls(source=source, rows=0, checks=[check], gx_result={}, read_error=message)


def prepare(frame: pd.DataFrame, source: Source) -> pd.DataFrame:
    """Parse declared timestamp columns (unparseable -> NaT, caught by the null rules); nothing else."""
    out = frame.copy()
    for column in source.columns:
        if column.dtype == "timestamp" and column.name in out.columns:
            out[column.name] = parse_timestamps(out[column.name], column.timezone)
    return out


def timestamp_checks(raw: pd.DataFrame, prepared: pd.DataFrame, source: Source) -> list[Check]:
    """One critical check per timestamp column: every present value was read as an instant (a value
    without an offset needs the column's declared ``timezone``; local times a DST change skips or
    repeats are refused), with the refused values shown."""
    checks = []
    for column in source.columns:
        if column.dtype != "timestamp" or column.name not in raw.columns:
            continue
        refused = raw[column.name].notna() & prepared[column.name].isna()
        bad, n = int(refused.sum()), len(raw)
        zone = column.timezone
        rule = "timestamps must carry an offset" + (
            f" or be local times of {zone} (times a DST change skips or repeats are refused)"
            if zone
            else " (the declaration gives no timezone for naive values)"
        )
        examples = raw.loc[refused, column.name].astype(str).head(5).tolist()
        observed = (
            f"{bad} of {n} rows unreadable ({(bad / n if n else 0):.2%}); e.g. {examples}"
            if bad
            else "passed"
        )
        checks.append(Check(rule, column.name, "critical", bad == 0, observed))
    return checks


def repair(frame: pd.DataFrame, source: Source) -> tuple[pd.DataFrame, list[str]]:
    """Columns declared ``repair="null"``: readings outside their range become null. Returns the frame
    and one line per repaired column (how many, examples), for the manifest and the report."""
    out, lines = frame, []
    for column in source.columns:
        if column.repair != "null" or column.name not in frame.columns:
            continue
        values = pd.to_numeric(frame[column.name], errors="coerce")
        low = values < column.min_value if column.min_value is not None else False
        high = values > column.max_value if column.max_value is not None else False
        implausible = (low | high) & values.notna()
        if implausible.any():
            if out is frame:
                out = frame.copy()
            examples = values[implausible].head(5).tolist()
            out.loc[implausible, column.name] = None
            lines.append(
                f"{source.name}.{column.name}: {int(implausible.sum())} of {len(frame)} readings outside "
                f"[{column.min_value}, {column.max_value}] set to null; e.g. {examples}"
            )
    return out, lines


def conform(frame: pd.DataFrame, source: Source) -> pd.DataFrame:
    """The validated-zone schema: declared columns only, in declared order, with declared dtypes."""
    out = pd.DataFrame(index=frame.index)
    for column in source.columns:
        values = frame[column.name]
        if column.dtype == "int64":  # (nullable when the column may hold nulls: a CSV's empty fields)
            out[column.name] = values.astype("Int64" if values.isna().any() else "int64")
        elif column.dtype == "float64":
            out[column.name] = values.astype("float64")
        elif column.dtype == "string":
            out[column.name] = values.astype("object").where(values.notna(), None)
        else:
            out[column.name] = values
    return out.reset_index(drop=True)


def _column_expectations(column: Column, gx: Any) -> list[Any]:
    expect = gx.expectations
    name, rules = column.name, []
    rules.append(expect.ExpectColumnToExist(column=name))
    if column.dtype in PANDAS_TYPES:
        rules.append(
            expect.ExpectColumnValuesToBeInTypeList(column=name, type_list=PANDAS_TYPES[column.dtype])
        )
    elif column.dtype == "string":
        rules.append(expect.ExpectColumnValuesToBeOfType(column=name, type_="str"))
    if column.max_null_share == 0:
        rules.append(expect.ExpectColumnValuesToNotBeNull(column=name))
    elif column.max_null_share < 1:
        rules.append(
            expect.ExpectColumnValuesToNotBeNull(column=name, mostly=round(1 - column.max_null_share, 6))
        )
    if column.min_value is not None or column.max_value is not None:
        rules.append(
            expect.ExpectColumnValuesToBeBetween(
                column=name, min_value=column.min_value, max_value=column.max_value, mostly=column.mostly
            )
        )
    if column.allowed is not None:
        rules.append(
            expect.ExpectColumnValuesToBeInSet(column=name, value_set=column.allowed, mostly=column.mostly)
        )
    if column.regex is not None:
        rules.append(
            expect.ExpectColumnValuesToMatchRegex(column=name, regex=column.regex, mostly=column.mostly)
        )
    if column.clock_time:
        rules.append(
            _custom().ExpectColumnValuesToBeClockTimes(
                column=name, allow_2400=column.allow_2400, mostly=column.mostly
            )
        )
    return rules


def build_expectations(source: Source, context: ValidationContext, frame: pd.DataFrame) -> list[Any]:
    """All GX expectations of ``source`` for the interval described by ``context``.

    Reference rules list only the referenced values that occur in ``frame``: "every value is in R" holds
    exactly when "every value is in R restricted to the observed values" does, and it keeps a 1,458-code
    airport table out of the suite (GX copies expectation kwargs thousands of times per validation).
    """
    import great_expectations as gx

    expect = gx.expectations
    rules: list[Any] = []
    for column in source.columns:
        rules.extend(_column_expectations(column, gx))
    if source.kind == "event":
        rules.append(
            expect.ExpectColumnValuesToBeBetween(
                column=source.event_timestamp,
                min_value=pd.Timestamp(context.interval.start).tz_convert("UTC"),
                max_value=pd.Timestamp(context.interval.end).tz_convert("UTC"),
                strict_max=True,
                meta={"rule": "event time inside the data interval"},
            )
        )
    for check in source.cross_checks:
        from airloop.crosscheck import columns_of

        rules.append(
            _custom().ExpectRowsToPassCrossCheck(
                column_list=columns_of(check),
                rule=check.model_dump(),
                meta={"rule": f"fields agree: {check.describe()}"},
            )
        )
    if len(source.key) == 1:
        rules.append(expect.ExpectColumnValuesToBeUnique(column=source.key[0]))
    else:
        rules.append(expect.ExpectCompoundColumnsToBeUnique(column_list=source.key))
    for ref in source.references:
        known = set(context.reference_values.get((ref.to_source, ref.to_column), [])) | set(ref.extra_values)
        observed = set(frame[ref.column].dropna().unique().tolist()) if ref.column in frame.columns else set()
        values = sorted(known & observed, key=str)
        rules.append(
            expect.ExpectColumnValuesToBeInSet(
                column=ref.column,
                value_set=values,
                mostly=ref.mostly,
                meta={"rule": f"known in {ref.to_source}.{ref.to_column}"},
            )
        )
    count = source.row_count
    rules.append(
        expect.ExpectTableRowCountToBeBetween(
            min_value=count.min_rows, max_value=count.max_rows, severity=count.severity
        )
    )
    history = context.row_history[-count.history_days :]
    if count.history_low is not None and len(history) >= count.min_history:
        mid = median(history)
        rules.append(
            expect.ExpectTableRowCountToBeBetween(
                min_value=math.floor(count.history_low * mid),
                max_value=math.ceil((count.history_high or 1e9) * mid),
                severity=count.severity,
                meta={
                    "rule": f"row count within {count.history_low}..{count.history_high} x median of "
                    f"{len(history)} recent days ({mid:g})"
                },
            )
        )
    return rules


@lru_cache(maxsize=1)
def _custom() -> Any:
    """Airloop's own GX expectations (registered with GX when first imported)."""
    from airloop import gx_expectations

    return gx_expectations


@lru_cache(maxsize=1)
def _batch_definition() -> Any:
    """One ephemeral GX context per process (creating it costs more than validating a day)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("airloop").add_dataframe_asset("interval")
    return asset.add_batch_definition_whole_dataframe("whole_interval")


_SNAPSHOT_REPORTS: dict[tuple[str, int, tuple[int, ...]], SourceReport] = {}


def validate_frame(frame: pd.DataFrame, source: Source, context: ValidationContext) -> SourceReport:
    """Validate ``frame`` (already ``prepare``d) against the declaration; never raises on bad data.

    A dimension snapshot identical to one already validated in this process (same declaration, same
    content, same row history) gets that report again: its rules do not depend on the interval, and a
    reference table that did not change need not cost a GX run every day.
    """
    if source.kind == "dimension":
        key = (source.model_dump_json(), _content_hash(frame), tuple(context.row_history))
        if key not in _SNAPSHOT_REPORTS:
            if len(_SNAPSHOT_REPORTS) > 64:
                _SNAPSHOT_REPORTS.clear()
            _SNAPSHOT_REPORTS[key] = _run_gx(frame, source, context)
        return _SNAPSHOT_REPORTS[key]
    return _run_gx(frame, source, context)


def _content_hash(frame: pd.DataFrame) -> int:
    values = int(pd.util.hash_pandas_object(frame, index=False).sum()) if len(frame) else 0
    return hash((values, tuple(frame.columns), tuple(str(t) for t in frame.dtypes)))


def _run_gx(frame: pd.DataFrame, source: Source, context: ValidationContext) -> SourceReport:
    import great_expectations as gx

    suite = gx.ExpectationSuite(
        name=f"{source.name}_{context.interval.ds}", expectations=build_expectations(source, context, frame)
    )
    result = _batch_definition().get_batch(batch_parameters={"dataframe": frame}).validate(suite)
    checks = [_describe(r) for r in result.results]
    return SourceReport(source=source.name, rows=len(frame), checks=checks, gx_result=result.to_json_dict())


_RULES = {
    "expect_column_to_exist": "column must exist",
    "expect_column_values_to_be_in_type_list": "dtype must be one of {type_list}",
    "expect_column_values_to_be_of_type": "values must be of type {type_}",
    "expect_column_values_to_not_be_null": "values must not be null",
    "expect_column_values_to_be_between": "values must lie in [{min_value}, {max_value}]",
    "expect_column_values_to_be_in_set": "values must be in the allowed set",
    "expect_column_values_to_match_regex": "values must match {regex}",
    "expect_column_values_to_be_unique": "values must be unique",
    "expect_compound_columns_to_be_unique": "key {column_list} must be unique",
    "expect_table_row_count_to_be_between": "row count must lie in [{min_value}, {max_value}]",
    "expect_column_values_to_be_clock_times": "values must be HHMM clock times",
}


def _describe(result: Any) -> Check:
    config = result.expectation_config
    kwargs = dict(config.kwargs)
    rule = (config.meta or {}).get("rule") or _RULES.get(config.type, config.type).format_map(_Blank(kwargs))
    if config.type == "expect_column_values_to_not_be_null" and kwargs.get("mostly", 1) < 1:
        rule += f" (at most {1 - kwargs['mostly']:.1%} null)"
    elif kwargs.get("mostly", 1) < 1:
        rule += f" (mostly {kwargs['mostly']:.1%})"
    unexpected = (result.result or {}).get("unexpected_count") or 0
    tolerated = (
        int(unexpected) if result.success and config.type != "expect_column_values_to_not_be_null" else 0
    )
    return Check(
        rule=rule,
        column=kwargs.get("column"),
        severity=str(getattr(config.severity, "value", "critical")),
        success=bool(result.success),
        observed=_observed(result),
        tolerated=tolerated,
    )


def _observed(result: Any) -> str:
    info = result.exception_info or {}
    if info.get("raised_exception"):
        return f"could not be evaluated: {info.get('exception_message')}"
    for value in info.values():  # GX nests exceptions per metric when a metric fails
        if isinstance(value, dict) and value.get("raised_exception"):
            return f"could not be evaluated: {value.get('exception_message')}"
    res = result.result or {}
    if "unexpected_count" in res and res.get("element_count") is not None:
        n, bad = res["element_count"], res["unexpected_count"]
        sample = res.get("partial_unexpected_list") or []
        shown = f"; e.g. {sample[:5]}" if sample else ""
        return f"{bad} of {n} rows unexpected ({(bad / n if n else 0):.2%}){shown}"
    if "observed_value" in res:
        return f"observed {res['observed_value']}"
    return "passed" if result.success else "failed"


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "?"
