"""A deferrable sensor for the drift monitor: wait until the live-traffic log holds enough new rows.

``LiveRowsSensor`` counts the rows served since the last checked window (the drift monitor's cursor in
the lake). If fewer than ``new_rows`` arrived it defers to ``LiveRowsTrigger``, which polls in the
triggerer (asyncio; the count runs in a thread) and holds no worker slot. It completes with the window
``{"after", "until", "rows"}`` once ``new_rows`` rows arrived, or when ``max_wait`` has passed with
whatever arrived (``None`` if nothing did). Airflow puts this folder on ``sys.path``, so the trigger's
classpath is ``live_traffic_trigger.LiveRowsTrigger`` (a module of its own: importing the
triggers' base is too heavy for a DAG file's parse).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator


class LiveRowsSensor(BaseSensorOperator):
    """Wait for ``new_rows`` live rows served since the drift monitor's last window (at most ``max_wait``)."""

    template_fields = ("new_rows",)

    def __init__(self, *, new_rows: int, max_wait: timedelta, poll_seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.new_rows, self.max_wait, self.poll_seconds = new_rows, max_wait, poll_seconds

    def execute(self, context: Any) -> dict[str, Any] | None:
        from live_traffic_trigger import LiveRowsTrigger, pending

        from airloop.drift.monitor import cursor
        from airloop.lake import Lake
        from airloop.settings import load_settings

        lake = Lake(load_settings().lake)
        after = cursor(lake)
        after_text = None if after is None else after.isoformat()
        window = pending(after_text)
        if window and window["rows"] >= int(self.new_rows):
            return window
        started = context["ti"].start_date or datetime.now().astimezone()
        deadline = (started + self.max_wait).isoformat()
        self.log.info("waiting for %s new live rows since %s (until %s)", self.new_rows, after_text, deadline)
        self.defer(
            trigger=LiveRowsTrigger(after_text, int(self.new_rows), deadline, self.poll_seconds),
            method_name="execute_complete",
        )
        return None

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any] | None:
        self.log.info("live rows: %s", event)
        return event.get("window")
