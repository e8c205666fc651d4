"""A fuzz of the prediction service's HTTP contract (issue 13): no request, however malformed, gets a 5xx.

A real ``bentoml serve`` on 127.0.0.1 with the session's champion answers three kinds of traffic:

- schemathesis, from the service's own OpenAPI document (``/docs.json``): its coverage phase (boundary
  values, missing and extra fields, wrong types, unexpected methods) and a bounded, derandomized fuzzing
  phase in positive and negative mode, for every operation;
- hand-made requests a schema-driven generator does not write: broken or deeply nested JSON, NaN, other
  encodings and media types, edge-of-calendar instants, broken HTTP framing, a client that stalls or hangs
  up mid-body;
- valid rows drawn by hypothesis (the cross-field rules hold: the schema cannot say so, and schemathesis'
  rows are refused before they reach the model), so the scoring path is fuzzed too: all must be 200.

Besides what each client saw, the server's own account of each test's traffic: no 5xx counted in its
``/metrics``, no traceback in its log; and once the module is done, its log up to a graceful shutdown (the
live log's last write included) holds no traceback either.

schemathesis runs as its command line (its pytest plugin cannot take the schema from a fixture under
pytest 9: ``'Function' object has no attribute '_nodeid'``). Checks asserted besides
``not_a_server_error``: ``negative_data_rejection`` (what the schema forbids is refused),
``content_type_conformance`` and ``unsupported_method`` (405 for other methods). Not asserted, because
BentoML generates the OpenAPI document and it does not say so (our code does not choose these):
``status_code_conformance`` (the 401/408/413/415 of ``RequestGuard`` are undocumented),
``positive_data_acceptance`` (the body is not marked required; the cross-field rules cannot be written in
JSON Schema) and ``response_schema_conformance`` (BentoML documents its 400 body's ``detail`` as a string
and sends pydantic's list of errors there; its 200 schemas are any object, nothing to conform to).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from conftest import ROW
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_serving_http import start_server, stop_server

pytestmark = pytest.mark.slow

MAX_ROWS, MAX_BODY = 50, 65536
EXAMPLES = 100
"""schemathesis' fuzzing-phase examples per operation and mode, on top of its coverage phase's cases."""
BOUNDED = settings(
    max_examples=30,
    derandomize=True,  # the same requests on every run (a failure is reproducible)
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: every example is a request to a live server
    suppress_health_check=list(HealthCheck),
)


class Server:
    """The service under test: its base URL and its log."""

    def __init__(self, url: str, log: Path) -> None:
        self.url, self.log = url, log

    def server_errors(self) -> tuple[dict[str, float], int]:
        """The server's own account so far: its 5xx counts by route and status, and the log's length."""
        metrics = httpx.get(f"{self.url}/metrics", timeout=30).text
        counted = re.findall(
            r'request_total\{endpoint="([^"]*)",http_response_code="(5\d\d)"[^}]*\} (\d+(?:\.\d+)?)', metrics
        )
        return {f"{route} {code}": float(n) for route, code, n in counted}, len(self.log.read_bytes())

    @contextlib.contextmanager
    def no_server_error(self) -> Iterator[None]:
        """What the block sent: no 5xx counted in ``/metrics``, no traceback logged."""
        counts, start = self.server_errors()
        yield
        after, _ = self.server_errors()
        assert {k: n - counts.get(k, 0) for k, n in after.items() if n > counts.get(k, 0)} == {}, after
        logged = self.log.read_bytes()[start:].decode(errors="replace")
        assert "Traceback" not in logged, logged[logged.index("Traceback") - 500 :][:4000]


@pytest.fixture(scope="module")
def fuzz_server(champion_home, tmp_path_factory):
    """``bentoml serve`` on a copy of the champion's state (its live log takes the fuzz's rows)."""
    home = tmp_path_factory.mktemp("fuzz") / "home"
    shutil.copytree(champion_home, home)
    client, process = start_server(
        home, AIRLOOP_SERVING_MAX_ROWS=str(MAX_ROWS), AIRLOOP_SERVING_MAX_BODY_BYTES=str(MAX_BODY)
    )
    log = home / f"serve-{client.base_url.port}.log"
    try:
        yield Server(f"http://127.0.0.1:{client.base_url.port}", log)
    finally:
        stop_server(client, process)  # graceful: the live log writes what it holds
    written = log.read_text(errors="replace")
    assert "Traceback" not in written, written[written.index("Traceback") - 500 :][:4000]


CHECKS = ["not_a_server_error", "negative_data_rejection", "content_type_conformance", "unsupported_method"]


def test_schemathesis_finds_no_server_error(fuzz_server, tmp_path):
    """schemathesis' runner on the service's OpenAPI document: its coverage phase and a derandomized
    fuzzing phase (positive and negative mode, ``EXAMPLES`` per operation) for every operation, the
    ``CHECKS`` on every answer; and, from its report, no answer of any request >= 500."""
    report = tmp_path / "schemathesis.ndjson"
    with fuzz_server.no_server_error():
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                f"{fuzz_server.url}/docs.json",
                "--url",
                fuzz_server.url,
                "--checks",
                ",".join(CHECKS),
                "--phases",
                "coverage,fuzzing",
                "--mode",
                "all",
                "--max-examples",
                str(EXAMPLES),
                "--generation-deterministic",
                "--continue-on-failure",
                "--workers",
                "1",
                "--request-timeout",
                "30",
                "--no-color",
                "--report",
                "ndjson",
                "--report-ndjson-path",
                str(report),
            ],
            cwd=tmp_path,  # (no schemathesis.toml is looked for in the repository)
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
        answered = Counter()
        for line in report.read_text().splitlines():
            event = json.loads(line)
            if "ScenarioFinished" in event:
                recorder = event["ScenarioFinished"]["recorder"]
                for interaction in recorder["interactions"].values():
                    status = (interaction.get("response") or {}).get("status_code")
                    answered[recorder["label"], status] += 1
        assert [key for key in answered if key[1] is None or key[1] >= 500] == [], answered
        assert {"POST /predict", "POST /predict_rows", "GET /readyz", "GET /livez", "GET /metrics"} <= {
            label for label, _ in answered
        }
        assert sum(answered.values()) > 300, answered


def raw(url: str, request: bytes, timeout: float = 15) -> tuple[int, bytes]:
    """Send bytes as they are (framing httpx refuses to write; each asks the server to close the
    connection) and read the answer to its end: the status and the body."""
    host, port = url.removeprefix("http://").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer.partition(b"\r\n\r\n")[2]


def post(path: str, body: bytes, *headers: bytes) -> bytes:
    head = [
        f"POST {path} HTTP/1.1".encode(),
        b"Host: 127.0.0.1",
        b"Connection: close",
        *headers,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


JSON = b"Content-Type: application/json"
ONE = json.dumps({"rows": [ROW]}).encode()


def length(body: bytes) -> bytes:
    return f"Content-Length: {len(body)}".encode()


def rows_with(**changes) -> bytes:
    return json.dumps({"rows": [{**ROW, **changes}]}).encode()


# name -> (body, expected status, a text the answer names); each is sent to /predict and /predict_rows
BODIES: dict[str, tuple[bytes, int, str]] = {
    "empty body": (b"", 400, "rows"),
    "null": (b"null", 400, "object"),
    "a list": (b"[]", 400, "object"),
    "a string": (b'"rows"', 400, "object"),
    "rows null": (b'{"rows": null}', 400, "rows"),
    "rows an object": (b'{"rows": {}}', 400, "rows"),
    "a null row": (b'{"rows": [null]}', 400, "rows"),
    "a list as a row": (b'{"rows": [[]]}', 400, "rows"),
    "truncated JSON": (b'{"rows": [', 400, "JSON"),
    "NaN": (ONE.replace(b'"distance": 1400', b'"distance": NaN'), 400, "distance"),
    "Infinity": (ONE.replace(b'"distance": 1400', b'"distance": Infinity'), 400, "distance"),
    "1e309": (ONE.replace(b'"distance": 1400', b'"distance": 1e309'), 400, "distance"),
    "a 400-digit number": (ONE.replace(b'"flight": 1545', b'"flight": ' + b"9" * 400), 400, "flight"),
    "a fractional flight number": (rows_with(flight=1545.5), 400, "flight"),
    "a 60 KB string": (rows_with(carrier="A" * 60000), 400, "carrier"),
    "invalid UTF-8": (ONE.replace(b'"UA"', b'"\xff\xfe"'), 400, "JSON"),
    "a lone surrogate": (ONE.replace(b'"UA"', b'"\\ud800"'), 400, "JSON"),
    "a byte order mark": (b"\xef\xbb\xbf" + ONE, 400, "JSON"),
    "UTF-16": (json.dumps({"rows": [ROW]}).encode("utf-16"), 400, "JSON"),
    "nested 30,000 deep": (b'{"rows": ' + b"[" * 30000 + b"]" * 30000 + b"}", 400, "JSON"),
    "duplicate keys": (b'{"rows": [], "rows": [{}]}', 400, "rows"),
    "time_hour year 1, +01:00": (rows_with(time_hour="0001-01-01T00:00:00+01:00"), 400, "time_hour"),
    "time_hour year 1, UTC": (rows_with(time_hour="0001-01-01T00:00:00Z"), 400, "time_hour"),
    "time_hour year 9999, -05:00": (rows_with(time_hour="9999-12-31T23:00:00-05:00"), 400, "time_hour"),
    "time_hour offset +25:00": (rows_with(time_hour="2013-01-29T20:00:00+25:00"), 400, "time_hour"),
    "time_hour a huge number": (rows_with(time_hour=10**20), 400, "time_hour"),
    "51 rows": (json.dumps({"rows": [ROW] * (MAX_ROWS + 1)}).encode(), 400, "rows"),
}
AS_OF = {  # /predict only
    "as_of year 1, +05:00": ('"0001-01-01T00:00:00+05:00"', 400, "as_of"),
    "as_of year 9999, -05:00": ('"9999-12-31T23:00:00-05:00"', 400, "as_of"),
    "as_of a huge number": ("1" + "0" * 20, 400, "as_of"),
    "as_of a list": ("[]", 400, "as_of"),
    "as_of null": ("null", 200, "predictions"),
}
FRAMING: dict[str, tuple[bytes, int]] = {  # path, headers and body as sent -> expected status
    "Content-Length -1": (post("/predict", ONE, JSON, b"Content-Length: -1"), 400),
    "Content-Length not a number": (post("/predict", ONE, JSON, b"Content-Length: abc"), 400),
    "Content-Length 10^22": (post("/predict", ONE, JSON, b"Content-Length: " + b"9" * 22), 400),
    "Content-Length and chunked": (
        post(
            "/predict", b"5\r\n{}   \r\n0\r\n\r\n", JSON, b"Content-Length: 5", b"Transfer-Encoding: chunked"
        ),
        400,
    ),
    "a chunk size that is not hex": (
        post("/predict", b"zz\r\n{}\r\n0\r\n\r\n", JSON, b"Transfer-Encoding: chunked"),
        400,
    ),
    "chunked, over the cap": (
        post(
            "/predict_rows",
            (b"8000\r\n" + b" " * 0x8000 + b"\r\n") * 3 + b"0\r\n\r\n",
            JSON,
            b"Transfer-Encoding: chunked",
        ),
        413,
    ),
    "Content-Length over the cap": (
        post("/predict", ONE, JSON, f"Content-Length: {MAX_BODY + 1}".encode()),
        413,
    ),
    "media type text/json": (post("/predict", ONE, b"Content-Type: text/json", length(ONE)), 415),
    "media type application/json-seq": (
        post("/predict", ONE, b"Content-Type: application/json-seq", length(ONE)),
        415,
    ),
    "two media types": (post("/predict", ONE, b"Content-Type: text/plain", JSON, length(ONE)), 415),
    "a media type in bytes beyond ASCII": (post("/predict", ONE, JSON + b"\xff", length(ONE)), 415),
    "APPLICATION/JSON; charset=utf-8": (
        post("/predict", ONE, b"Content-Type: APPLICATION/JSON; charset=utf-8", length(ONE)),
        200,
    ),
    "an X-Request-ID of 8 KB beyond ASCII": (
        post("/predict", ONE, JSON, length(ONE), b"X-Request-ID: " + b"\xff" * 8000),
        200,
    ),
    "HTTP/1.0": (post("/predict", ONE, JSON, length(ONE)).replace(b"HTTP/1.1", b"HTTP/1.0", 1), 200),
    "GET /predict": (b"GET /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405),
    "DELETE /predict_rows": (b"DELETE /predict_rows HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405),
    "POST /readyz": (post("/readyz", ONE, JSON, length(ONE)), 405),
    "POST /metrics": (post("/metrics", ONE, JSON, length(ONE)), 405),
    "a path that is no route": (post("//predict", ONE, JSON, length(ONE)), 404),
    "a query string": (post("/predict?as_of=%ff&&=&", ONE, JSON, length(ONE)), 200),
}


def test_hand_made_malformed_requests_are_4xx_naming_what_is_wrong(fuzz_server):
    url, answers = fuzz_server.url, {}
    with (
        fuzz_server.no_server_error(),
        httpx.Client(base_url=url, timeout=30, headers={"Content-Type": "application/json"}) as client,
    ):
        for name, (body, status, names) in BODIES.items():
            for path in ("/predict", "/predict_rows"):
                answers[f"{name} {path}"] = (client.post(path, content=body), status, names)
        for name, (as_of, status, names) in AS_OF.items():
            body = b'{"rows": [%s], "as_of": %s}' % (json.dumps(ROW).encode(), as_of.encode())
            answers[f"{name} /predict"] = (client.post("/predict", content=body), status, names)
        framed = {case: (raw(url, request), status) for case, (request, status) in FRAMING.items()}
        for case, (response, status, names) in answers.items():
            assert response.status_code == status and names in response.text, (case, response.text[:500])
        for case, ((got, body), status) in framed.items():
            assert got == status, (case, got, body[:500])


def test_a_client_that_stalls_or_hangs_up_mid_body_is_not_a_server_error(fuzz_server):
    """Stalled: 408 within RequestGuard's body timeout (5 s), before BentoML's traffic timeout (10 s) would
    answer 504. Hung up: nothing to answer, and nothing logged as a server error."""
    stalled = {
        "Content-Length, a byte short": post("/predict", ONE[:-1], JSON, length(ONE)),
        "chunked, no last chunk": post(
            "/predict_rows", b'5\r\n{"row\r\n', JSON, b"Transfer-Encoding: chunked"
        ),
    }
    host, port = fuzz_server.url.removeprefix("http://").split(":")
    with fuzz_server.no_server_error():
        with ThreadPoolExecutor(len(stalled)) as pool:  # both wait out the body timeout at once
            answers = dict(
                zip(stalled, pool.map(partial(raw, fuzz_server.url), stalled.values()), strict=True)
            )
        for request in stalled.values():
            with socket.create_connection((host, int(port)), timeout=15) as sock:
                sock.sendall(request)  # and hang up
        # Nothing to wait on (the point is that nothing happens); one event loop reads those hang-ups
        # before it answers this later connection:
        after = httpx.post(
            f"{fuzz_server.url}/predict", content=ONE, headers={"Content-Type": "application/json"}
        )
        for case, (status, body) in answers.items():
            assert status == 408 and json.loads(body)["field"] == "body", (case, status, body)
        assert after.status_code == 200, after.text


NEW_YORK = ZoneInfo("America/New_York")
CARRIERS = ["9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV"]
DESTS = ["ATL", "BOS", "IAH", "LAX", "MIA", "ORD", "SFO"]


@st.composite
def valid_rows(draw) -> dict:
    """A scheduled flight that obeys every rule of the contract (cross-field ones included): any hour
    from 2000 to 2100, mostly around the champion's data; known and unknown carriers, routes, tails."""
    near = st.datetimes(datetime(2013, 1, 1, 6), datetime(2013, 2, 10))
    hour = draw(st.one_of(near, st.datetimes(datetime(2000, 1, 1, 6), datetime(2100, 12, 31, 23))))
    hour = hour.replace(minute=0, second=0, microsecond=0, tzinfo=UTC)
    local = hour.astimezone(NEW_YORK)
    minute = draw(st.integers(0, 59))
    return {
        "year": local.year,
        "month": local.month,
        "day": local.day,
        "sched_dep_time": local.hour * 100 + minute,
        "sched_arr_time": draw(st.integers(0, 23)) * 100 + draw(st.integers(0, 59)),
        "carrier": draw(st.sampled_from(CARRIERS) | st.from_regex(r"[A-Z0-9]{2}", fullmatch=True)),
        "flight": draw(st.integers(1, 9999)),
        "tailnum": draw(st.none() | st.from_regex(r"N?[A-Z0-9]{2,6}", fullmatch=True)),
        "origin": draw(st.sampled_from(["EWR", "JFK", "LGA"])),
        "dest": draw(st.sampled_from(DESTS) | st.from_regex(r"[A-Z]{3}", fullmatch=True)),
        "distance": draw(st.integers(1, 6000)),
        "hour": local.hour,
        "minute": minute,
        "time_hour": hour.isoformat().replace("+00:00", "Z"),
    }


OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=14)), NEW_YORK])
AS_OF_TIMES = st.none() | st.builds(
    lambda when, zone: when.replace(tzinfo=UTC).astimezone(zone).isoformat(),
    st.datetimes(datetime(2013, 1, 1, 6), datetime(2025, 1, 1)),
    OFFSETS,
)


@given(
    rows=st.lists(valid_rows(), min_size=1, max_size=MAX_ROWS),
    as_of=AS_OF_TIMES,
    path=st.sampled_from(["/predict", "/predict_rows"]),
)
@BOUNDED
def test_valid_rows_drawn_at_random_are_all_answered(fuzz_server, rows, as_of, path):
    """The scoring path, fuzzed: any valid request is a 200 with one prediction per row."""
    body = {"rows": rows} | ({"as_of": as_of} if path == "/predict" and as_of is not None else {})
    response = httpx.post(f"{fuzz_server.url}{path}", json=body, timeout=30)
    assert response.status_code == 200, (body, response.text[:1000])
    predictions = response.json()["predictions"] if path == "/predict" else response.json()
    assert len(predictions) == len(rows) and all(0 <= p["probability"] <= 1 for p in predictions)
