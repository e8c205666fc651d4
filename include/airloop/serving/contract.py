"""The request contract of the prediction API, generated from the use-case declaration.

Every column the primary source declares as known before the event becomes a field with the declared
type and rules (allowed values, pattern, range, HHMM clock times with minutes < 60); numbers are numbers
(a boolean or a string is refused, not coerced); the source's cross-field rules (``Source.cross_checks``:
date fields that restate the event time, a clock equal to hour and minute) hold for every row; unknown
fields are refused. A violation is a 4xx naming the field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    create_model,
    model_validator,
)

from airloop.crosscheck import columns_of, row_disagreement
from airloop.usecase import UseCase

PY_TYPES: dict[str, Any] = {"int64": int, "float64": float, "string": str, "timestamp": datetime}


def row_model(use_case: UseCase) -> type[BaseModel]:
    """A pydantic model of one request row (e.g. one scheduled flight), named after the use case."""
    source = use_case.source(use_case.primary_source)
    fields: dict[str, Any] = {}
    for name in use_case.known_before_event:
        column = source.column(name)
        kind: Any = Literal[tuple(column.allowed)] if column.allowed else PY_TYPES[column.dtype]  # type: ignore[misc]
        # The value's own bounds go on the bare type, before any validator wraps it: pydantic publishes a
        # bound beside a validator as "ge"/"le", which no JSON Schema reader (client, fuzzer) understands.
        bounds: dict[str, Any] = {}
        if column.regex and not column.allowed:
            bounds["pattern"] = column.regex
        if column.min_value is not None and column.dtype != "timestamp":
            bounds["ge"] = column.min_value
        if column.max_value is not None and column.dtype != "timestamp":
            bounds["le"] = column.max_value
        if column.clock_time:
            bounds["ge"], bounds["le"] = 0, 2400 if column.allow_2400 else 2359
        if bounds:
            kind = Annotated[kind, Field(**bounds)]
        if column.clock_time:
            kind = Annotated[kind, AfterValidator(_clock_time)]
        if column.dtype in ("int64", "float64") and not column.allowed:
            kind = Annotated[kind, BeforeValidator(_a_number)]
        if column.dtype == "timestamp":
            kind = Annotated[kind, AfterValidator(_as_utc(column.timezone))]
        described = Field(description=column.description or None)
        if column.max_null_share > 0:
            fields[name] = (Annotated[kind | None, described], None)
        else:
            fields[name] = (Annotated[kind, described], ...)
    name = "".join(part.title() for part in use_case.name.split("_")) + "Row"
    checks = [c for c in source.cross_checks if all(n in fields for n in columns_of(c))]

    def agree(row: BaseModel) -> BaseModel:
        for check in checks:
            try:
                why = row_disagreement(row.__dict__, check)
            except OverflowError as error:  # e.g. 0001-01-01T00:00Z: no such local time in New York
                why = f"{', '.join(columns_of(check))} cannot be checked against each other: {error}"
            if why is not None:
                raise ValueError(why)
        return row

    validators = {"_agree": model_validator(mode="after")(agree)} if checks else {}
    return create_model(
        name,
        __config__=ConfigDict(extra="forbid", strict=False),
        __validators__=validators,  # type: ignore[arg-type]
        **fields,
    )


def _clock_time(value: Any) -> Any:
    if value is not None and value != 2400 and int(value) % 100 >= 60:
        raise ValueError(f"{value} is not an HHMM clock time (minutes {int(value) % 100} >= 60)")
    return value


def _a_number(value: Any) -> Any:
    """A JSON number (an int for an integer field, as pydantic then checks): not a boolean, not a string."""
    if isinstance(value, bool) or isinstance(value, str):
        raise ValueError(f"must be a number, got {type(value).__name__} {value!r}")
    return value


def _as_utc(naive_timezone: str | None) -> Any:
    """A timestamp field's value as a UTC instant: a naive value is local time of the column's declared
    timezone, and refused when none is declared, as ingestion reads the same column."""
    zone = ZoneInfo(naive_timezone or "UTC")

    def convert(value: datetime) -> datetime:
        try:
            return to_utc(value)
        except OverflowError:  # 0001-01-01T00:00+01:00, 9999-12-31T23:00-05:00: no such UTC instant
            raise ValueError(f"{value.isoformat()} is out of range as a UTC instant") from None

    def to_utc(value: datetime) -> datetime:
        if value.tzinfo is None and naive_timezone is None:
            raise ValueError(f"{value} has no UTC offset (write e.g. {value.isoformat()}Z)")
        if value.tzinfo is None:
            # A local time a DST change skips or repeats is refused, as ingestion refuses it.
            aware = value.replace(tzinfo=zone)
            if (
                aware != aware.astimezone(UTC).astimezone(zone)
                or aware.utcoffset() != value.replace(tzinfo=zone, fold=1).utcoffset()
            ):
                raise ValueError(f"{value} does not exist or is ambiguous in {zone.key} (a DST change)")
            value = aware
        return value.astimezone(UTC)

    return convert


class PredictionRow(BaseModel):
    probability: float
    label: int
    model_version: str
    flags: dict[str, int]
