"""The real-time prediction service (BentoML 1.4): Feast online features + the MLflow champion.

``POST /predict`` takes ``{"rows": [...], "as_of": optional}`` (one row per event of the use case: the
schema's row type is named after it, e.g. ``FlightsRow``); each row is validated against the
contract generated from the use-case declaration (a 4xx names the offending field). The service loads
the ``champion`` at start-up (so ``/readyz`` answers only once a model is loaded), checks the alias every
``AIRLOOP_SERVING_WATCH_SECONDS`` and swaps in a new champion without failing requests: a request is
scored whole by one model. Each served row (inputs, features, prediction, model version, request id,
time served) goes to the live-traffic log.

Shadow evaluation (``ModelSpec.shadow``): when the registry's ``shadow`` alias names another version, the
service scores every answered batch with it too, right after the answers leave (same features, same
per-request groups), and logs its probability and label beside the champion's (``shadow_version``,
``shadow_probability``, ``shadow_label``); it is never answered. ``live_feedback`` compares the two on the
same events once their outcomes land.

Requests that arrive while others are being scored are scored together (``Scorer``): one online-store
read, one request-time transform and one preprocessing pass for all of them, then each request's rows
through the network on their own, so a request's answer never depends on what it was batched with.
Nothing waits for a batch to fill: a request alone is scored at once.

Run: ``bentoml serve airloop.serving.service:PredictionService --host 127.0.0.1 --port 3000``
(``make serve``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import bentoml
from bentoml.validators import ContentType
from pydantic import AfterValidator, ConfigDict, Field

from airloop.featurestore.online import StoreUnavailableError
from airloop.resources import load_resources
from airloop.serving.contract import row_model
from airloop.serving.http import REQUEST_ID, OneLineBadRequests, RequestGuard

if TYPE_CHECKING:
    import numpy as np

    from airloop.featurestore import OnlineLookup
    from airloop.journal import Journal
    from airloop.livelog import LiveLog
    from airloop.model.pyfunc import RegisteredModel

logger = logging.getLogger(__name__)

RESOURCES = load_resources()  # the composition root: settings, use case, and the clients built from them
SETTINGS, USE_CASE = RESOURCES.settings, RESOURCES.use_case
Row = row_model(USE_CASE)
GATHER_TURNS = 4  # event-loop turns a flush waits at most while requests keep arriving
# Request fields the live log keeps beside the features: the event's key (live feedback joins outcomes by
# it), its event time (feedback selects a day's rows by it) and the declared context columns.
LOGGED_INPUTS = USE_CASE.logged_columns()
STORE_PROBE_SECONDS = 1.0  # how often the watcher checks that the online store answers
LOG_EVERY_SECONDS = 1.0  # served rows go to the live log in one frame a second (building one costs ~5 ms)


MODEL_INFO = bentoml.metrics.Gauge(
    name="airloop_model_info",
    documentation="1 for the model version being served",
    labelnames=["model", "version"],
    multiprocess_mode="livemax",
)
ROWS_SERVED = bentoml.metrics.Counter(
    name="airloop_rows_served", documentation="prediction rows served", labelnames=["version"]
)
SHADOW_INFO = bentoml.metrics.Gauge(
    name="airloop_shadow_info",
    documentation="1 for the version scored in shadow (logged, never answered)",
    labelnames=["model", "version"],
    multiprocess_mode="livemax",
)
ROWS_SHADOWED = bentoml.metrics.Counter(
    name="airloop_rows_shadowed",
    documentation="served rows also scored by the shadow version (logged, never answered)",
    labelnames=["version"],
)
BATCH_REQUESTS = bentoml.metrics.Histogram(
    name="airloop_batch_requests",
    documentation="requests scored together in one batch",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)


@dataclass
class Pending:
    """One request waiting to be scored."""

    rows: list[Any]
    as_of: datetime | None
    future: asyncio.Future[dict[str, Any]]
    request_id: str | None = None
    """The HTTP request's id (``X-Request-ID``); None: one is made up when it is scored."""


@dataclass
class Scored:
    """What one batch leaves for the live-traffic log."""

    features: dict[str, np.ndarray]
    probability: np.ndarray
    label: np.ndarray
    version: str
    request_ids: list[str]
    counts: list[int]
    served_at: datetime
    inputs: dict[str, list[Any]]
    """The ``LOGGED_INPUTS`` request fields of every row."""
    shadow_version: str | None = None
    shadow_probability: np.ndarray | None = None
    shadow_label: np.ndarray | None = None
    """The shadow version's scores of the same rows (set after the answers left; see ``Scorer.run``)."""
    columns: dict[str, Any] | None = None
    """The answered rows' live-log columns (``answered_columns``), built once: journaled, then logged."""


