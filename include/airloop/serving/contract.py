"""The request contract of the prediction API, generated from the use-case declaration.

Every column the primary source declares as known before the event becomes a field with the declared
type and rules (allowed values, pattern, range); a violation is a 4xx naming the field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from airloop.usecase import UseCase

PY_TYPES: dict[str, Any] = {"int64": int, "float64": float, "string": str, "timestamp": datetime}


def row_model(use_case: UseCase) -> type[BaseModel]:
    """A pydantic model of one request row (e.g. one scheduled flight), named after the use case."""
    source = use_case.source(use_case.primary_source)
    fields: dict[str, Any] = {}
    for name in use_case.known_before_event:
        column = source.column(name)
        kind: Any = Literal[tuple(column.allowed)] if column.allowed else PY_TYPES[column.dtype]  # type: ignore[misc]
        constraints: dict[str, Any] = {"description": column.description or None}
        if column.regex and not column.allowed:
            constraints["pattern"] = column.regex
        if column.min_value is not None and column.dtype != "timestamp":
            constraints["ge"] = column.min_value
        if column.max_value is not None and column.dtype != "timestamp":
            constraints["le"] = column.max_value
        if column.clock_time:
            constraints["ge"], constraints["le"] = 0, 2400 if column.allow_2400 else 2359
        if column.dtype == "timestamp":
            kind = Annotated[kind, AfterValidator(_as_utc(column.timezone))]
        if column.max_null_share > 0:
            fields[name] = (Annotated[kind | None, Field(**constraints)], None)
        else:
            fields[name] = (Annotated[kind, Field(**constraints)], ...)
    name = "".join(part.title() for part in use_case.name.split("_")) + "Row"
    return create_model(name, __config__=ConfigDict(extra="forbid", strict=False), **fields)


def _as_utc(naive_timezone: str | None) -> Any:
    """A timestamp field's value as a UTC instant: a naive value is local time of the column's declared
    timezone (UTC when none is declared), as ingestion reads the same column."""
    zone = ZoneInfo(naive_timezone or "UTC")

    def convert(value: datetime) -> datetime:
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
