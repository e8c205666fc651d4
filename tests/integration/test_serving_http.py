"""The BentoML service over real HTTP: `bentoml serve` as a subprocess on 127.0.0.1, with a real MLflow
champion and real Feast online features (the session's ``champion_home``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

ROW = {"year": 2013, "month": 1, "day": 29, "sched_dep_time": 1545, "sched_arr_time": 1830, "carrier": "UA",
       "flight": 1545, "tailnum": "N14228", "origin": "EWR", "dest": "IAH", "distance": 1400, "hour": 15,
       "minute": 45, "time_hour": "2013-01-29T20:00:00Z"}
AS_OF = "2013-01-29T20:30:00Z"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server(champion_home):
    port = free_port()
    env = {**os.environ, "AIRLOOP_HOME": str(champion_home), "AIRLOOP_SERVING_WATCH_SECONDS": "1",
           "AIRLOOP_SERVING_MAX_ROWS": "50"}
    bentoml = Path(sys.executable).with_name("bentoml")
    log = open(champion_home / f"serve-{port}.log", "wb")
    process = subprocess.Popen([str(bentoml), "serve", "airloop.serving.service:DelayService", "--host", "127.0.0.1",
                                "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if client.get("/readyz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None, (champion_home / f"serve-{port}.log").read_text()[-3000:]
        time.sleep(1)
    else:
        pytest.fail("service not ready in 120 s")
    yield client, process, champion_home
    client.close()
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def predict(client, flights, **extra):
    return client.post("/predict", json={"flights": flights, "as_of": AS_OF, **extra})


def test_single_and_multi_row_and_bad_requests(server):
    client, _, _ = server
    one = predict(client, [ROW])
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["model_version"] == "1" and 0 < body["predictions"][0]["probability"] < 1
    assert body["predictions"][0]["flags"]["carrier_history__unknown"] == 0
    many = predict(client, [ROW, {**ROW, "carrier": "AA", "flight": 100, "dest": "MIA"}, {**ROW, "tailnum": None}])
    assert many.status_code == 200 and len(many.json()["predictions"]) == 3
    unknown = predict(client, [{**ROW, "carrier": "ZZ", "dest": "XYZ"}]).json()["predictions"][0]["flags"]
    assert unknown["carrier_history__unknown"] == 1 and unknown["route_history__unknown"] == 1

    missing = {k: v for k, v in ROW.items() if k != "carrier"}
    bad = {
        "missing field": (client.post("/predict", json={"flights": [missing]}), "carrier"),
        "wrong type": (predict(client, [{**ROW, "flight": "one"}]), "flight"),
        "unknown airport": (predict(client, [{**ROW, "origin": "XXX"}]), "origin"),
        "empty list": (predict(client, []), "flights"),
        "oversized list": (predict(client, [ROW] * 51), "flights"),
        "malformed JSON": (client.post("/predict", content=b'{"flights": [', headers={"Content-Type": "application/json"}),
                           "JSON"),
        "wrong content type": (client.post("/predict", content=httpx.Client().build_request(
            "POST", "http://x", json={"flights": [ROW]}).content, headers={"Content-Type": "text/plain"}), "Content-Type"),
    }
    for case, (response, names) in bad.items():
        assert 400 <= response.status_code < 500, (case, response.status_code, response.text)
        assert names in response.text, (case, response.text)
    assert predict(client, [ROW]).status_code == 200  # still serving
    metrics = client.get("/metrics").text
    assert 'airloop_model_info{model="flight_delay",version="1"} 1.0' in metrics


def test_adaptive_batching_endpoint(server):
    """Concurrent requests to the batchable endpoint each get exactly their own rows back."""
    from concurrent.futures import ThreadPoolExecutor

    client, _, _ = server
    bodies = [[{**ROW, "flight": 100 + i}] * (1 + i % 3) for i in range(24)]
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda rows: client.post("/predict_rows", json={"rows": rows}), bodies))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200][:2]
    assert [len(r.json()) for r in responses] == [len(b) for b in bodies]
    assert all(p["model_version"] == "1" for r in responses for p in r.json())
    bad = client.post("/predict_rows", json={"rows": [{**ROW, "origin": "XXX"}]})
    assert bad.status_code == 400 and "origin" in bad.text


def test_hot_swap_without_failed_requests_and_live_log(server):
    from airloop.registry import ModelRegistry
    from airloop.serving.livelog import read_live

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
    time.sleep(2)
    v2 = registry.register(v1.source, v1.run_id, {"copy_of": "1"})
    registry.move_alias("champion", v2, "test", "hot swap test", "2013-01-30T00:00:00-05:00")
    swapped_at = time.monotonic()
    while time.monotonic() - swapped_at < 20 and (not results or results[-1][1] != v2):
        time.sleep(0.2)
    switch_seconds = time.monotonic() - swapped_at
    time.sleep(1)
    stop.set()
    sender.join()
    registry.move_alias("champion", "1", "test", "restore", "2013-01-30T00:00:00-05:00")
    assert all(code == 200 for code, _ in results), [r for r in results if r[0] != 200][:3]
    versions = [v for _, v in results]
    assert versions[0] == "1" and versions[-1] == v2 and switch_seconds < 5
    assert versions == sorted(versions, key=lambda v: versions.index(v))  # never back to the old one

    served = sum(2 for _ in results)
    os.killpg(process.pid, signal.SIGTERM)  # graceful: the live log drains its queue
    process.wait(30)
    live = read_live(home / "lake" / "live")
    mine = live[live.model_version.isin(["1", v2])]
    assert len(mine) >= served  # earlier tests of this server share the log folder
    assert set(mine.model_version) == {"1", v2}
    assert {"probability", "request_id", "served_at", "temp", "carrier_delayed_share_7d"} <= set(live.columns)
