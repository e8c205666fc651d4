"""The trigger behind ``live_traffic.LiveRowsSensor``: polls the live-traffic log in the triggerer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


def pending(after: str | None) -> dict[str, Any] | None:
    """The pending window as a dict (``None``: no new rows) in the configured live store; imports
    pandas/pyarrow only when called."""
    import pandas as pd

    from airloop.drift.monitor import pending_window
    from airloop.livelog import live_store
    from airloop.settings import load_settings

    window = pending_window(
        live_store(load_settings()), None if after is None else pd.Timestamp(after).to_pydatetime()
    )
    return None if window is None else window.as_dict()


class LiveRowsTrigger(BaseTrigger):
    def __init__(self, after: str | None, new_rows: int, deadline: str, poll_seconds: float) -> None:
        super().__init__()
        self.after, self.new_rows = after, new_rows
        self.deadline, self.poll_seconds = deadline, poll_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "live_traffic_trigger.LiveRowsTrigger",
            {
                "after": self.after,
                "new_rows": self.new_rows,
                "deadline": self.deadline,
                "poll_seconds": self.poll_seconds,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = datetime.fromisoformat(self.deadline)
        while True:
            window = await asyncio.to_thread(pending, self.after)
            rows = window["rows"] if window else 0
            if rows >= self.new_rows:
                yield TriggerEvent({"status": "ready", "window": window})
                return
            if datetime.now(deadline.tzinfo) >= deadline:  # the wait's own clock, not data logic
                yield TriggerEvent({"status": "max_wait", "window": window})
                return
            self.log.info(
                "%d of %d new live rows since %s; polling again in %ss",
                rows,
                self.new_rows,
                self.after,
                self.poll_seconds,
            )
            await asyncio.sleep(self.poll_seconds)
