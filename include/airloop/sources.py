"""Source adapters: where raw records come from, one data interval at a time.

``DataSource`` is the narrow interface the ingestion code depends on. Two implementations:

- ``ReplaySource`` presents the vendored demo data set as an operational system: asked for a day, it
  yields exactly the events of that day (and the current snapshot of each reference table), as a
  database or bucket would.
- ``FolderSource`` reads a folder of Parquet/CSV files you bring: ``<root>/<source>.parquet|csv``,
  ``<root>/<source>/*.parquet|csv`` or day partitions ``<root>/<source>/ds=YYYY-MM-DD/*``.

Both return records exactly as the source holds them (strings stay strings); parsing and checking happen
in validation, so the raw zone keeps the source's own truth.
"""

from __future__ import annotations

import abc
import logging
from functools import lru_cache
from pathlib import Path

import pandas as pd

from airloop.intervals import DayInterval
from airloop.usecase import Source

logger = logging.getLogger(__name__)

READABLE = (".parquet", ".csv")


class SourceReadError(Exception):
    """Input exists but cannot be read as a table; ``files`` holds its bytes so it can be quarantined."""

    def __init__(self, source: str, message: str, files: dict[str, bytes]) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message
        self.files = files


class DataSource(abc.ABC):
    """Yields the records of one source for one data interval."""

    @abc.abstractmethod
    def extract(self, source: Source, interval: DayInterval) -> pd.DataFrame:
        """Rows of ``source`` in ``interval`` (events) or its current snapshot (dimensions)."""


def parse_timestamps(values: pd.Series) -> pd.Series:
    """ISO-8601 strings (or datetimes) -> UTC timestamps; unparseable values become NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
    return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")


def _in_interval(frame: pd.DataFrame, column: str, interval: DayInterval, keep_unparsed: bool) -> pd.Series:
    stamps = parse_timestamps(frame[column])
    inside = (stamps >= pd.Timestamp(interval.start)) & (stamps < pd.Timestamp(interval.end))
    return inside | (stamps.isna() & keep_unparsed)


class ReplaySource(DataSource):
    """The vendored demo data, replayed one interval at a time (``<root>/<source>.parquet``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def extract(self, source: Source, interval: DayInterval) -> pd.DataFrame:
        table, stamps = _load_indexed(self.root / f"{source.name}.parquet", source.event_timestamp)
        if source.kind == "dimension" or stamps is None:
            return table.copy()
        lo, hi = pd.Timestamp(interval.start), pd.Timestamp(interval.end)
        start, stop = stamps.searchsorted(lo, "left"), stamps.searchsorted(hi, "left")
        return table.iloc[start:stop].reset_index(drop=True)


@lru_cache(maxsize=16)
def _load_indexed(path: Path, timestamp: str | None) -> tuple[pd.DataFrame, pd.Series | None]:
    """Read a whole replay table once per process, sorted by its event timestamp for fast slicing."""
    table = pd.read_parquet(path)
    if timestamp is None:
        return table, None
    stamps = parse_timestamps(table[timestamp])
    order = stamps.argsort(kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    return table, stamps.iloc[order].reset_index(drop=True)


class FolderSource(DataSource):
    """A folder of Parquet/CSV files ("bring your own data")."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _files(self, source: Source, interval: DayInterval) -> tuple[list[Path], bool]:
        """Files to read, and whether they are already exactly this interval's partition."""
        folder = self.root / source.name
        partition = folder / f"ds={interval.ds}"
        if partition.is_dir():
            return sorted(p for p in partition.iterdir() if p.is_file() and not p.name.startswith(".")), True
        if folder.is_dir():
            files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
            return [p for p in files if not any(part.startswith("ds=") for part in p.relative_to(folder).parts)], False
        return [self.root / f"{source.name}{ext}" for ext in READABLE if (self.root / f"{source.name}{ext}").is_file()], False

    def extract(self, source: Source, interval: DayInterval) -> pd.DataFrame:
        files, exact = self._files(source, interval)
        if not files:
            logger.warning("no files for %s on %s under %s", source.name, interval.ds, self.root)
            return pd.DataFrame(columns=[c.name for c in source.columns])
        frames = [_read_table(source.name, path) for path in files]
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        if source.kind == "event" and not exact and source.event_timestamp in frame.columns:
            # Rows whose timestamp cannot be parsed belong to no interval: keep them, so validation
            # reports them instead of the extract silently dropping them.
            frame = frame[_in_interval(frame, source.event_timestamp, interval, keep_unparsed=True)]
        return frame.reset_index(drop=True)


def _read_table(source: str, path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except Exception as err:  # any parser error means: not a table we can read
        kind = "CSV" if path.suffix == ".csv" else "Parquet"
        raise SourceReadError(
            source, f"{path.name} is not a readable {kind} file ({type(err).__name__}: {err})",
            {path.name: path.read_bytes()},
        ) from err


def make_source(kind: str, path: Path) -> DataSource:
    """The adapter the settings ask for."""
    if kind == "replay":
        return ReplaySource(path)
    if kind == "folder":
        return FolderSource(path)
    raise ValueError(f"unknown source kind {kind!r} (expected 'replay' or 'folder')")