@dataclass
class Scorer:
    """Scores requests on the event loop in opportunistic batches and feeds the live-traffic log.

    ``submit`` queues a request and schedules a flush for the loop's next turn; the flush scores every
    request queued by then. Scoring is CPU-bound Python under one GIL: running it on the loop (one
    thread, no hand-offs) costs less than a worker thread, and requests that arrive meanwhile wait in
    the socket and form the next batch. Served rows are logged in one frame per ``LOG_EVERY_SECONDS``.
    """

    service: PredictionService
    pending: list[Pending] = field(default_factory=list)
    unlogged: list[Scored] = field(default_factory=list)
    flush_scheduled: bool = False
    log_scheduled: bool = False
    seen: int = 0
    turns: int = 0

    async def submit(
        self, rows: list[Any], as_of: datetime | None, request_id: str | None = None
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        request = Pending(rows, as_of, loop.create_future(), request_id)
        self.pending.append(request)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            loop.call_soon(self.flush)
        return await request.future

    def flush(self) -> None:
        if len(self.pending) != self.seen and self.turns < GATHER_TURNS:
            # Requests still arriving: let the loop take another turn (a request needs a few task
            # steps through BentoML's middleware before it is queued here) and look again.
            self.seen, self.turns = len(self.pending), self.turns + 1
            asyncio.get_running_loop().call_soon(self.flush)
            return
        self.flush_scheduled, self.seen, self.turns = False, 0, 0
        batch, self.pending = [p for p in self.pending if not p.future.done()], []  # (clients gone away)
        if batch:
            self.run(batch)

    def run(self, batch: list[Pending]) -> None:
        try:
            answers, scored = self.service.score(batch)
        except StoreUnavailableError as error:  # a dependency outage: every request gets a 503 at once
            self.service.store_down(error)
            from bentoml.exceptions import ServiceUnavailable

            for request in batch:
                if not request.future.done():
                    request.future.set_exception(ServiceUnavailable(f"not ready: {error}"))
            return
        except Exception as error:  # noqa: BLE001 - only the request that fails fails: score each alone
            if len(batch) > 1:
                for request in batch:
                    self.run([request])
            elif not batch[0].future.done():
                batch[0].future.set_exception(error)
            return
        try:
            self.service.record(scored)  # durable before any answer leaves (airloop.journal)
        except Exception as error:  # an answer whose rows cannot be kept is not given
            logger.exception("journal: %d answered rows cannot be written", sum(scored.counts))
            from bentoml.exceptions import ServiceUnavailable

            for request in batch:
                if not request.future.done():
                    request.future.set_exception(
                        ServiceUnavailable(f"the served rows cannot be recorded: {type(error).__name__}")
                    )
            return
        for request, answer in zip(batch, answers, strict=True):
            if not request.future.done():
                request.future.set_result(answer)
        self.unlogged.append(scored)
        loop = asyncio.get_running_loop()
        if self.service.shadow is not None:
            # After the answers: the waiting handlers were scheduled first by set_result.
            loop.call_soon(self.service.score_shadow, scored)
        if not self.log_scheduled:
            self.log_scheduled = True
            loop.call_later(LOG_EVERY_SECONDS, self.write_log)

    def write_log(self) -> None:
        self.log_scheduled = False
        scored, self.unlogged = self.unlogged, []
        if scored:
            self.service.live.append(log_frame(scored), self.service.rotate_journal())


def answered_columns(scored: Scored) -> dict[str, Any]:
    """One batch's live-log columns: every feature column, then probability, label, model_version,
    request_id, served_at (naive UTC ``datetime64``), and the ``LOGGED_INPUTS`` not among the features.
    Built once per batch (``Scored.columns``): the journal writes them before the answers leave."""
    import numpy as np
    import pandas as pd

    if scored.columns is not None:
        return scored.columns
    rows = sum(scored.counts)
    columns: dict[str, Any] = dict(scored.features)
    columns |= {
        "probability": scored.probability,
        "label": scored.label,
        "model_version": np.full(rows, scored.version, dtype=object),
        "request_id": np.repeat(np.array(scored.request_ids, dtype=object), scored.counts),
        "served_at": np.full(rows, np.datetime64(scored.served_at.replace(tzinfo=None), "us")),
    }
    for name, listed in scored.inputs.items():
        if name not in columns:
            if any(isinstance(v, datetime) for v in listed):  # (the contract made them UTC instants)
                columns[name] = pd.to_datetime(listed, utc=True)
                continue
            values = np.array(listed)
            columns[name] = values.astype(object) if values.dtype.kind == "U" else values
    scored.columns = columns
    return columns


def log_frame(scored: list[Scored]) -> Any:
    """One live-log frame for scored batches: their ``answered_columns`` (``served_at`` as UTC), then
    the shadow's ``shadow_version``, ``shadow_probability`` and ``shadow_label`` when a batch of the
    frame was shadowed (null for rows that were not)."""
    import numpy as np
    import pandas as pd

    parts = [answered_columns(s) for s in scored]
    columns: dict[str, Any] = {}
    for name in parts[0]:
        values = [p[name] for p in parts]
        if isinstance(values[0], pd.DatetimeIndex):
            columns[name] = values[0].append(values[1:]) if len(values) > 1 else values[0]
        else:
            columns[name] = np.concatenate(values)
    columns["served_at"] = pd.DatetimeIndex(columns["served_at"]).tz_localize("UTC")
    if any(s.shadow_version is not None for s in scored):
        rows = [sum(s.counts) for s in scored]
        columns["shadow_version"] = np.repeat(
            np.array([s.shadow_version for s in scored], dtype=object), rows
        )
        for name in ("probability", "label"):
            columns[f"shadow_{name}"] = np.concatenate(
                [
                    getattr(s, f"shadow_{name}").astype(np.float64)
                    if s.shadow_version is not None
                    else np.full(n, np.nan)
                    for s, n in zip(scored, rows, strict=True)
                ]
            )
    return pd.DataFrame(columns)


def _as_of_in_range(value: datetime | None) -> datetime | None:
    """``as_of`` (UTC when written without an offset) between the use case's first day and a day past now:
    features exist for nothing else (year 1 or 9999 is a client's bug, not a question)."""
    if value is None:
        return None
    value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    first = datetime.combine(USE_CASE.start_date, datetime.min.time(), tzinfo=ZoneInfo(USE_CASE.timezone))
    last = datetime.now(UTC) + timedelta(days=1)
    if not first <= value <= last:
        raise ValueError(f"as_of {value.isoformat()} is outside {first.isoformat()} .. now + 1 day")
    return value.astimezone(UTC)


Rows = Annotated[list[Row], Field(min_length=1, max_length=SETTINGS.serving_max_rows)]  # type: ignore[valid-type]


class PredictRequest(bentoml.IODescriptor):
    """The body of ``/predict``; an unknown key is refused (a misspelt ``as-of`` must not be ignored)."""

    model_config = ConfigDict(extra="forbid")
    rows: Rows
    as_of: Annotated[datetime | None, AfterValidator(_as_of_in_range)] = None


class RowsRequest(bentoml.IODescriptor):
    """The body of ``/predict_rows`` (rows only: they are scored as of the time served)."""

    model_config = ConfigDict(extra="forbid")
    rows: Rows


PREDICTION_ROUTES = ["/predict", "/predict_rows"]
JSON = ContentType("application/json")  # a declared media type: BentoML otherwise derives it per response
# from the output's JSON schema (~0.3 ms a request)


@bentoml.service(
    name="airloop_serving",
    traffic={"timeout": 10, "max_concurrency": 64},
    workers=1,
    http={"host": "127.0.0.1", "port": 3000},
    # Per-request costs of BentoML's middleware on the prediction routes, measured on a no-op service:
    # an OpenTelemetry span (~0.4 ms; no exporter is configured: remove the exclusion with one) and an
    # access-log line (~0.1 ms; the live-traffic log records every served row with its request id).
    tracing={"excluded_urls": PREDICTION_ROUTES},
    logging={"access": {"skip_paths": PREDICTION_ROUTES}},
)
class PredictionService:
    def __init__(self) -> None:
        import torch

        from airloop.journal import Journal
        from airloop.livelog import LiveLog

        # One intra-op thread: a request's network pass is a few small matrix products, and OpenMP
        # threads waiting for a busy second core made a one-row pass take ~25 ms instead of ~0.3 ms.
        torch.set_num_threads(1)
        self.registry = RESOURCES.registry  # also points this process's MLflow at the tracking store
        self.store = RESOURCES.feature_store()
        # A fresh deployment has no feature definitions (materialize_features applies them) and no champion
        # (train_model promotes one) yet: the service starts anyway, /readyz and /predict answer 503 until
        # the watcher finds both; it does not crash-loop.
        self.lookup: OnlineLookup | None = None
        self.champion: RegisteredModel | None = None
        self.shadow: RegisteredModel | None = None  # scored beside the champion, logged, never answered
        self._waiting_for = ""  # what the service last said it waits for (logged once, not every tick)
        self._shadow_failed = ""  # the shadow version whose scoring failure was logged
        self._store_error = ""  # why the online store is taken for down ("" while it answers)
        self._refused: set[str] = set()  # versions the loader refused (pickled: AIRLOOP_ALLOW_PICKLED_MODELS)
        self._become_ready()
        # Answered rows: journaled before each answer (a killed service loses none), then in the live
        # log: the lake's Parquet, or PostgreSQL in production.
        self.journal: Journal | None = (
            Journal(SETTINGS.serving_journal_dir, SETTINGS.serving_journal_fsync)
            if SETTINGS.serving_journal and SETTINGS.serving_journal_dir is not None
            else None
        )
        self.live: LiveLog = LiveLog(RESOURCES.live_store, journal=self.journal)
        self.scorer = Scorer(self)
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="champion-watch", daemon=True)
        self._watcher.start()
        # The libraries and the model are ~0.5M objects that live as long as the process: frozen out of
        # the cyclic collector's reach, a full collection takes ~10 ms instead of ~300 ms (at 1,000
        # requests a second one ran every ~2.5 s). Frozen objects are freed by reference counting only:
        # this first champion, once swapped out, may keep a little memory.
        gc.collect()
        gc.freeze()

    def _load(self, alias: str, version: str) -> RegisteredModel:
        """A version, as one object swapped as a whole (version, model and its input columns)."""
        from airloop.model.pyfunc import RegisteredModel

        model = RegisteredModel(f"models:/{USE_CASE.model_name}/{version}", version)
        model.score({c: [] for c in model.inputs}, [])  # its array scorer is built before it serves
        logger.info("%s: %s v%s", alias, USE_CASE.model_name, version)
        return model

    def _become_ready(self) -> None:
        """Build the feature lookup once its definitions exist; load a new champion when the alias moved,
        and the shadow version (``ModelSpec.shadow``) when it differs from the champion."""
        from feast.errors import FeastObjectNotFoundException

        from airloop.featurestore import online_lookup
        from airloop.model.pyfunc import UntrustedModelError
        from airloop.registry import CHAMPION, SHADOW

        if self.lookup is None:
            try:
                lookup = online_lookup(self.store, USE_CASE)
                self.lookup = lookup.bound(SETTINGS.serving_store_timeout_seconds)
            except FeastObjectNotFoundException as exc:
                self._not_ready(f"{exc} (materialize_features applies the feature definitions)")
                self.store.refresh_registry()  # the next tick sees definitions applied meanwhile
                return
        version = self.registry.version_of(CHAMPION)
        if version is None:
            if self.champion is None:
                self._not_ready(f"no champion of {USE_CASE.model_name} yet (train_model promotes one)")
        elif (self.champion is None or version != self.champion.version) and version not in self._refused:
            try:
                champion = self._load(CHAMPION, version)
            except UntrustedModelError as exc:  # keep serving the current one (or stay not ready)
                self._refuse(version, exc)
                if self.champion is None:
                    self._not_ready(str(exc))
                return
            if self.champion is not None:
                MODEL_INFO.labels(model=USE_CASE.model_name, version=self.champion.version).set(0)
            MODEL_INFO.labels(model=USE_CASE.model_name, version=version).set(1)
            self.champion = champion  # one reference assignment: a batch holds the one it began with
        shadowing = USE_CASE.model is not None and USE_CASE.model.shadow.enabled
        shadow = self.registry.version_of(SHADOW) if shadowing else None
        if shadow is None or shadow == version:
            if self.shadow is not None:
                logger.info("shadow: v%s no longer scored", self.shadow.version)
                SHADOW_INFO.labels(model=USE_CASE.model_name, version=self.shadow.version).set(0)
            self.shadow = None
        elif (self.shadow is None or shadow != self.shadow.version) and shadow not in self._refused:
            if self.shadow is not None:
                SHADOW_INFO.labels(model=USE_CASE.model_name, version=self.shadow.version).set(0)
            self.shadow = None
            try:
                self.shadow = self._load(SHADOW, shadow)
            except UntrustedModelError as exc:
                self._refuse(shadow, exc)
                return
            SHADOW_INFO.labels(model=USE_CASE.model_name, version=shadow).set(1)

    def _refuse(self, version: str, error: Exception) -> None:
        """A version the loader refuses (``UntrustedModelError``): said once, not every tick."""
        self._refused.add(version)
        logger.error("refusing %s v%s: %s", USE_CASE.model_name, version, error)

    def _not_ready(self, reason: str) -> None:
        if reason != self._waiting_for:
            logger.warning("not ready: %s; checking every %.0f s", reason, SETTINGS.serving_watch_seconds)
            self._waiting_for = reason

    def _watch(self) -> None:
        """Every ``STORE_PROBE_SECONDS``: is the online store answering? Every ``serving_watch_seconds``:
        has the champion (or the shadow) moved?"""
        due = time.monotonic() + SETTINGS.serving_watch_seconds
        while not self._stop.wait(min(STORE_PROBE_SECONDS, SETTINGS.serving_watch_seconds)):
            if self.lookup is not None:
                try:
                    self.lookup.ping()
                except StoreUnavailableError as error:
                    self.store_down(error)
                else:
                    self.store_up()
            if time.monotonic() < due:
                continue
            due = time.monotonic() + SETTINGS.serving_watch_seconds
            try:
                self._become_ready()
            except Exception:  # keep serving the current model; the next tick tries again
                logger.exception("champion check failed")

    def store_down(self, error: Exception) -> None:
        """The online store stopped answering: 503 (``Retry-After``) at once and not ready until a probe
        gets an answer again."""
        if not self._store_error:
            logger.error("not ready: %s; probing every %.0f s", error, STORE_PROBE_SECONDS)
        self._store_error = str(error)

    def store_up(self) -> None:
        if self._store_error:
            logger.warning("online store answers again: ready")
            self._store_error = ""

    def __is_ready__(self) -> bool:
        """BentoML's /readyz: ready once the feature lookup is built and a champion is loaded, and while
        the online store answers."""
        return self.lookup is not None and self.champion is not None and not self._store_error

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        self._stop.set()
        self.scorer.write_log()  # rows scored since the last hand-over
        self.live.close()
        if self.journal is not None:
            self.journal.close()  # what the store refused stays on disk for the next start

    def record(self, scored: Scored) -> None:
        """Journal a batch's answered rows (before its answers leave; nothing without a journal)."""
        if self.journal is not None:
            self.journal.append(answered_columns(scored))

    def rotate_journal(self) -> Path | None:
        """The journal segment holding the rows handed to the live log now."""
        return self.journal.rotate() if self.journal is not None else None

    @bentoml.api(input_spec=PredictRequest)
    async def predict(self, rows: Rows, as_of: datetime | None = None) -> Annotated[dict[str, Any], JSON]:
        # (the media type and the body size were checked before parsing: RequestGuard)
        self._require_champion()
        return await self.scorer.submit(rows, as_of, REQUEST_ID.get())

    @bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=1000, input_spec=RowsRequest)
    async def predict_rows(self, rows: Rows) -> Annotated[list[dict[str, Any]], JSON]:
        """BentoML's adaptive batching: concurrent requests' rows are scored together, up to 64 rows, as
        of the time served; body ``{"rows": [...]}``, one answer per row. ``max_latency_ms`` does not
        make batches leave sooner (BentoML's dispatcher times them from the latencies it observes): it
        is the expected wait past which requests are shed with a 503 (at 100 ms some were, at 8 clients
        on the shared 2-core machine)."""
        self._require_champion()
        return (await self.scorer.submit(rows, None))["predictions"]

    def _require_champion(self) -> None:
        if self._store_error:
            from bentoml.exceptions import ServiceUnavailable

            raise ServiceUnavailable(f"not ready: {self._store_error}")
        if self.lookup is None or self.champion is None:
            from bentoml.exceptions import ServiceUnavailable

            if self.lookup is None:
                raise ServiceUnavailable(
                    "not ready: no feature definitions applied yet (materialize_features)"
                )
            raise ServiceUnavailable(
                f"not ready: no champion of {USE_CASE.model_name} yet: train and promote one"
            )

    def score(self, batch: list[Pending]) -> tuple[list[dict[str, Any]], Scored]:
        """Answers for a batch of requests, all scored by one champion, and their rows for the log."""
        champion = self.champion  # this batch's model, whatever the watcher does meanwhile
        assert champion is not None and self.lookup is not None  # the endpoints answer 503 before both exist
        answers, scored = score_batch(self.lookup, champion, batch, datetime.now(UTC))
        ROWS_SERVED.labels(version=champion.version).inc(sum(scored.counts))
        BATCH_REQUESTS.observe(len(batch))
        return answers, scored

    def score_shadow(self, scored: Scored) -> None:
        """The shadow version's scores of rows already answered (for the log only): the same features,
        the same per-request groups. A shadow that fails is logged once per version and never affects
        an answer."""
        shadow = self.shadow
        if shadow is None or shadow.version == scored.version:
            return
        try:
            scored.shadow_probability, scored.shadow_label = shadow.score(scored.features, scored.counts)
        except Exception:  # the answer left already: the rows are logged without a shadow
            if self._shadow_failed != shadow.version:
                logger.exception(
                    "shadow v%s cannot score the served rows; logging them without it", shadow.version
                )
                self._shadow_failed = shadow.version
            return
        scored.shadow_version = str(shadow.version)
        ROWS_SHADOWED.labels(version=shadow.version).inc(sum(scored.counts))


