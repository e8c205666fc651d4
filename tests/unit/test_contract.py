"""The request contract (airloop.serving.contract): the row model's published JSON schema and its refusals
at the edges of the calendar (issue 13's HTTP fuzz found 500s there)."""

from __future__ import annotations

import pytest
from conftest import ROW
from pydantic import ValidationError

from airloop.serving.contract import row_model
from airloop.usecases import load_use_case


def keywords(schema):
    if isinstance(schema, dict):
        yield from schema
        for value in schema.values():
            yield from keywords(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from keywords(value)


def test_bounds_are_published_as_json_schema_and_still_enforced():
    """A bound beside a validator must not be published as pydantic's "ge"/"le" (no JSON Schema reader
    knows them: the OpenAPI document said nothing of the ranges)."""
    Row = row_model(load_use_case("flights"))
    schema = Row.model_json_schema()
    assert not {"ge", "le"} & set(keywords(schema))
    year, clock = schema["properties"]["year"], schema["properties"]["sched_dep_time"]
    assert (year["minimum"], year["maximum"], clock["minimum"], clock["maximum"]) == (2000, 2100, 0, 2359)
    assert schema["properties"]["tailnum"]["anyOf"][0]["pattern"] == "^N?[A-Z0-9]{2,6}$"
    assert Row.model_validate({**ROW, "tailnum": None}).tailnum is None
    for field, value in [("year", 1999), ("sched_dep_time", 1299), ("flight", True), ("tailnum", "x")]:
        with pytest.raises(ValidationError) as error:
            Row.model_validate({**ROW, field: value})
        assert error.value.errors()[0]["loc"] == (field,)


@pytest.mark.parametrize(
    "time_hour, says",
    [
        ("0001-01-01T00:00:00+01:00", "out of range as a UTC instant"),  # year 0 in UTC
        ("9999-12-31T23:00:00-05:00", "out of range as a UTC instant"),  # year 10000 in UTC
        ("0001-01-01T00:00:00Z", "time_hour, year, month, day, hour cannot be checked"),  # year 0 in New York
    ],
)
def test_an_instant_at_the_edge_of_the_calendar_is_refused_not_a_crash(time_hour, says):
    Row = row_model(load_use_case("flights"))
    with pytest.raises(ValidationError, match=says):
        Row.model_validate({**ROW, "time_hour": time_hour})


def test_a_naive_time_at_the_edge_of_the_calendar_is_refused_not_a_crash():
    Row = row_model(load_use_case("grid_peak"))  # naive values are local time in Australia/Brisbane
    with pytest.raises(ValidationError, match="out of range as a UTC instant"):
        Row.model_validate(
            {"period_start": "0001-01-01T00:00:00", "period": 1, "workday": 1, "temperature": 20}
        )
