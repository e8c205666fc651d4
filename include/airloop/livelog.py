"""The live-traffic log: what the service served, appended without blocking requests.

Rows are queued by the request path and written by a background thread in small batches to a store;
``close`` drains the queue, so a graceful shutdown loses nothing; the service's journal
(``airloop.journal``) holds every answered row durably until it is stored, so a killed one loses nothing
either. The drift monitor reads the same store.

- embedded (``AIRLOOP_ENV=local``): Parquet in the lake,
  ``lake/live/ds=YYYY-MM-DD/hour=HH/part-<uuid>.parquet`` (by the time served, UTC), each file written
  atomically;
- production: the PostgreSQL table ``airloop_live_log`` (``AIRLOOP_POSTGRES_DSN``), created from the first
  rows' columns (a column that appears later is added), indexed on ``served_at``, filled with ``COPY``.

Both stores answer ``count_since(after)`` (the drift sensor) and ``scan(after, until, columns)`` (the drift
check: bounded-memory batches of the rows served in ``(after, until]``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd

from airloop.journal import Journal
from airloop.settings import Settings

logger = logging.getLogger(__name__)


class LiveLog:
    """The writer: ``append`` queues, a thread flushes every ``flush_rows`` rows or ``flush_seconds``.

    With a ``journal`` (the service's), each appended frame names the journal segment that already holds
    its rows durably; the segment is released once the frame is stored, and segments left by a process
    that died are stored first. A store that fails is retried with a growing pause (up to
    ``max_backoff`` seconds; no busy loop); what it still refuses at ``close`` stays in the journal for
    the next start (without a journal those rows are lost, and the log says how many)."""

    def __init__(
        self,
        store: Path | LiveStore,
        flush_rows: int = 500,
        flush_seconds: float = 2.0,
        journal: Journal | None = None,
        max_backoff: float = 30.0,
    ) -> None:
        self.store = store if isinstance(store, LiveStore) else ParquetLiveStore(Path(store))
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.journal = journal
        self.max_backoff = max_backoff
        self._queue: queue.Queue[tuple[pd.DataFrame, Path | None] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="live-log", daemon=True)
        self.rows_written = 0
        self.failures = 0
        self._thread.start()

    def append(self, rows: pd.DataFrame, segment: Path | None = None) -> None:
        """Queue served rows (must carry ``served_at``, a UTC timestamp column); ``segment``: the journal
        segment holding them, released once they are stored."""
        self._queue.put((rows, segment))

    def close(self, timeout: float = 30.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        pending: list[tuple[pd.DataFrame, Path | None]] = []
        if self.journal is not None:
            try:
                pending = [(frame, path) for path, frame in self.journal.recover()]
            except Exception:  # the service serves anyway; the next start tries again
                logger.exception("live log: recovering the journal failed")
        count = sum(len(frame) for frame, _ in pending)
        retry_at, pause = 0.0, self.flush_seconds
        while True:
            try:
                item = self._queue.get(timeout=self.flush_seconds)
            except queue.Empty:
                item = ...
            if item is None:
                if pending and not self._flush(pending):
                    self._give_up(pending)
                return
            if isinstance(item, tuple):
                pending.append(item)
                count += len(item[0])
            due = item is ... or count >= self.flush_rows
            if pending and due and time.monotonic() >= retry_at:
                if self._flush(pending):
                    pending, count, pause = [], 0, self.flush_seconds
                else:
                    retry_at, pause = time.monotonic() + pause, min(2 * pause, self.max_backoff)

    def _flush(self, pending: list[tuple[pd.DataFrame, Path | None]]) -> bool:
        frame = pd.concat([f for f, _ in pending], ignore_index=True)
        try:
            self.store.write(frame)
        except Exception as error:  # never lose served rows: they wait (and stay journaled) for a retry
            self.failures += 1
            logger.warning(
                "live log: writing %d rows failed (%s: %s); retrying later",
                len(frame),
                type(error).__name__,
                str(error).splitlines()[0] if str(error) else "",
                exc_info=self.failures == 1,
            )
            return False
        self.rows_written += len(frame)
        if self.journal is not None:
            for _, segment in pending:
                if segment is not None:
                    self.journal.release(segment)
        logger.info("live log: %d rows written", len(frame))
        return True

    def _give_up(self, pending: list[tuple[pd.DataFrame, Path | None]]) -> None:
        rows = sum(len(f) for f, _ in pending)
        kept = [s for _, s in pending if s is not None]
        if kept and self.journal is not None:
            logger.error(
                "live log: the store refused %d rows at shutdown; they stay in %d journal segment(s) "
                "in %s and are stored by the next start",
                rows,
                len(kept),
                self.journal.folder,
            )
        else:
            logger.error("live log: the store refused %d rows at shutdown; they are lost (no journal)", rows)


class LiveStore:
    """Where served rows are kept: ``write`` a frame; ``count_since``; ``scan`` a window."""

    def write(self, frame: pd.DataFrame) -> None:
        raise NotImplementedError

    def count_since(self, after: datetime | None) -> tuple[int, datetime | None]:
        """Rows served after ``after`` and the latest served time among them."""
        raise NotImplementedError

    def scan(
        self, after: datetime | None, until: datetime | None, columns: list[str], batch_rows: int = 65536
    ) -> Iterator[pd.DataFrame]:
        """The rows served in ``(after, until]``, ``columns`` (those that exist) + ``served_at``, in
        batches."""
        raise NotImplementedError


class ParquetLiveStore(LiveStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def write(self, frame: pd.DataFrame) -> None:
        served = pd.to_datetime(frame["served_at"], utc=True)
        for (ds, hour), part in frame.groupby([served.dt.strftime("%Y-%m-%d"), served.dt.hour]):
            folder = self.root / f"ds={ds}" / f"hour={hour:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            name = f"part-{uuid.uuid4().hex}.parquet"
            tmp = folder / f".{name}"
            part.to_parquet(tmp, index=False)
            tmp.rename(folder / name)

    def count_since(self, after: datetime | None) -> tuple[int, datetime | None]:
        return count_since(self.root, after)

    def scan(
        self, after: datetime | None, until: datetime | None, columns: list[str], batch_rows: int = 65536
    ) -> Iterator[pd.DataFrame]:
        return scan_live(self.root, after, until, columns, batch_rows)


_PG_TYPES = {"f": "double precision", "i": "bigint", "u": "bigint", "b": "boolean", "M": "timestamptz"}


class PostgresLiveStore(LiveStore):
    """The production live log: one PostgreSQL table (psycopg 3, ``COPY`` in, server-side cursor out)."""

    def __init__(self, dsn: str, table: str = "airloop_live_log") -> None:
        if not table.replace("_", "").isalnum():
            raise ValueError(f"not a plain table name: {table!r}")
        self.dsn, self.table = dsn, table
        self._columns: set[str] | None = None

    def _connect(self):
        import psycopg

        return psycopg.connect(self.dsn, connect_timeout=10)

    def _existing(self, conn) -> set[str]:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (self.table,)
        ).fetchall()
        return {r[0] for r in rows}

    def _ensure(self, conn, frame: pd.DataFrame) -> None:
        if self._columns is None:
            self._columns = self._existing(conn)
        missing = [c for c in frame.columns if c not in self._columns]
        if not missing:
            return
        defs = ", ".join(f'"{c}" {_PG_TYPES.get(frame[c].dtype.kind, "text")}' for c in missing)
        if not self._columns:
            conn.execute(f'CREATE TABLE IF NOT EXISTS "{self.table}" ({defs})')
            conn.execute(f'CREATE INDEX IF NOT EXISTS "{self.table}_served_at" ON "{self.table}" (served_at)')
        else:
            for c in missing:
                conn.execute(
                    f'ALTER TABLE "{self.table}" ADD COLUMN IF NOT EXISTS "{c}" '
                    f"{_PG_TYPES.get(frame[c].dtype.kind, 'text')}"
                )
        self._columns = self._existing(conn)

    def write(self, frame: pd.DataFrame) -> None:
        frame = frame.assign(served_at=pd.to_datetime(frame["served_at"], utc=True))
        columns = list(frame.columns)
        rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
        with self._connect() as conn:
            self._ensure(conn, frame)
            names = ", ".join(f'"{c}"' for c in columns)
            with conn.cursor() as cur, cur.copy(f'COPY "{self.table}" ({names}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)

    def count_since(self, after: datetime | None) -> tuple[int, datetime | None]:
        with self._connect() as conn:
            if not self._existing(conn):
                return 0, None
            where, args = ("WHERE served_at > %s", (after,)) if after is not None else ("", ())
            count, latest = conn.execute(
                f'SELECT count(*), max(served_at) FROM "{self.table}" {where}', args
            ).fetchone()
            return int(count), latest

    def scan(
        self, after: datetime | None, until: datetime | None, columns: list[str], batch_rows: int = 65536
    ) -> Iterator[pd.DataFrame]:
        with self._connect() as conn:
            existing = self._existing(conn)
            if not existing:
                return
            wanted = [c for c in dict.fromkeys([*columns, "served_at"]) if c in existing]
            clauses, args = [], []
            for bound, op in ((after, ">"), (until, "<=")):
                if bound is not None:
                    clauses.append(f"served_at {op} %s")
                    args.append(bound)
            where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
            names = ", ".join(f'"{c}"' for c in wanted)
            with conn.cursor(name="airloop_live_scan") as cur:
                cur.execute(f'SELECT {names} FROM "{self.table}" {where}', args)
                while batch := cur.fetchmany(batch_rows):
                    yield pd.DataFrame.from_records(batch, columns=wanted)


def live_store(settings: Settings) -> LiveStore:
    """The configured live log: Parquet in the lake when local, PostgreSQL in production."""
    if settings.live_log_store == "postgres":
        assert settings.postgres_dsn is not None  # required in production by the settings' validator
        return PostgresLiveStore(settings.postgres_dsn.get_secret_value())
    return ParquetLiveStore(settings.lake / "live")


def read_live(root: Path) -> pd.DataFrame:
    files = sorted(Path(root).glob("ds=*/hour=*/part-*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else pd.DataFrame()


def live_files(root: Path, after: datetime | None = None) -> list[Path]:
    """Log files that may hold rows served after ``after`` (UTC): hour partitions from its hour on."""
    files = sorted(Path(root).glob("ds=*/hour=*/part-*.parquet"))
    if after is None:
        return files
    floor = pd.Timestamp(after).tz_convert("UTC").floor("h")

    def hour_of(path: Path) -> pd.Timestamp:
        ds, hour = path.parent.parent.name[3:], int(path.parent.name[5:])
        return pd.Timestamp(ds, tz="UTC") + pd.Timedelta(hours=hour)

    return [f for f in files if hour_of(f) >= floor]


def _served_filter(table, after: datetime | None, until: datetime | None):
    import pyarrow as pa
    import pyarrow.compute as pc

    served = table.column("served_at")
    mask = None
    for bound, op in ((after, pc.greater), (until, pc.less_equal)):
        if bound is not None:
            scalar = pa.scalar(pd.Timestamp(bound).tz_convert("UTC").to_pydatetime(), type=served.type)
            term = op(served, scalar)
            mask = term if mask is None else pc.and_(mask, term)
    return table if mask is None else table.filter(mask)


def count_since(root: Path, after: datetime | None) -> tuple[int, datetime | None]:
    """Rows served after ``after`` and the latest served time among them (reads only ``served_at``)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rows, latest = 0, None
    for path in live_files(root, after):
        table = _served_filter(pq.read_table(path, columns=["served_at"]), after, None)
        if table.num_rows:
            rows += table.num_rows
            top = pc.max(table.column("served_at")).as_py()
            latest = top if latest is None or top > latest else latest
    return rows, latest


def scan_live(
    root: Path, after: datetime | None, until: datetime | None, columns: list[str], batch_rows: int = 65536
) -> Iterator[pd.DataFrame]:
    """Stream the rows served in ``(after, until]`` in bounded memory, ``columns`` only."""
    import pyarrow.parquet as pq

    wanted = list(dict.fromkeys([*columns, "served_at"]))
    for path in live_files(root, after):
        handle = pq.ParquetFile(path, pre_buffer=False)
        present = [c for c in wanted if c in handle.schema_arrow.names]
        for batch in handle.iter_batches(batch_size=batch_rows, columns=present):
            import pyarrow as pa

            table = _served_filter(pa.Table.from_batches([batch]), after, until)
            if table.num_rows:
                yield table.to_pandas()