def score_batch(
    lookup: OnlineLookup, champion: RegisteredModel, batch: Sequence[Pending], served_at: datetime
) -> tuple[list[dict[str, Any]], Scored]:
    """One answer per request (``{"request_id", "model_version", "predictions"}``) and the rows for the
    live-traffic log. A request without ``as_of`` is scored as of ``served_at``; each request's rows
    pass through the network on their own (``RegisteredModel.score`` groups)."""
    rows = [row for request in batch for row in request.rows]
    counts = [len(request.rows) for request in batch]
    columns = {
        name: [getattr(row, name) for row in rows]
        for name in dict.fromkeys([*lookup.request_columns, *LOGGED_INPUTS])
    }
    as_of = [request.as_of or served_at for request in batch for _ in request.rows]
    features = lookup.features(columns, as_of)
    probability, label = champion.score(features, counts)
    flags = {
        name: values.tolist() for name, values in features.items() if name.endswith(("__unknown", "__stale"))
    }
    request_ids = [request.request_id or uuid.uuid4().hex for request in batch]
    answers, start = [], 0
    for request_id, count in zip(request_ids, counts, strict=True):
        end = start + count
        answers.append(
            {
                "request_id": request_id,
                "model_version": champion.version,
                "predictions": [
                    {
                        "probability": p,
                        "label": lab,
                        "model_version": champion.version,
                        "flags": {name: values[i] for name, values in flags.items()},
                    }
                    for i, p, lab in zip(
                        range(start, end),
                        probability[start:end].tolist(),
                        label[start:end].tolist(),
                        strict=True,
                    )
                ],
            }
        )
        start = end
    return answers, Scored(
        features,
        probability,
        label,
        str(champion.version),
        request_ids,
        counts,
        served_at,
        {name: columns[name] for name in LOGGED_INPUTS},
    )


# Before BentoML parses a body: 415 for a media type other than JSON, 413 past the size cap, and the
# request id every answer, log line and live-log row of a /predict request carries (serving/http.py).
PredictionService.add_asgi_middleware(
    RequestGuard,
    routes=PREDICTION_ROUTES,
    max_body_bytes=SETTINGS.serving_max_body_bytes,
    token=SETTINGS.serving_token.get_secret_value() if SETTINGS.serving_token else None,
)
logging.getLogger("bentoml._internal.server.http_app").addFilter(OneLineBadRequests())
if SETTINGS.env == "production" and SETTINGS.serving_token is None:
    # compose and the Kubernetes manifests require a token; running without one is a choice (mTLS at a
    # proxy in front): say so once at start, not on every request
    logger.warning(
        "serving without authentication: AIRLOOP_SERVING_TOKEN is not set; /predict and /predict_rows "
        "are open to whoever reaches this port (set it, or terminate mTLS at a proxy in front)"
    )
