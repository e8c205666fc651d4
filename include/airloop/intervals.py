"""Data intervals as local calendar days, and how a range of them is split into work chunks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class DayInterval:
    """One local calendar day ``[start, end)``; ``start``/``end`` are timezone-aware datetimes."""

    day: date
    tz: str

    @property
    def start(self) -> datetime:
        return datetime(self.day.year, self.day.month, self.day.day, tzinfo=ZoneInfo(self.tz))

    @property
    def end(self) -> datetime:
        nxt = self.day + timedelta(days=1)
        return datetime(nxt.year, nxt.month, nxt.day, tzinfo=ZoneInfo(self.tz))

    @property
    def ds(self) -> str:
        return self.day.isoformat()


def days_in_interval(start: datetime, end: datetime, tz: str) -> list[date]:
    """Local days whose midnight lies in ``[start, end)``.

    A daily Airflow run in ``tz`` has exactly one; a run with a wider interval has several. An interval
    that contains no local midnight yields no day (``ValueError``), so a misconfigured schedule is loud.
    """
    if end <= start:
        raise ValueError(f"empty interval: {start} .. {end}")
    zone = ZoneInfo(tz)
    first = start.astimezone(zone).date()
    if datetime(first.year, first.month, first.day, tzinfo=zone) < start:
        first += timedelta(days=1)
    days = []
    current = first
    while datetime(current.year, current.month, current.day, tzinfo=zone) < end:
        days.append(current)
        current += timedelta(days=1)
    if not days:
        raise ValueError(f"interval {start} .. {end} holds no local midnight in {tz}")
    return days


def last_complete_day(instant: datetime, tz: str) -> date:
    """The last local day that has fully ended at ``instant`` (midnight Jan 6 -> Jan 5;
    10:00 Jan 5 -> Jan 4)."""
    return instant.astimezone(ZoneInfo(tz)).date() - timedelta(days=1)


def day_range(first: date, last: date) -> list[date]:
    """All days from ``first`` to ``last`` inclusive."""
    if last < first:
        raise ValueError(f"last day {last} is before first day {first}")
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def chunk(days: list[date], size: int) -> list[list[str]]:
    """Split ``days`` (sorted) into consecutive chunks of at most ``size`` ISO dates."""
    if size < 1:
        raise ValueError("chunk size must be >= 1")
    ordered = sorted(days)
    return [[d.isoformat() for d in ordered[i : i + size]] for i in range(0, len(ordered), size)]
