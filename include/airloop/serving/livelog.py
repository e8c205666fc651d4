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
