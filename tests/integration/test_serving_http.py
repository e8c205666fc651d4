"""The BentoML service over real HTTP: `bentoml serve` as a subprocess on 127.0.0.1, with a real MLflow
champion and real Feast online features (the session's ``champion_home``); and its fast scoring path
(direct online-store reads, array preprocessing, batches of requests) against the reference path
(Feast ``get_online_features`` with the on-demand view, ``apply_defaults``, the MLflow pyfunc), which
it must equal exactly."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC
from pathlib import Path

import httpx
import pytest
from conftest import ROW, free_port, wait_for

pytestmark = pytest.mark.slow

AS_OF = "2013-01-29T20:30:00Z"


@pytest.fixture(scope="module")
def serving_home(champion_home, tmp_path_factory):
    """The champion's state, copied: the servers' live log and the hot swap's registry changes stay here
    (other modules copy ``champion_home`` and must not see this traffic)."""
    home = tmp_path_factory.mktemp("serving") / "home"
    shutil.copytree(champion_home, home)
    return home


def start_server(home: Path, **env: str) -> tuple[httpx.Client, subprocess.Popen]:
    """``bentoml serve`` on a free loopback port with ``home`` as its state, once /readyz answers 200."""
    port = free_port()
    env = {
        **os.environ,
        "AIRLOOP_HOME": str(home),
        "AIRLOOP_SERVING_WATCH_SECONDS": "1",
        "AIRLOOP_SERVING_MAX_ROWS": "50",
        "AIRLOOP_SERVING_MAX_BODY_BYTES": "65536",
        # Its own BentoML home: the Prometheus multiprocess folder under it is shared by every server of a
        # home, and another one running meanwhile (another test session) would add its counts to ours.
        "BENTOML_HOME": str(home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
        **env,
    }
    bentoml = Path(sys.executable).with_name("bentoml")
    log = open(home / f"serve-{port}.log", "wb")
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
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if client.get("/readyz").status_code == 200:
                return client, process
        except httpx.HTTPError:
            pass
        assert process.poll() is None, (home / f"serve-{port}.log").read_text()[-3000:]
        time.sleep(1)
    os.killpg(process.pid, signal.SIGKILL)
    pytest.fail("service not ready in 120 s")


def stop_server(client: httpx.Client, process: subprocess.Popen) -> None:
    client.close()
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


@pytest.fixture()
def server(serving_home):
    client, process = start_server(serving_home)
    yield client, process, serving_home
    stop_server(client, process)


def predict(client, flights, **extra):
    return client.post("/predict", json={"rows": flights, "as_of": AS_OF, **extra})


VARIANTS = [
    ROW,
    {**ROW, "carrier": "AA", "flight": 100, "dest": "MIA"},
    {**ROW, "tailnum": None},
    {**ROW, "carrier": "ZZ", "dest": "XYZ", "tailnum": "N000ZZ"},
    {**ROW, "sched_dep_time": 605, "hour": 6, "minute": 5, "day": 28, "time_hour": "2013-01-28T11:00:00Z"},
    {**ROW, "carrier": "B6", "origin": "JFK", "dest": "BOS", "distance": 187, "tailnum": "N503JB"},
]


@pytest.fixture()
def in_process(champion_home, monkeypatch):
    """The champion (v1) and the online store of ``champion_home``, in this process."""
    import mlflow

    from airloop.featurestore import open_store
    from airloop.model.pyfunc import RegisteredModel
    from airloop.settings import load_settings
    from airloop.usecases import load_use_case

    monkeypatch.setenv("AIRLOOP_HOME", str(champion_home))
    settings, use_case = load_settings(), load_use_case("flights")
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    return (
        open_store(settings, use_case, apply=False),
        RegisteredModel("models:/flight_delay/1", "1"),
        use_case,
    )


def reference(store, model, use_case, rows, as_of):
    """The pre-optimization serving path for one request: features, probabilities, labels."""
    import pandas as pd

    from airloop.featurestore import online_features_reference

    frame = pd.DataFrame(rows)
    frame["time_hour"] = pd.to_datetime(frame["time_hour"], utc=True)
    features = online_features_reference(store, use_case, frame, as_of)
    return features, model.predict(features), frame


def test_fast_path_equals_reference_path_exactly(in_process):
    """Features, probabilities, flags and live-log rows of a batch of requests (one row and many, unknown
    entities, a missing tail number, stale values, own and default ``as_of``) equal those of each request
    scored alone by the reference path, bit for bit."""
    from dataclasses import dataclass
    from datetime import datetime

    import numpy as np
    import pandas as pd
    import torch

    from airloop.featurestore import online_features, online_lookup
    from airloop.serving.contract import row_model
    from airloop.serving.service import log_frame, score_batch

    store, model, use_case = in_process
    torch.set_num_threads(1)  # as the service
    Row = row_model(use_case)

    @dataclass
    class Request:
        rows: list
        as_of: datetime | None
        request_id: str | None = None

    served = datetime(2013, 1, 29, 21, 0, tzinfo=UTC)
    stale = datetime(2013, 2, 2, 12, 0, tzinfo=UTC)
    requests = [
        Request([VARIANTS[0]], datetime.fromisoformat(AS_OF)),
        Request(VARIANTS[1:4], None),
        Request(VARIANTS * 5, stale),
        Request([VARIANTS[4]], None),
        Request([VARIANTS[5]], served),
    ]
    batch = [Request([Row.model_validate(r) for r in request.rows], request.as_of) for request in requests]
    answers, scored = score_batch(online_lookup(store, use_case), model, batch, served)
    logged = log_frame([scored])

    expected = []
    for request, answer in zip(requests, answers, strict=True):
        rows = [Row.model_validate(r).model_dump() for r in request.rows]
        features, scores, frame = reference(store, model, use_case, rows, request.as_of or served)
        fast = online_features(store, use_case, frame, request.as_of or served)
        pd.testing.assert_frame_equal(fast, features[list(fast.columns)], check_exact=True)
        np.testing.assert_array_equal(
            [p["probability"] for p in answer["predictions"]], scores["probability"]
        )
        assert [p["label"] for p in answer["predictions"]] == scores["label"].tolist()
        flags = [c for c in features.columns if c.endswith(("__unknown", "__stale"))]
        assert [p["flags"] for p in answer["predictions"]] == features[flags].astype(int).to_dict("records")
        expected.append(
            features.assign(
                probability=scores["probability"].to_numpy(),
                label=scores["label"].to_numpy(),
                model_version="1",
                request_id=answer["request_id"],
                served_at=served,
                **{c: frame[c].array for c in use_case.logged_columns() if c not in features.columns},
            )
        )
    expected = pd.concat(expected, ignore_index=True)
    assert sorted(expected.columns) == sorted(logged.columns)
    pd.testing.assert_frame_equal(expected[list(logged.columns)], logged, check_exact=True)
    assert logged["carrier_history__unknown"].sum() == 6 and logged["origin_weather__stale"].sum() == 30


def test_array_scorer_equals_the_pyfunc(in_process):
    """``RegisteredModel.score`` (numpy preprocessing, the network per request group) == ``predict``."""
    import numpy as np
    import pandas as pd

    from airloop.featurestore import online_features_reference

    store, model, use_case = in_process
    frame = pd.DataFrame(VARIANTS * 10)
    frame["time_hour"] = pd.to_datetime(frame["time_hour"], utc=True)
    features = online_features_reference(store, use_case, frame, pd.Timestamp(AS_OF).to_pydatetime())
    columns = {c: features[c].to_numpy() for c in features.columns}
    pre = model.model.unwrap_python_model().pre
    for got, want in zip(model.arrays.transform(columns), pre.transform(features[model.inputs]), strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    sizes = [1, 7, 2, 50]
    probability, label = model.score(columns, sizes)
    starts = np.cumsum([0, *sizes[:-1]])
    want = pd.concat([model.predict(features.iloc[a : a + n]) for a, n in zip(starts, sizes, strict=True)])
    np.testing.assert_array_equal(probability, want["probability"])
    np.testing.assert_array_equal(label, want["label"])
    with pytest.raises(ValueError, match="groups cover"):
        model.score(columns, [1, 2])


def test_single_and_multi_row_and_bad_requests(server):
    client, _, home = server
    one = predict(client, [ROW])
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["model_version"] == "1" and 0 < body["predictions"][0]["probability"] < 1
    assert body["predictions"][0]["flags"]["carrier_history__unknown"] == 0
    many = predict(
        client, [ROW, {**ROW, "carrier": "AA", "flight": 100, "dest": "MIA"}, {**ROW, "tailnum": None}]
    )
    assert many.status_code == 200 and len(many.json()["predictions"]) == 3
    unknown = predict(client, [{**ROW, "carrier": "ZZ", "dest": "XYZ"}]).json()["predictions"][0]["flags"]
    assert unknown["carrier_history__unknown"] == 1 and unknown["route_history__unknown"] == 1

    missing = {k: v for k, v in ROW.items() if k != "carrier"}
    bad = {
        "missing field": (client.post("/predict", json={"rows": [missing]}), "carrier"),
        "wrong type": (predict(client, [{**ROW, "flight": "one"}]), "flight"),
        "unknown airport": (predict(client, [{**ROW, "origin": "XXX"}]), "origin"),
        "empty list": (predict(client, []), "rows"),
        "oversized list": (predict(client, [ROW] * 51), "rows"),
        "malformed JSON": (
            client.post("/predict", content=b'{"rows": [', headers={"Content-Type": "application/json"}),
            "JSON",
        ),
        "wrong content type": (
            client.post(
                "/predict",
                content=httpx.Client().build_request("POST", "http://x", json={"rows": [ROW]}).content,
                headers={"Content-Type": "text/plain"},
            ),
            "Content-Type",
        ),
    }
    body = httpx.Client().build_request("POST", "http://x", json={"rows": [ROW]}).content
    for route in ("/predict", "/predict_rows"):
        bad |= {
            f"multipart {route}": (client.post(route, files={"rows": ("r.json", body)}), "Content-Type"),
            f"form {route}": (client.post(route, data={"rows": "x"}), "Content-Type"),
            f"no content type {route}": (client.post(route, content=body, headers={}), "Content-Type"),
            f"over 64 KB {route}": (client.post(route, json={"rows": [ROW] * 400}), "body"),
        }
    bad |= {  # impossible requests (issue 13 finding 8): each names its field
        "no such day": (predict(client, [{**ROW, "month": 2, "day": 30}]), "day=30"),
        "minute 99": (predict(client, [{**ROW, "sched_arr_time": 1299}]), "sched_arr_time"),
        "1970": (predict(client, [{**ROW, "time_hour": "1970-01-01T00:00:00Z"}]), "time_hour"),
        "boolean flight": (predict(client, [{**ROW, "flight": True}]), "flight"),
        "unknown row field": (predict(client, [{**ROW, "gate": "B12"}]), "gate"),
        "unknown key": (client.post("/predict", json={"rows": [ROW], "as-of": AS_OF}), "as-of"),
        "unknown key /predict_rows": (client.post("/predict_rows", json={"rows": [ROW], "x": 1}), "x"),
        "as_of year 1": (
            client.post("/predict", json={"rows": [ROW], "as_of": "0001-01-01T00:00:00Z"}),
            "as_of",
        ),
        "as_of 9999": (
            client.post("/predict", json={"rows": [ROW], "as_of": "9999-01-01T00:00:00Z"}),
            "as_of",
        ),
        "empty list /predict_rows": (client.post("/predict_rows", json={"rows": []}), "rows"),
        "oversized list /predict_rows": (client.post("/predict_rows", json={"rows": [ROW] * 51}), "rows"),
    }
    expected = {
        "multipart": 415,
        "form": 415,
        "no content type": 415,
        "wrong content type": 415,
        "over 64 KB": 413,
    }
    for case, (response, names) in bad.items():
        assert 400 <= response.status_code < 500, (case, response.status_code, response.text)
        assert names in response.text, (case, response.text)
        want = next((code for prefix, code in expected.items() if case.startswith(prefix)), None)
        assert want in (None, response.status_code), (case, response.status_code)
    assert predict(client, [ROW]).status_code == 200  # still serving
    # the answer's request id is in its header too; rejected requests are one log line each, no traceback
    tagged = client.post("/predict", json={"rows": [ROW], "as_of": AS_OF}, headers={"X-Request-ID": "t-42"})
    assert tagged.headers["x-request-id"] == tagged.json()["request_id"] != "t-42"
    log = (home / f"serve-{client.base_url.port}.log").read_text()
    assert "Traceback" not in log and "bad request on /predict (request " in log, log[-3000:]
    metrics = client.get("/metrics").text
    assert 'airloop_model_info{model="flight_delay",version="1"} 1.0' in metrics


def test_requests_queued_together_are_scored_together_and_fail_alone():
    """The service's batcher: requests submitted in one loop turn form one batch; when the batch fails,
    each request is scored alone, so only the failing one gets the error."""
    import asyncio

    from airloop.serving.service import Scorer

    class Service:
        calls: list[int] = []
        shadow = None

        def score(self, batch):
            self.calls.append(len(batch))
            if any(request.rows == ["bad"] for request in batch):
                raise ValueError("bad row")
            return [{"rows": len(request.rows)} for request in batch], None

        def record(self, scored):  # (the journal: nothing to keep here)
            pass

    async def submit_all():
        scorer = Scorer(Service())
        return await asyncio.gather(
            *(scorer.submit(rows, None) for rows in (["a"], ["bad"], ["b", "c"])), return_exceptions=True
        )

    first, bad, last = asyncio.run(submit_all())
    assert first == {"rows": 1} and last == {"rows": 2} and isinstance(bad, ValueError)
    assert Service.calls == [3, 1, 1, 1]


def test_concurrent_requests_get_the_answers_they_get_alone(server):
    """Requests scored together (the service batches concurrent requests) are answered exactly as when
    each is sent alone."""
    from concurrent.futures import ThreadPoolExecutor

    client, _, _ = server
    bodies = [[{**VARIANTS[i % len(VARIANTS)], "flight": 200 + i}] * (1 + i % 2) for i in range(24)]

    def probabilities(response):
        assert response.status_code == 200, response.text
        return [(p["probability"], p["label"], p["flags"]) for p in response.json()["predictions"]]

    alone = [probabilities(predict(client, rows)) for rows in bodies]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda rows: probabilities(predict(client, rows)), bodies))
    assert together == alone
    assert "airloop_batch_requests_count" in client.get("/metrics").text


def test_adaptive_batching_endpoint(server):
    """Concurrent requests to the batchable endpoint each get exactly their own rows back."""
    from concurrent.futures import ThreadPoolExecutor

    client, _, _ = server
    bodies = [[{**ROW, "flight": 100 + i}] * (1 + i % 3) for i in range(24)]
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda rows: client.post("/predict_rows", json={"rows": rows}), bodies))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200][
        :2
    ]
    assert [len(r.json()) for r in responses] == [len(b) for b in bodies]
    assert all(p["model_version"] == "1" for r in responses for p in r.json())
    bad = client.post("/predict_rows", json={"rows": [{**ROW, "origin": "XXX"}]})
    assert bad.status_code == 400 and "origin" in bad.text


def test_hot_swap_without_failed_requests_and_live_log(server):
    from airloop.livelog import read_live
    from airloop.registry import ModelRegistry

    client, process, home = server
    uri = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    registry = ModelRegistry(uri, "flight_delay")
    v1 = registry.version("1")
    results, stop = [], threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            r = predict(client, [ROW, {**ROW, "flight": 7}])
            results.append((r.status_code, r.json().get("model_version") if r.status_code == 200 else r.text))

    sender = threading.Thread(target=traffic)
    sender.start()
    wait_for(lambda: len(results) >= 20, "traffic answered by v1")
    v2 = registry.register(v1.source, v1.run_id, {"copy_of": "1"})
    registry.move_alias("champion", v2, "test", "hot swap test", "2013-01-30T00:00:00-05:00")
    wait_for(lambda: results[-1][1] == v2, "the service answers with the new champion")
    swapped = len(results)
    wait_for(lambda: len(results) >= swapped + 20, "more traffic after the swap")
    stop.set()
    sender.join()
    metrics = client.get("/metrics").text  # Prometheus follows the swap too
    assert f'airloop_model_info{{model="flight_delay",version="{v2}"}} 1.0' in metrics, metrics[-2000:]
    assert 'airloop_model_info{model="flight_delay",version="1"} 0.0' in metrics
    registry.move_alias("champion", "1", "test", "restore", "2013-01-30T00:00:00-05:00")
    assert all(code == 200 for code, _ in results), [r for r in results if r[0] != 200][:3]
    versions = [v for _, v in results]
    assert versions[0] == "1" and versions[-1] == v2  # (how fast it switches: bench/bench_serving.py)
    assert versions == sorted(versions, key=lambda v: versions.index(v))  # never back to the old one

    served = sum(2 for _ in results)
    os.killpg(process.pid, signal.SIGTERM)  # graceful: the live log drains its queue
    process.wait(30)
    live = read_live(home / "lake" / "live")
    assert {"year", "month", "day", "carrier", "flight", "origin", "dest"} <= set(
        live.columns
    )  # the flight key
    mine = live[live.model_version.isin(["1", v2])]
    assert len(mine) >= served  # earlier tests of this server share the log folder
    assert set(mine.model_version) == {"1", v2}
    assert {"probability", "request_id", "served_at", "temp", "carrier_delayed_share_7d"} <= set(live.columns)


def test_a_killed_service_loses_no_answered_row(champion_home, tmp_path):
    """SIGKILL during a burst of 32 clients: every request answered before the kill has all its rows in
    the live log once the service is started again (the journal holds them before the answer leaves;
    the next start stores them). Duplicates, if any, are exact copies of an answered request's rows."""
    from airloop.livelog import read_live

    home = tmp_path / "home"
    shutil.copytree(champion_home, home)
    client, process = start_server(home)
    answered: dict[str, int] = {}
    killed, lock = threading.Event(), threading.Lock()

    def client_loop(n: int) -> None:
        with httpx.Client(base_url=client.base_url, timeout=10) as mine:
            for i in range(10_000):  # bounded: the kill ends it long before
                rows = [{**VARIANTS[(n + i) % len(VARIANTS)], "flight": 1000 * n + i}] * (1 + i % 3)
                try:
                    answer = predict(mine, rows)
                except httpx.HTTPError:
                    if killed.is_set():
                        return
                    continue
                if answer.status_code == 200:
                    with lock:
                        answered[answer.json()["request_id"]] = len(rows)
                if killed.is_set():
                    return

    clients = [threading.Thread(target=client_loop, args=(n,)) for n in range(32)]
    for c in clients:
        c.start()
    wait_for(lambda: len(answered) >= 600, "600 answered requests", 120, poll=0.01)
    os.killpg(process.pid, signal.SIGKILL)  # mid-burst: rows wait in the batcher and the log's queue
    killed.set()
    for c in clients:
        c.join(30)
    process.wait(30)
    client.close()
    with lock:
        answered = dict(answered)
    journal = home / "serving" / "journal"
    assert list(journal.glob("*.journal")), "the killed service left answered rows in its journal"

    def logged() -> dict[str, int]:
        live = read_live(home / "lake" / "live")
        return live["request_id"].value_counts().to_dict() if len(live) else {}

    before = logged()
    assert sum(before.get(r, 0) for r in answered) < sum(answered.values())  # (the kill did cut the log)
    client, process = start_server(home)  # the next start stores what the journal holds
    try:
        wait_for(lambda: all(r in logged() for r in answered), "every answered request logged", 60, poll=0.5)
        counts = logged()
        missing = [r for r in answered if counts.get(r, 0) < answered[r]]
        assert missing == [], f"{len(missing)} of {len(answered)} answered requests lost rows"
        assert all(counts[r] % answered[r] == 0 for r in answered)  # whole copies only
        wait_for(lambda: not list(journal.glob("*.journal")), "recovered segments released", 30)
    finally:
        stop_server(client, process)


