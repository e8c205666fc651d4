"""The serving journal (``airloop.journal``) and the live log's use of it: rows appended before an answer
survive the writer's death, are stored by the next process, and a failing store neither drops nor spins."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pandas as pd
import pytest
from conftest import wait_for

from airloop.journal import Journal, read_segment
from airloop.livelog import LiveLog, LiveStore


def batch(start: int, rows: int = 3) -> dict:
    return {
        "probability": np.linspace(0, 1, rows),
        "label": np.arange(rows) % 2,
        "request_id": np.array([f"r{start + i}" for i in range(rows)], dtype=object),
        "carrier": np.array(["UA", None, "AA"][:rows], dtype=object),
        "served_at": np.full(rows, np.datetime64("2013-07-01T12:00:00", "us")),
        "time_hour": pd.to_datetime(["2013-07-01T16:00:00Z"] * rows, utc=True),
    }


class MemoryStore(LiveStore):
    def __init__(self, fail: bool = False) -> None:
        self.frames: list[pd.DataFrame] = []
        self.attempts = 0
        self.fail = fail

    def write(self, frame: pd.DataFrame) -> None:
        self.attempts += 1
        if self.fail:
            raise ConnectionError("store down")
        self.frames.append(frame)

    def ids(self) -> list[str]:
        return [i for f in self.frames for i in f["request_id"]]


def test_appended_rows_read_back_with_their_types(tmp_path):
    journal = Journal(tmp_path / "j")
    journal.append(batch(0))
    journal.append(batch(3, rows=2))
    segment = journal.rotate()
    assert segment is not None and journal.rotate() is None  # nothing appended since
    frame = read_segment(segment)
    assert list(frame["request_id"]) == ["r0", "r1", "r2", "r3", "r4"]
    assert str(frame["served_at"].dt.tz) == "UTC" and frame["served_at"].iloc[0].hour == 12
    assert frame["carrier"].tolist() == ["UA", None, "AA", "UA", None]
    assert stat.S_IMODE(os.stat(segment).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "j").st_mode) == 0o700
    journal.release(segment)
    assert not segment.exists() and journal.held() == []


def test_a_live_writer_s_segments_are_not_recovered_a_dead_one_s_are(tmp_path):
    """Recovery takes only what no live process holds: the segment a running writer holds is skipped;
    once that writer is gone (here: a child process killed with SIGKILL after appending), it is taken."""
    alive = Journal(tmp_path)
    alive.append(batch(0))
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import os, signal
                from airloop.journal import Journal
                Journal({str(tmp_path)!r}).append({{"request_id": ["r100", "r101"]}})
                print("appended", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "appended"
    child.wait(30)
    recoverer = Journal(tmp_path)
    recovered = list(recoverer.recover())
    assert [list(frame["request_id"]) for _, frame in recovered] == [["r100", "r101"]]
    path = recovered[0][0]
    assert list(Journal(tmp_path).recover()) == []  # claimed: a third process does not take it again
    recoverer.release(path)
    assert not path.exists()
    assert [p.name for p in tmp_path.iterdir()] == [alive.held()[0].name]  # the live writer's, untouched


def test_a_torn_last_record_is_skipped_and_the_rest_recovered(tmp_path):
    writer = Journal(tmp_path)
    writer.append(batch(0))
    writer.append(batch(3))
    segment = writer.rotate()
    writer.close()  # (the writer "dies": its lock goes)
    size = segment.stat().st_size
    with open(segment, "r+b") as f:
        f.truncate(size - 10)
    frame = read_segment(segment)
    assert list(frame["request_id"]) == ["r0", "r1", "r2"]


def test_the_live_log_stores_journaled_rows_and_releases_their_segments(tmp_path):
    journal, store = Journal(tmp_path / "j"), MemoryStore()
    log = LiveLog(store, flush_rows=1, flush_seconds=0.05, journal=journal)
    journal.append(batch(0))
    segment = journal.rotate()
    log.append(pd.DataFrame(batch(0)), segment)
    wait_for(lambda: not segment.exists(), "the segment released once stored")
    log.close()
    assert store.ids() == ["r0", "r1", "r2"] and journal.held() == []


def test_a_failing_store_neither_spins_nor_drops_and_the_next_start_stores_the_rows(tmp_path, caplog):
    """With the store down: retries back off (a handful of attempts, not a busy loop, even with more than
    ``flush_rows`` rows waiting), close() returns, the rows stay journaled; the next process's live log
    (store up again) stores every one of them."""
    folder = tmp_path / "j"
    journal, down = Journal(folder), MemoryStore(fail=True)
    log = LiveLog(down, flush_rows=5, flush_seconds=0.05, journal=journal, max_backoff=0.4)
    for i in range(0, 30, 3):
        journal.append(batch(i))
        log.append(pd.DataFrame(batch(i)), journal.rotate())
    wait_for(lambda: down.attempts >= 3, "retries")
    stop = threading.Event()
    stop.wait(1.0)  # a busy loop would make thousands of attempts in this second
    assert down.attempts < 12, down.attempts
    log.close(timeout=10)
    assert not log._thread.is_alive()
    assert "stay in 10 journal segment(s)" in caplog.text
    journal.close()  # the process ends: its locks go
    up = MemoryStore()
    again = LiveLog(up, flush_rows=5, flush_seconds=0.05, journal=Journal(folder))
    wait_for(lambda: len(up.ids()) == 30, "the next start stores the journaled rows")
    again.close()
    assert sorted(up.ids()) == sorted(f"r{i}" for i in range(30))
    assert list(folder.glob("*.journal")) == []


def test_without_a_journal_a_refused_shutdown_says_how_many_rows_are_lost(tmp_path, caplog):
    log = LiveLog(MemoryStore(fail=True), flush_rows=1000, flush_seconds=5)
    log.append(pd.DataFrame(batch(0)))
    log.close(timeout=10)
    assert "refused 3 rows at shutdown; they are lost" in caplog.text


@pytest.mark.parametrize("fsync", [False, True])
def test_fsync_is_optional(tmp_path, fsync):
    journal = Journal(tmp_path, fsync=fsync)
    journal.append(batch(0))
    assert len(read_segment(journal.rotate())) == 3
