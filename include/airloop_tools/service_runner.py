"""Run the prediction service as a local process (demo, benchmarks) and replay events through it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from airloop.usecase import UseCase

logger = logging.getLogger(__name__)


@contextmanager
def local_service(
    port: int, log_path: Path, env: dict[str, str] | None = None, startup_timeout: float = 180.0
) -> Iterator[httpx.Client]:
    """``bentoml serve`` the service on 127.0.0.1:``port`` while the block runs; SIGTERM afterwards
    (graceful: the live-traffic log is flushed)."""
    bentoml = Path(sys.executable).with_name("bentoml")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                str(bentoml),
                "serve",
                "airloop.serving.service:PredictionService",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"service exited ({process.returncode}); see {log_path}")
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"service not ready in {startup_timeout:.0f}s; see {log_path}")
            time.sleep(1)
        yield client
    finally:
        client.close()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def request_rows(events: pd.DataFrame, fields: list[str]) -> list[dict[str, Any]]:
    """JSON-ready request rows (timestamps as ISO strings, missing values as null)."""
    out = events[fields].copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].map(lambda t: t.isoformat())
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in out.to_dict("records")]


def replay(client: httpx.Client, events: pd.DataFrame, use_case: UseCase, batch: int = 50) -> dict[str, Any]:
    """Send ``events`` (rows of the primary source) in time order, ``batch`` rows a request with the
    fields known before the event, each request as of its latest event time."""
    from airloop.features import event_times

    times = event_times(events, use_case)
    order = times.argsort(kind="stable").to_numpy()
    ordered, times = events.iloc[order].reset_index(drop=True), times.iloc[order].reset_index(drop=True)
    served, errors, versions, positive = 0, 0, set(), 0
    for start in range(0, len(ordered), batch):
        chunk = ordered.iloc[start : start + batch]
        as_of = times.iloc[start : start + batch].max()
        response = client.post(
            "/predict",
            json={"rows": request_rows(chunk, use_case.known_before_event), "as_of": as_of.isoformat()},
        )
        if response.status_code != 200:
            errors += 1
            logger.warning("replay request failed %s: %s", response.status_code, response.text[:300])
            continue
        body = response.json()
        served += len(body["predictions"])
        positive += sum(p["label"] for p in body["predictions"])
        versions.add(body["model_version"])
    return {
        "rows": served,
        "requests": -(-len(ordered) // batch),
        "errors": errors,
        "versions": sorted(versions),
        "predicted_positive_rate": positive / served if served else 0.0,
    }
