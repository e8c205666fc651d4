"""The HTTP guards of the prediction routes (airloop.serving.http), on a recording ASGI app."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from pydantic import BaseModel, ValidationError

from airloop.serving.http import REQUEST_ID, OneLineBadRequests, RequestGuard, describe_rejection


class App:
    """Records what reached it (the body it read, the request id it saw) and answers 200."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    async def __call__(self, scope, receive, send):
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.calls.append({"body": body, "request_id": REQUEST_ID.get()})
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-request-id", b"theirs")]})
        await send({"type": "http.response.body", "body": b"ok"})


def call(guard, headers, chunks, path="/predict", method="POST"):
    scope = {"type": "http", "path": path, "method": method, "headers": headers}
    incoming = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)
    ]
    sent: list[dict] = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


JSON = (b"content-type", b"application/json; charset=utf-8")


def test_wrong_or_missing_media_type_is_415_before_the_app():
    app = App()
    guard = RequestGuard(app, ["/predict", "/predict_rows"], max_body_bytes=1024)
    for headers in (
        [(b"content-type", b"multipart/form-data; boundary=x")],
        [(b"content-type", b"application/x-www-form-urlencoded")],
        [],
    ):
        for path in ("/predict", "/predict_rows"):
            status, out, body = call(guard, headers, [b"rows=1"], path=path)
            assert status == 415 and json.loads(body)["field"] == "Content-Type", body
            assert out[b"content-type"] == b"application/json"
    assert app.calls == []


def test_body_over_the_cap_is_413_by_length_or_while_streamed():
    app = App()
    guard = RequestGuard(app, ["/predict"], max_body_bytes=1024)
    status, _, body = call(guard, [JSON, (b"content-length", b"5000000")], [b"{}"])
    assert status == 413 and json.loads(body)["field"] == "body"
    status, _, _ = call(guard, [JSON], [b"x" * 600, b"x" * 600, b"x" * 600])  # chunked, no length
    assert status == 413 and app.calls == []
    status, _, _ = call(guard, [JSON], [b'{"rows":', b" []}"])  # chunked under the cap: handed on whole
    assert status == 200 and app.calls[-1]["body"] == b'{"rows": []}'


def test_every_request_gets_a_new_id_of_the_servers():
    """Never the client's: the live log is de-duplicated by request id."""
    app = App()
    guard = RequestGuard(app, ["/predict"], max_body_bytes=1024)
    ids = set()
    for _ in range(3):
        status, out, _ = call(guard, [JSON, (b"x-request-id", b"abc-123")], [b"{}"])
        made = out[b"x-request-id"].decode()
        assert status == 200 and len(made) == 32 and app.calls[-1]["request_id"] == made
        ids.add(made)
    assert len(ids) == 3
    _, out, _ = call(guard, [JSON], [b"{}"], path="/readyz", method="GET")  # other routes: untouched
    assert out[b"x-request-id"] == b"theirs" and REQUEST_ID.get() is None


def test_rejected_requests_log_one_line_server_errors_keep_the_traceback(caplog):
    class Body(BaseModel):
        flight: int

    logger = logging.getLogger("test.http_app")
    logger.addFilter(OneLineBadRequests())
    token = REQUEST_ID.set("req-1")
    try:
        with caplog.at_level(logging.INFO, logger="test.http_app"):
            try:
                Body(flight="one")
            except ValidationError:
                logger.error("Exception on %s [%s]", "/predict", "POST", exc_info=True)
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                logger.error("Exception on %s [%s]", "/predict", "POST", exc_info=True)
    finally:
        REQUEST_ID.reset(token)
    bad, crash = caplog.records
    line = bad.getMessage()
    assert bad.exc_info is None and bad.levelno == logging.INFO and "\n" not in line
    assert "/predict" in line and "req-1" in line and "flight" in line
    assert crash.exc_info is not None and crash.levelno == logging.ERROR


@pytest.mark.parametrize("code, kept", [(400, True), (404, True), (500, False), (503, True)])
def test_describe_rejection_by_status(code, kept):
    class CodedError(Exception):
        class error_code:  # noqa: N801 - the shape of BentoMLException's
            value = code

    assert (describe_rejection(CodedError("why")) is not None) is kept


def test_a_configured_token_is_required_on_the_prediction_routes_only():
    app = App()
    guard = RequestGuard(app, ["/predict"], max_body_bytes=1024, token="s3cret")
    status, out, body = call(guard, [JSON], [b"{}"])
    assert status == 401 and out[b"www-authenticate"].startswith(b"Bearer") and app.calls == []
    assert json.loads(body)["field"] == "Authorization"
    status, _, _ = call(guard, [JSON, (b"authorization", b"Bearer wrong")], [b"{}"])
    assert status == 401
    status, _, _ = call(guard, [JSON, (b"authorization", b"Bearer s3cret")], [b"{}"])
    assert status == 200 and len(app.calls) == 1
    status, _, _ = call(guard, [], [b""], path="/readyz", method="GET")  # probes stay open
    assert status == 200


def test_a_body_that_stops_arriving_is_408_and_a_hang_up_gets_no_answer():
    """A client that stalls mid-body is answered 408 within ``body_timeout`` (BentoML's traffic timeout
    would answer 504, a server error, for it), one that hangs up gets nothing (BentoML would log its
    ``ClientDisconnect`` as a 500 with a traceback); a body sent in pieces reaches the app whole."""
    app = App()
    guard = RequestGuard(app, ["/predict"], max_body_bytes=1024, body_timeout=0.05)
    status, _, _ = call(guard, [JSON, (b"content-length", b"12")], [b'{"rows":', b" []}"])
    assert status == 200 and app.calls[-1]["body"] == b'{"rows": []}'

    def send_then(after):
        scope = {"type": "http", "path": "/predict", "method": "POST", "headers": [JSON]}
        incoming = [{"type": "http.request", "body": b'{"rows":', "more_body": True}]
        sent: list[dict] = []

        async def receive():
            return incoming.pop(0) if incoming else await after()

        async def send(message):
            sent.append(message)

        asyncio.run(guard(scope, receive, send))
        return sent

    async def never():
        await asyncio.Event().wait()

    async def hang_up():
        return {"type": "http.disconnect"}

    start, body = send_then(never)
    assert start["status"] == 408 and (b"connection", b"close") in start["headers"]
    assert json.loads(body["body"])["field"] == "body"
    assert send_then(hang_up) == [] and len(app.calls) == 1