def test_a_shadow_version_is_scored_and_logged_but_never_answered(server):
    """With the ``shadow`` alias on another version (v1's judged network: different weights), answers
    come from the champion only, and the live log holds the shadow's scores of the same rows, equal to
    what that version scores from the logged features."""
    import mlflow
    import numpy as np

    from airloop.livelog import read_live
    from airloop.model.pyfunc import RegisteredModel
    from airloop.registry import ModelRegistry

    client, process, home = server
    uri = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    registry = ModelRegistry(uri, "flight_delay")
    tags = registry.version("1").tags
    judged = tags["airloop.judged_model_uri"]
    shadow = registry.register(
        judged, tags["airloop.judged_run_id"], {"test": "shadow"}, judged.split("/")[-1]
    )
    registry.move_alias("shadow", shadow, "test", "shadow test", "2013-01-30T00:00:00-05:00")
    bodies = [[{**VARIANTS[i % len(VARIANTS)], "flight": 300 + i}] * (1 + i % 3) for i in range(6)]

    def shadowed() -> bool:
        for rows in bodies:
            answer = predict(client, rows)
            assert answer.status_code == 200 and answer.json()["model_version"] == "1", answer.text
            assert all(
                set(p) == {"probability", "label", "model_version", "flags"}
                for p in answer.json()["predictions"]
            )
        return f'airloop_rows_shadowed_total{{version="{shadow}"}}' in client.get("/metrics").text

    wait_for(shadowed, "the service scores the shadow version", 30, poll=0.5)
    assert shadowed()  # every body once more, all of it scored in shadow too
    registry.clear_alias("shadow", "test", "shadow test done", "2013-01-30T00:00:00-05:00")
    os.killpg(process.pid, signal.SIGTERM)  # graceful: the live log drains its queue
    process.wait(30)
    live = read_live(home / "lake" / "live")
    rows = live[live["shadow_version"].astype(str) == shadow].reset_index(drop=True)
    assert len(rows) >= sum(len(b) for b in bodies) and set(rows.model_version) == {"1"}
    mlflow.set_tracking_uri(uri)
    model = RegisteredModel(f"models:/flight_delay/{shadow}", shadow)
    expected = model.probability(rows)
    assert np.allclose(rows["shadow_probability"], expected, rtol=0, atol=1e-6)
    assert not np.allclose(rows["shadow_probability"], rows["probability"], atol=1e-3)  # another network
    assert ((rows["shadow_probability"] >= model.arrays.threshold) == (rows["shadow_label"] == 1)).all()


