"""The real-time prediction service (BentoML 1.4): Feast online features + the MLflow champion.

``POST /predict`` takes ``{"flights": [...], "as_of": optional}``; each row is validated against the
contract generated from the use-case declaration (a 4xx names the offending field). The service loads
the ``champion`` at start-up (so ``/readyz`` answers only once a model is loaded), checks the alias every
``AIRLOOP_SERVING_WATCH_SECONDS`` and swaps in a new champion without failing requests: a request holds
the model it started with. Each served row (inputs, features, prediction, model version, request id,
time served) goes to the live-traffic log.

Run: ``bentoml serve airloop.serving.service:DelayService --host 127.0.0.1 --port 3000`` (``make serve``).
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any

import bentoml
from pydantic import Field

from airloop.model.pyfunc import RegisteredModel
from airloop.serving.contract import row_model
from airloop.settings import load_settings
from airloop.usecases import load_use_case

logger = logging.getLogger(__name__)

SETTINGS = load_settings()
USE_CASE = load_use_case(SETTINGS.use_case)
Row = row_model(USE_CASE)


MODEL_INFO = bentoml.metrics.Gauge(
    name="airloop_model_info", documentation="1 for the model version being served", labelnames=["model", "version"],
    multiprocess_mode="livemax")
ROWS_SERVED = bentoml.metrics.Counter(
    name="airloop_rows_served", documentation="prediction rows served", labelnames=["version"])


@bentoml.service(
    name="airloop_delay",
    traffic={"timeout": 10, "max_concurrency": 64},
    workers=1,
    http={"host": "127.0.0.1", "port": 3000},
)
class DelayService:
    def __init__(self) -> None:
        import mlflow

        from airloop.featurestore import open_store
        from airloop.registry import ModelRegistry
        from airloop.serving.livelog import LiveLog

        mlflow.set_tracking_uri(SETTINGS.mlflow_tracking_uri)
        self.registry = ModelRegistry(SETTINGS.mlflow_tracking_uri, USE_CASE.model_name)
        self.store = open_store(SETTINGS, USE_CASE, apply=False)
        self.champion = self._load()
        self.live = LiveLog(SETTINGS.lake / "live")
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="champion-watch", daemon=True)
        self._watcher.start()

    def _load(self) -> RegisteredModel:
        """The champion, as one object swapped as a whole (version, model and its input columns)."""
        version = self.registry.version_of("champion")
        if version is None:
            raise RuntimeError(f"no champion of {USE_CASE.model_name}: train and promote one first")
        champion = RegisteredModel(f"models:/{USE_CASE.model_name}/{version}", version)
        logger.info("serving %s v%s", USE_CASE.model_name, version)
        if getattr(self, "champion", None) is not None:
            MODEL_INFO.labels(model=USE_CASE.model_name, version=self.champion.version).set(0)
        MODEL_INFO.labels(model=USE_CASE.model_name, version=version).set(1)
        return champion

    def _watch(self) -> None:
        while not self._stop.wait(SETTINGS.serving_watch_seconds):
            try:
                version = self.registry.version_of("champion")
                if version is not None and version != self.champion.version:
                    self.champion = self._load()  # one reference assignment: requests in flight keep theirs
            except Exception:  # keep serving the current model; the next tick tries again
                logger.exception("champion check failed")

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        self._stop.set()
        self.live.close()

    @bentoml.api
    def predict(
        self,
        flights: Annotated[list[Row], Field(min_length=1, max_length=SETTINGS.serving_max_rows)],  # type: ignore[valid-type]
        ctx: bentoml.Context,
        as_of: datetime | None = None,
    ) -> dict[str, Any]:
        from bentoml.exceptions import InvalidArgument

        content_type = ctx.request.headers.get("content-type", "")
        if not content_type.startswith("application/json"):
            raise InvalidArgument(f"Content-Type must be application/json, got {content_type or 'none'!r}")
        return self._score(flights, as_of)

    @bentoml.api(batchable=True, max_batch_size=256, max_latency_ms=1000)
    def predict_rows(self, rows: list[Row]) -> list[dict[str, Any]]:  # type: ignore[valid-type]
        """Adaptive batching: concurrent requests' rows are scored together (up to 256 rows; BentoML sheds
        requests with a 503 once it expects more than 1 s of queueing),
        as of the time served; body ``{"rows": [...]}``, one answer per row."""
        return self._score(rows, None)["predictions"]

    def _score(self, flights: list[Any], as_of: datetime | None) -> dict[str, Any]:
        import pandas as pd

        from airloop.featurestore import online_features

        champion = self.champion  # this request's model, whatever the watcher does meanwhile
        request_id = uuid.uuid4().hex
        served_at = datetime.now(timezone.utc)
        rows = pd.DataFrame([f.model_dump() for f in flights])
        rows["time_hour"] = pd.to_datetime(rows["time_hour"], utc=True)
        features = online_features(self.store, USE_CASE, rows, as_of or served_at)
        scored = champion.predict(features)
        flags = [c for c in features.columns if c.endswith(("__unknown", "__stale"))]
        log = features.assign(probability=scored["probability"].to_numpy(), label=scored["label"].to_numpy(),
                              model_version=champion.version, request_id=request_id, served_at=served_at,
                              flight=rows["flight"].to_numpy(), dest=rows["dest"].to_numpy())
        self.live.append(log)
        ROWS_SERVED.labels(version=champion.version).inc(len(rows))
        return {
            "request_id": request_id,
            "model_version": champion.version,
            "predictions": [
                {"probability": float(p), "label": int(lab), "model_version": champion.version,
                 "flags": {f: int(features[f].iloc[i]) for f in flags}}
                for i, (p, lab) in enumerate(zip(scored["probability"], scored["label"], strict=True))
            ],
        }
