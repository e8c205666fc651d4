"""Suites built from the declaration, run with real Great Expectations on real and damaged days."""

from datetime import date

import pandas as pd
import pytest

from airloop.intervals import DayInterval
from airloop.sources import ReplaySource
from airloop.usecases import load_use_case
from airloop.validation import ValidationContext, conform, prepare, validate_frame

UC = load_use_case("flights")
FLIGHTS = UC.source("flights")
JAN1 = DayInterval(date(2013, 1, 1), UC.timezone)


@pytest.fixture(scope="module")
def day():
    raw = ReplaySource("include/data/nycflights13").extract(FLIGHTS, JAN1)
    return prepare(raw, FLIGHTS)


@pytest.fixture(scope="module")
def context():
    refs = {}
    for name, column in [("airlines", "carrier"), ("airports", "faa")]:
        snapshot = ReplaySource("include/data/nycflights13").extract(UC.source(name), JAN1)
        refs[(name, column)] = snapshot[column].tolist()
    return ValidationContext(JAN1, refs, [])


def test_real_day_passes(day, context):
    report = validate_frame(day, FLIGHTS, context)
    assert report.passed, [c.line() for c in report.failures]
    assert report.rows == 842 and len(report.checks) > 60


def failures(frame, context):
    report = validate_frame(frame, FLIGHTS, context)
    assert not report.passed
    return [c.line() for c in report.failures]


def test_clock_times(day, context):
    bad = day.copy()
    bad.loc[bad.index[:2], "sched_dep_time"] = 1275  # 12:75
    assert any(
        "sched_dep_time: values must be HHMM clock times -> 2 of 842" in line
        for line in failures(bad, context)
    )


def test_event_outside_interval(day, context):
    bad = day.copy()
    bad.loc[bad.index[:1], "time_hour"] = pd.Timestamp("2013-01-03T12:00Z")
    assert any(
        "time_hour: event time inside the data interval -> 1 of 842" in line
        for line in failures(bad, context)
    )


def test_unparseable_timestamp_is_caught_as_null(context):
    raw = ReplaySource("include/data/nycflights13").extract(FLIGHTS, JAN1).copy()
    raw.loc[0, "time_hour"] = "yesterday-ish"
    lines = failures(prepare(raw, FLIGHTS), context)
    assert any("time_hour: values must not be null -> 1 of 842" in line for line in lines)


def test_row_count_against_history(day, context):
    quiet = ValidationContext(JAN1, context.reference_values, [2000, 2100, 1900, 2050])
    lines = failures(day, quiet)
    assert any(
        "row count within 0.5..1.6 x median of 4 recent days" in line and "observed 842" in line
        for line in lines
    )


def test_history_rule_needs_enough_history(day, context):
    short = ValidationContext(JAN1, context.reference_values, [5000, 5000])  # below min_history: not applied
    assert validate_frame(day, FLIGHTS, short).passed


def test_tolerance_mostly_applies_to_values_not_nulls(context):
    """A ``mostly`` tolerance (wind speed declared with 98% instead of flights' null repair) lets one bad
    reading through - counted, with the value shown - and fails on five."""
    spec = UC.source("weather")
    columns = [
        c.model_copy(update={"mostly": 0.98, "repair": "keep"}) if c.name == "wind_speed" else c
        for c in spec.columns
    ]
    tolerant = spec.model_copy(update={"columns": columns})
    weather = prepare(ReplaySource("include/data/nycflights13").extract(spec, JAN1), spec)
    one_bad = weather.copy()
    one_bad.loc[one_bad.index[:1], "wind_speed"] = 1048.36  # the real bad reading of 2013-02-12
    report = validate_frame(one_bad, tolerant, context)
    assert report.passed
    assert [c.column for c in report.tolerated] == ["wind_speed"] and "1048.36" in report.tolerated[0].line()
    many_bad = weather.copy()
    many_bad.loc[many_bad.index[:5], "wind_speed"] = 1048.36
    assert not validate_frame(many_bad, tolerant, context).passed


def test_short_weather_day_is_a_warning_not_a_failure(context):
    weather = prepare(
        ReplaySource("include/data/nycflights13").extract(UC.source("weather"), JAN1), UC.source("weather")
    )
    report = validate_frame(weather.head(30), UC.source("weather"), context)
    assert report.passed and any("row count" in c.rule for c in report.warnings)


def test_conform_gives_declared_schema(day):
    out = conform(day, FLIGHTS)
    assert list(out.columns) == [c.name for c in FLIGHTS.columns]
    assert str(out["time_hour"].dtype) == "datetime64[ns, UTC]" and out["distance"].dtype == "int64"


def test_unchanged_dimension_snapshot_reuses_report_but_changed_one_is_checked(context):
    planes_spec = UC.source("planes")
    planes = prepare(ReplaySource("include/data/nycflights13").extract(planes_spec, JAN1), planes_spec)
    first = validate_frame(planes, planes_spec, context)
    assert first.passed and validate_frame(planes.copy(), planes_spec, context) is first
    broken = planes.copy()
    broken.loc[broken.index[:3], "seats"] = -1
    report = validate_frame(broken, planes_spec, context)
    assert not report.passed and any("seats" in c.line() for c in report.failures)


def test_fields_that_restate_the_event_time_must_agree_with_it(day, context):
    """Issue 13 finding 2: rows whose date fields name another day (or a day that does not exist) than
    their event time, or whose HHMM clock disagrees with hour/minute, fail the day with the rule named."""
    bad = day.copy()
    bad.loc[bad.index[:3], "day"] = 2  # the 2nd, but scheduled on the 1st
    bad.loc[bad.index[3], ["month", "day"]] = [2, 30]  # 2013-02-30
    bad.loc[bad.index[4], "sched_dep_time"] = bad.loc[bad.index[4], "sched_dep_time"] + 1
    lines = failures(bad, context)
    parts = next(line for line in lines if "year = year, month = month, day = day, hour = hour" in line)
    assert "4 of 842" in parts and "America/New_York" in parts
    assert any("sched_dep_time = 100 x hour + minute" in line and "1 of 842" in line for line in lines)


def test_cross_checks_row_by_row():
    from datetime import UTC, datetime

    from airloop.crosscheck import agrees, row_disagreement
    from airloop.usecase import ClockParts, TimeParts

    parts = TimeParts(timestamp="t", timezone="America/New_York", parts={"day": "day", "hour": "hour"})
    clock = ClockParts(clock="hhmm", hour="hour", minute="minute")
    stamp = datetime(2013, 1, 2, 3, tzinfo=UTC)  # 2013-01-01 22:00 in New York
    row = {"t": stamp, "day": 1, "hour": 22, "hhmm": 2215, "minute": 15}
    assert row_disagreement(row, parts) is None and row_disagreement(row, clock) is None
    why = row_disagreement({**row, "day": 2}, parts)
    assert why is not None and "day=2" in why and "day=1 in America/New_York" in why
    assert "hhmm=2216" in (row_disagreement({**row, "hhmm": 2216}, clock) or "")
    assert row_disagreement({**row, "day": None}, parts) is None  # nulls: the null rules' business
    frame = pd.DataFrame([row, {**row, "day": 2}, {**row, "day": None}, {**row, "hhmm": 99}])
    assert agrees(frame, parts).tolist() == [True, False, True, True]
    assert agrees(frame, clock).tolist() == [True, True, True, False]