def test_a_fresh_deployment_serves_503_until_definitions_and_a_champion_exist(champion_home, tmp_path):
    """A container started before the first materialization and training must wait, not crash-loop:
    /readyz and /predict say 503 until the watcher finds the Feast definitions and the champion."""
    from airloop.featurestore import open_store
    from airloop.registry import ModelRegistry
    from airloop.settings import load_settings
    from airloop.usecases import load_use_case

    home = tmp_path / "home"
    shutil.copytree(champion_home, home)
    (home / "feast" / "registry.db").unlink()  # no feature definitions applied yet
    uri = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    registry = ModelRegistry(uri, "flight_delay")
    registry.client.delete_registered_model_alias("flight_delay", "champion")  # no champion yet
    port = free_port()
    env = {**os.environ, "AIRLOOP_HOME": str(home), "AIRLOOP_SERVING_WATCH_SECONDS": "1"}
    log_path = home / "serve.log"
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("bentoml")),
            "serve",
            "airloop.serving.service:PredictionService",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=open(log_path, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

    def readyz() -> int:
        try:
            return client.get("/readyz").status_code
        except httpx.HTTPError:
            return 0

    try:
        deadline = time.monotonic() + 120
        while readyz() != 503:
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)
        assert predict(client, [ROW]).status_code == 503  # BentoML hides a 5xx's message; the log says why
        assert "not ready" in log_path.read_text() and "materialize_features" in log_path.read_text()
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AIRLOOP_HOME", str(home))
            open_store(
                load_settings(), load_use_case("flights"), apply=True
            )  # what materialize_features does
        deadline = time.monotonic() + 60
        while "not ready: no champion" not in log_path.read_text():  # definitions alone are not enough
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)
        assert readyz() == 503 and predict(client, [ROW]).status_code == 503
        registry.move_alias("champion", "1", "test", "first champion", "2013-01-30T00:00:00-05:00")
        deadline = time.monotonic() + 90
        while readyz() != 200:
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)
        answered = predict(client, [ROW])
        assert answered.status_code == 200 and answered.json()["model_version"] == "1"
        assert log_path.read_text().count("Application startup failed") == 0
    finally:
        client.close()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
