"""The live-traffic log: what the service served, appended without blocking requests.

Rows are queued by the request path and written by a background thread in small batches to
``lake/live/ds=YYYY-MM-DD/hour=HH/part-<uuid>.parquet`` (by the time they were served, UTC); ``close``
drains the queue, so a graceful shutdown loses nothing. The drift monitor reads this log.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)


class LiveLog:
    def __init__(self, root: Path, flush_rows: int = 500, flush_seconds: float = 2.0) -> None:
        self.root = Path(root)
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self._queue: queue.Queue[pd.DataFrame | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="live-log", daemon=True)
        self.rows_written = 0
        self._thread.start()

    def append(self, rows: pd.DataFrame) -> None:
        """Queue served rows (must carry ``served_at``, a UTC timestamp column)."""
        self._queue.put(rows)

    def close(self, timeout: float = 30.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        pending: list[pd.DataFrame] = []
        count = 0
        while True:
            try:
                item = self._queue.get(timeout=self.flush_seconds)
            except queue.Empty:
                item = ...
            if item is None:
                self._flush(pending)
                return
            if isinstance(item, pd.DataFrame):
                pending.append(item)
                count += len(item)
            if pending and (item is ... or count >= self.flush_rows):
                self._flush(pending)
                pending, count = [], 0

    def _flush(self, frames: list[pd.DataFrame]) -> None:
        if not frames:
            return
        frame = pd.concat(frames, ignore_index=True)
        served = pd.to_datetime(frame["served_at"], utc=True)
        for (ds, hour), part in frame.groupby([served.dt.strftime("%Y-%m-%d"), served.dt.hour]):
            folder = self.root / f"ds={ds}" / f"hour={hour:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            name = f"part-{uuid.uuid4().hex}.parquet"
            tmp = folder / f".{name}"
            part.to_parquet(tmp, index=False)
            tmp.rename(folder / name)
        self.rows_written += len(frame)
        logger.info("live log: %d rows written", len(frame))


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


def _served_filter(table, after: datetime | None, until: datetime | None):  # noqa: ANN001, ANN202 - pyarrow
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


def scan_live(root: Path, after: datetime | None, until: datetime | None, columns: list[str],
              batch_rows: int = 65536) -> Iterator[pd.DataFrame]:
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
