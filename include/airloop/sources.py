"""Source adapters: where raw records come from, one data interval at a time.

``DataSource`` is the narrow interface the ingestion code depends on. Two implementations:

- ``ReplaySource`` presents the vendored demo data set as an operational system: asked for a day, it
  yields exactly the events of that day (and the current snapshot of each reference table), as a
  database or bucket would.
- ``FolderSource`` reads a folder of Parquet/CSV files you bring: ``<root>/<source>.parquet|csv``,
  ``<root>/<source>/*.parquet|csv`` or day partitions ``<root>/<source>/ds=YYYY-MM-DD/*``.

Both return records as the source holds them (Parquet as typed; CSV read with the declared column types,
timestamps still as text); parsing timestamps and checking happen in validation, so the raw zone keeps
the source's own truth.
"""

from __future__ import annotations

import abc
import csv
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


_OFFSET = r"[T ]\d{2}(?::?\d{2}){0,2}(?:\.\d+)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
"""A time of day followed by an offset (``...T06:00:00Z``, ``... 10:00+10:00``); a bare date has none."""


def parse_timestamps(values: pd.Series, naive_timezone: str | None = None) -> pd.Series:
    """ISO-8601 strings (or datetimes) -> UTC timestamps; unparseable values become NaT.

    A value with an offset (``Z``, ``+10:00``) is converted by its own offset. A naive value is local time
    in ``naive_timezone`` (declare ``"UTC"`` for naive UTC); with ``None`` a naive value is refused (NaT),
    never silently taken as UTC. A local time that does not exist or occurs twice (a DST change) becomes
    NaT too: ``validation.timestamp_checks`` reports every refused value with its reason, instead of a
    guess being published.
    """

    def localize(stamps: pd.Series) -> pd.Series:
        if naive_timezone is None:
            return pd.Series(pd.NaT, index=stamps.index, dtype="datetime64[ns, UTC]")
        return stamps.dt.tz_localize(naive_timezone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")

    if pd.api.types.is_datetime64_any_dtype(values):
        return localize(values) if values.dt.tz is None else values.dt.tz_convert("UTC")
    text = values.astype("string")
    has_offset = text.str.strip().str.contains(_OFFSET, regex=True).fillna(False).to_numpy(dtype=bool)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    if has_offset.any():
        out[has_offset] = pd.to_datetime(values[has_offset], utc=True, errors="coerce", format="ISO8601")
    if (~has_offset).any():
        naive = pd.to_datetime(values[~has_offset], errors="coerce", format="ISO8601")
        out[~has_offset] = localize(naive.astype("datetime64[ns]"))
    return out


def _in_interval(
    frame: pd.DataFrame, source: Source, interval: DayInterval, keep_unparsed: bool
) -> pd.Series:
    column = source.column(source.event_timestamp or "")
    stamps = parse_timestamps(frame[column.name], column.timezone)
    inside = (stamps >= pd.Timestamp(interval.start)) & (stamps < pd.Timestamp(interval.end))
    return inside | (stamps.isna() & keep_unparsed)


class ReplaySource(DataSource):
    """The vendored demo data, replayed one interval at a time (``<root>/<source>.parquet`` or ``.csv``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def extract(self, source: Source, interval: DayInterval) -> pd.DataFrame:
        path = next(
            (p for p in (self.root / f"{source.name}{ext}" for ext in READABLE) if p.is_file()),
            self.root / f"{source.name}.parquet",
        )
        table, stamps = _load_indexed(path, source.model_dump_json())
        if source.kind == "dimension" or stamps is None:
            return table.copy()
        lo, hi = pd.Timestamp(interval.start), pd.Timestamp(interval.end)
        start, stop = stamps.searchsorted(lo, "left"), stamps.searchsorted(hi, "left")
        return table.iloc[start:stop].reset_index(drop=True)


@lru_cache(maxsize=16)
def _load_indexed(path: Path, declaration: str) -> tuple[pd.DataFrame, pd.Series | None]:
    """Read a whole replay table once per process, sorted by its event timestamp for fast slicing
    (``declaration``: the source's JSON, a hashable cache key)."""
    source = Source.model_validate_json(declaration)
    table = _read_table(source, path)
    if source.event_timestamp is None:
        return table, None
    column = source.column(source.event_timestamp)
    stamps = parse_timestamps(table[column.name], column.timezone)
    if unparsed := int(stamps.isna().sum()):  # recorded data: such rows belong to no day
        logger.warning(
            "%s: %d rows with no readable %s are left out of the replay", path.name, unparsed, column.name
        )
        table, stamps = table[stamps.notna().to_numpy()], stamps[stamps.notna()]
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
            return [
                p for p in files if not any(part.startswith("ds=") for part in p.relative_to(folder).parts)
            ], False
        return [
            self.root / f"{source.name}{ext}"
            for ext in READABLE
            if (self.root / f"{source.name}{ext}").is_file()
        ], False

    def extract(self, source: Source, interval: DayInterval) -> pd.DataFrame:
        files, exact = self._files(source, interval)
        if not files:
            logger.warning("no files for %s on %s under %s", source.name, interval.ds, self.root)
            return pd.DataFrame(columns=[c.name for c in source.columns])
        frames = [_read_table(source, path) for path in files]
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        if source.kind == "event" and not exact and source.event_timestamp in frame.columns:
            # Rows whose timestamp cannot be parsed belong to no interval: keep them, so validation
            # reports them instead of the extract silently dropping them.
            frame = frame[_in_interval(frame, source, interval, keep_unparsed=True)]
        return frame.reset_index(drop=True)


NUMERIC_NA = ["NA", "N/A", "NaN", "nan", "null", "NULL", "None"]
CSV_TYPES = {"int64": "Int64", "float64": "float64", "string": "string", "timestamp": "string"}


def _read_table(source: Source, path: Path) -> pd.DataFrame:
    """One file as a table. A CSV is read with the declared column types (a code such as ``06`` stays the
    string ``06``; an integer column may hold nulls), undeclared columns as strings; a value that does not
    fit its type makes the file unreadable (it is quarantined with the parser's reason). A header that
    occurs twice is refused: the reader would silently rename one copy."""
    try:
        if path.suffix == ".csv":
            with open(path, newline="", encoding="utf-8-sig") as handle:
                header = next(csv.reader(handle), [])
            if duplicated := sorted({h for h in header if header.count(h) > 1}):
                raise ValueError(f"duplicate column header(s) {duplicated}")
            declared = {c.name: CSV_TYPES[c.dtype] for c in source.columns}
            # An empty field is null everywhere; the usual spellings of a missing number (NA, NaN, null)
            # only in numeric and timestamp columns: in a string column "NA" may be a real code.
            kinds = {c.name: c.dtype for c in source.columns}
            missing = {h: ["", *(NUMERIC_NA if kinds.get(h) not in (None, "string") else [])] for h in header}
            frame = pd.read_csv(
                path,
                dtype={h: declared.get(h, "string") for h in header},
                encoding="utf-8-sig",
                keep_default_na=False,
                na_values=missing,
            )
            for column in source.columns:  # back to the platform's plain dtypes (nullable ints stay exact)
                if column.name in frame.columns and column.dtype in ("string", "timestamp"):
                    frame[column.name] = (
                        frame[column.name].astype(object).where(frame[column.name].notna(), None)
                    )
                elif (
                    column.name in frame.columns
                    and column.dtype == "int64"
                    and not frame[column.name].isna().any()
                ):
                    frame[column.name] = frame[column.name].astype("int64")
            return frame
        return pd.read_parquet(path)
    except Exception as err:  # any parser error means: not a table we can read
        kind = "CSV" if path.suffix == ".csv" else "Parquet"
        raise SourceReadError(
            source.name,
            f"{path.name} is not a readable {kind} file ({type(err).__name__}: {err})",
            {path.name: path.read_bytes()},
        ) from err


def make_source(kind: str, path: Path) -> DataSource:
    """The adapter the settings ask for."""
    if kind == "replay":
        return ReplaySource(path)
    if kind == "folder":
        return FolderSource(path)
    raise ValueError(f"unknown source kind {kind!r} (expected 'replay' or 'folder')")
