from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from airloop.intervals import DayInterval, chunk, day_range, days_in_interval, last_complete_day

NY = ZoneInfo("America/New_York")


def test_day_interval_bounds_follow_local_midnight():
    jan1 = DayInterval(date(2013, 1, 1), "America/New_York")
    assert jan1.start.astimezone(ZoneInfo("UTC")).hour == 5
    assert jan1.end - jan1.start == timedelta(days=1)
    assert jan1.ds == "2013-01-01"


@pytest.mark.parametrize(
    "day, hours", [(date(2013, 3, 10), 23), (date(2013, 11, 3), 25), (date(2013, 6, 1), 24)]
)
def test_day_interval_handles_dst(day, hours):
    interval = DayInterval(day, "America/New_York")
    assert (
        interval.end.astimezone(ZoneInfo("UTC")) - interval.start.astimezone(ZoneInfo("UTC"))
    ) == timedelta(hours=hours)


def test_days_in_daily_interval_is_one_day():
    start = datetime(2013, 1, 5, tzinfo=NY)
    assert days_in_interval(start, start + timedelta(days=1), "America/New_York") == [date(2013, 1, 5)]


def test_days_in_wide_interval():
    start = datetime(2013, 1, 5, tzinfo=NY)
    assert len(days_in_interval(start, start + timedelta(days=7), "America/New_York")) == 7


@pytest.mark.parametrize("hours", [0, 5])
def test_interval_without_midnight_is_an_error(hours):
    start = datetime(2013, 1, 5, 1, tzinfo=NY)
    with pytest.raises(ValueError):
        days_in_interval(start, start + timedelta(hours=hours), "America/New_York")


@pytest.mark.parametrize(
    "instant, expected",
    [
        (datetime(2013, 1, 6, tzinfo=NY), date(2013, 1, 5)),
        (datetime(2013, 1, 5, 10, tzinfo=NY), date(2013, 1, 4)),
    ],
)
def test_last_complete_day(instant, expected):
    assert last_complete_day(instant, "America/New_York") == expected


def test_day_range_and_chunks():
    days = day_range(date(2013, 1, 1), date(2013, 12, 31))
    assert len(days) == 365
    chunks = chunk(days, 31)
    assert len(chunks) == 12 and chunks[0][0] == "2013-01-01" and chunks[-1][-1] == "2013-12-31"
    assert sum(len(c) for c in chunks) == 365
    with pytest.raises(ValueError):
        day_range(date(2013, 2, 1), date(2013, 1, 1))
    with pytest.raises(ValueError):
        chunk(days, 0)
