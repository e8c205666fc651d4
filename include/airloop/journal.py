"""The serving journal: answered rows are made durable before their answers leave (write-ahead).

The service appends each scored batch's rows to its current *segment* (one ``write`` of a length-prefixed
Arrow IPC stream) before it answers the batch, and hands the segment to the live log once a second
(``rotate``); the live log deletes a segment (``release``) once its rows are in the live store. A process
killed in between leaves its segments behind: the next process on the same folder (a restarted service,
or another worker) writes them to the store and deletes them (``recover``).

- **What survives**: ``write`` puts the rows in the kernel's page cache before the answer is sent, so a
  killed process (SIGKILL, the OOM killer, a crash) loses nothing. With ``fsync`` each append also waits
  for the disk, which survives a power loss or a kernel crash too, at the cost of a disk flush per batch.
- **At least once**: a crash after the store write and before the deletion writes those rows again, as
  exact copies (same ``request_id``, ``served_at`` and event key); readers keep one answer per event
  (``feedback``), and ``(request_id, served_at, key)`` removes them anywhere else.
- **Ownership**: a process holds an exclusive ``flock`` on each of its segments until it releases it;
  recovery takes only segments it can lock, i.e. whose writer is gone. A segment is created under a
  dot-name, locked, then renamed, so no recoverer can lock a segment before its writer has.

Records: an 8-byte little-endian length, then one Arrow IPC stream (schema + one record batch), so each
record stands alone (a batch's columns may differ in type from the previous one's). A torn last record
(a crash inside ``write``) is skipped with a warning; every record before it is read.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

_LENGTH = struct.Struct("<Q")
SUFFIX = ".journal"


class Journal:
    """A process's write-ahead segments in ``folder`` (created ``0700``)."""

    def __init__(self, folder: Path, fsync: bool = False) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.fsync = fsync
        self._current: Path | None = None
        self._fds: dict[Path, int] = {}  # segments this process holds (locked) until released
        self._lock = threading.Lock()

    # -- the writer (the service's event loop) ---------------------------------------------------------
    def append(self, columns: Mapping[str, Any]) -> None:
        """Make one batch of rows durable: ``columns`` maps names to equal-length arrays (numpy, lists,
        pandas); a naive ``datetime64`` array is taken as UTC. Returns once the rows are written."""
        data = encode(columns)
        with self._lock:
            if self._current is None:
                self._current = self._create()
            fd = self._fds[self._current]
            view = memoryview(_LENGTH.pack(len(data)) + data)
            while view:
                view = view[os.write(fd, view) :]
            if self.fsync:
                os.fsync(fd)

    def rotate(self) -> Path | None:
        """Close the current segment to appends and return it (None when nothing was appended since the
        last rotation); it stays locked until ``release``."""
        with self._lock:
            segment, self._current = self._current, None
            return segment

    def release(self, segment: Path) -> None:
        """Delete a segment whose rows are stored (unlinked while still locked, then closed)."""
        with self._lock:
            fd = self._fds.pop(segment, None)
        segment.unlink(missing_ok=True)
        if fd is not None:
            os.close(fd)

    def held(self) -> list[Path]:
        """Segments this process holds (appended to and not yet released)."""
        with self._lock:
            return list(self._fds)

    # -- recovery: segments whose writer is gone ---------------------------------------------------------
    def recover(self) -> Iterator[tuple[Path, pd.DataFrame]]:
        """Claim (lock) every segment left by a process that is gone and yield its rows; the caller
        stores them and then ``release``s the segment. A segment another live process holds is skipped;
        an empty or unreadable one is released (logged) at once."""
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            with self._lock:
                if path in self._fds:
                    continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:  # released meanwhile by its owner
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its writer is alive
                os.close(fd)
                continue
            if not path.exists():  # its owner released it between our listing and our lock
                os.close(fd)
                continue
            with self._lock:
                self._fds[path] = fd
            frame = read_segment(path)
            if frame is None or frame.empty:
                self.release(path)
                continue
            logger.warning("journal: recovered %d answered rows from %s", len(frame), path.name)
            yield path, frame
        for stale in self.folder.glob(f".*{SUFFIX}"):  # created, never renamed: empty by construction
            with self._lock:  # not one this process is creating right now (``_create`` runs under it)
                try:
                    fd = os.open(stale, os.O_RDWR)
                except FileNotFoundError:  # renamed (or swept) meanwhile
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    stale.unlink(missing_ok=True)
                except BlockingIOError:
                    pass
                finally:
                    os.close(fd)

    def close(self) -> None:
        """Let go of every segment still held (they stay on disk for the next process to recover)."""
        with self._lock:
            fds, self._fds, self._current = self._fds, {}, None
        for fd in fds.values():
            os.close(fd)

    def _create(self) -> Path:
        """A new segment, locked, under its final name (called under ``self._lock``). Created hidden and
        renamed once locked; another process's sweep of stale hidden files may take it between the two
        (it locks first): then a new one is created."""
        while True:
            name = f"{os.getpid()}-{uuid.uuid4().hex}{SUFFIX}"
            hidden, path = self.folder / f".{name}", self.folder / name
            fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                os.rename(hidden, path)
            except FileNotFoundError:  # swept as stale before we locked it
                os.close(fd)
                continue
            self._fds[path] = fd
            return path


def encode(columns: Mapping[str, Any]) -> bytes:
    """One self-contained Arrow IPC stream holding ``columns`` as one record batch."""
    import numpy as np
    import pyarrow as pa

    arrays, names = [], []
    for name, values in columns.items():
        if isinstance(values, np.ndarray) and values.dtype.kind == "M":
            arrays.append(pa.array(values, type=pa.timestamp("us", tz="UTC")))
        else:
            arrays.append(pa.array(values))
        names.append(name)
    batch = pa.RecordBatch.from_arrays(arrays, names=names)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def read_segment(path: Path) -> pd.DataFrame | None:
    """Every complete record of a segment, as one frame (None when it holds none)."""
    import pyarrow as pa

    data = path.read_bytes()
    frames, at = [], 0
    while len(data) - at >= _LENGTH.size:
        (length,) = _LENGTH.unpack_from(data, at)
        end = at + _LENGTH.size + length
        if end > len(data):
            break
        try:
            frames.append(pa.ipc.open_stream(data[at + _LENGTH.size : end]).read_all().to_pandas())
        except pa.ArrowInvalid:
            logger.warning("journal: %s: an unreadable record at byte %d; skipped", path.name, at)
        at = end
    if at < len(data):
        logger.warning(
            "journal: %s ends in a torn record (%d bytes, a crash while writing it); skipped",
            path.name,
            len(data) - at,
        )
    return pd.concat(frames, ignore_index=True) if frames else None
