"""HTTP guards in front of the prediction routes (plain ASGI: no BentoML import, unit-testable).

``RequestGuard`` answers before anything parses a body: 415 for a media type other than JSON (multipart,
form-encoded, none), 413 for a body larger than ``max_body_bytes`` (by its ``Content-Length`` at once; a
chunked body is read up to the cap, never past it), 408 for a body that has not arrived within
``body_timeout`` (a client that stalls mid-body is its own fault, not the server's 504), and nothing for a
client that hung up mid-body (no answer to send; BentoML would log its ``ClientDisconnect`` as a 500
with a traceback). The body reaches BentoML whole. Every request on those routes gets a new request id
in a context variable and in the response's ``X-Request-ID`` header: ``/predict`` answers and logs its
rows under it. (Always the server's own: the live log's rows are de-duplicated by request id, so a client
must not be able to give two requests the same one.)

With a ``token`` (``AIRLOOP_SERVING_TOKEN``), a request without ``Authorization: Bearer <token>`` is a
401 before anything else (compared in constant time); health (``/livez``, ``/readyz``) and ``/metrics``
stay open for probes and scrapers.

``OneLineBadRequests`` turns BentoML's traceback for a rejected request (a validation error or a 4xx
``BentoMLException``: ~25 lines each) into one line with the route, the request id and the reason; server
errors keep their traceback.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BODY_TIMEOUT_SECONDS = 5.0
"""How long a request body may take to arrive: below the service's traffic timeout (10 s), so a client that
stops sending mid-body is answered 408 (its fault) before BentoML's timeout answers 504 (a server error)."""

RETRY_AFTER_SECONDS = b"1"
"""``Retry-After`` of a 503 on the prediction routes (not ready yet, or the online store unreachable: the
service probes it every second)."""

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("airloop_request_id", default=None)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _reject(
    send: Send, status: int, error: str, field: str, request_id: str, extra: list | None = None
) -> None:
    body = json.dumps({"error": error, "field": field, "request_id": request_id}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),  # (X-Request-ID: added by _with_id)
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, cap: int) -> bytes | None:
    """The request body, whole; None when the client hung up. It stops at the first chunk past ``cap``
    (the caller answers 413 for a body longer than that)."""
    chunks: list[bytes] = []
    size, more = 0, True
    while more and size <= cap:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


class RequestGuard:
    """ASGI middleware: media type, body size and request id of POSTs to ``routes``."""

    def __init__(
        self,
        app: ASGIApp,
        routes: list[str],
        max_body_bytes: int,
        token: str | None = None,
        body_timeout: float = BODY_TIMEOUT_SECONDS,
    ) -> None:
        self.app, self.routes, self.max_body_bytes = app, set(routes), max_body_bytes
        self.body_timeout = body_timeout
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") not in self.routes:
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        try:
            await self._guarded(scope, receive, self._with_id(send, request_id), request_id)
        finally:
            REQUEST_ID.reset(token)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        if self.expected is not None:
            given = (_header(scope, b"authorization") or "").encode("latin-1")
            if not hmac.compare_digest(given, self.expected):
                await _reject(
                    send,
                    401,
                    "a bearer token is required (Authorization: Bearer <AIRLOOP_SERVING_TOKEN>)",
                    "Authorization",
                    request_id,
                    [(b"www-authenticate", b'Bearer realm="airloop"')],
                )
                return
        if scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        media = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if media != "application/json":
            await _reject(
                send,
                415,
                f"Content-Type must be application/json, got {media or 'none'!r}",
                "Content-Type",
                request_id,
            )
            return
        length = _header(scope, b"content-length")
        cap = self.max_body_bytes
        if length is not None and (not length.isdigit() or int(length) > cap):
            await _reject(
                send, 413, f"request body of {length} bytes exceeds {cap} bytes", "body", request_id
            )
            return
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await _read_body(receive, cap)
        except TimeoutError:
            await _reject(
                send,
                408,
                f"request body not received within {self.body_timeout:g} s",
                "body",
                request_id,
                [(b"connection", b"close")],
            )
            return
        if body is None:  # the client hung up: nobody to answer (BentoML would log a 500 with a traceback)
            return
        if len(body) > cap:
            await _reject(send, 413, f"request body exceeds {cap} bytes", "body", request_id)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    def _with_id(send: Send, request_id: str) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                if message.get("status") == 503 and not any(k.lower() == b"retry-after" for k, _ in headers):
                    headers.append((b"retry-after", RETRY_AFTER_SECONDS))  # not ready / a dependency down
                message["headers"] = headers
            await send(message)

        return wrapped


def describe_rejection(exc: BaseException) -> str | None:
    """The one-line reason of a rejected request (a 4xx, or a 503: not ready, the online store down); None
    for an error that is the server's (a traceback belongs with those)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        errors = exc.errors(include_context=False, include_input=False)
        shown = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:3])
        return f"{exc.error_count()} validation error(s): {shown}" + (" ..." if len(errors) > 3 else "")
    code = getattr(getattr(exc, "error_code", None), "value", None)
    if isinstance(code, int) and (400 <= code < 500 or code == 503):  # 503: not ready / a dependency down
        return f"{code}: {exc}"
    return None


class OneLineBadRequests(logging.Filter):
    """On BentoML's request-error logger: a rejected request is logged as one line, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        reason = describe_rejection(exc) if exc is not None else None
        if reason is None:
            return True
        path = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        what = "unavailable" if reason.startswith("503") else "bad request"
        record.msg, record.args = f"{what} on %s (request %s): %s", (path, REQUEST_ID.get(), reason)
        record.exc_info, record.exc_text, record.levelno, record.levelname = None, None, logging.INFO, "INFO"
        return True
