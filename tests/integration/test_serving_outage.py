"""The service with its online store (a real Redis of the test's own, on a loopback port) going away and
coming back: a fast 503 with ``Retry-After`` (bounded timeouts, no retries), /readyz not ready while it is
down, and recovery by itself once it answers again. Two outages: the Redis process frozen (SIGSTOP: the
connection hangs, only a timeout ends a call) and stopped (SIGTERM: connections refused), then restarted
from its snapshot."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from datetime import date

import httpx
import pytest
from conftest import free_port, wait_for
from test_serving_http import ROW, predict, start_server, stop_server

pytestmark = pytest.mark.slow

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
PG = "postgresql://postgres@127.0.0.1:5432"
REGISTRY_DB = "airloop_test_outage"


def start_redis(port: int, folder) -> subprocess.Popen:
    process = subprocess.Popen(
        [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "3600 1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    wait_for(answers, f"redis-server on {port}", 30, poll=0.1)
    return process


@pytest.fixture()
def redis_home(champion_home, tmp_path, monkeypatch):
    """``champion_home`` with its features in a Redis of its own (SQL registry: a database of its own in
    the local PostgreSQL), and the service's environment for it."""
    if not os.path.exists(REDIS):
        pytest.skip("redis-server is not installed")
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(f"{PG}/postgres", autocommit=True, connect_timeout=3) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (REGISTRY_DB,)).fetchone():
            c.execute(f"CREATE DATABASE {REGISTRY_DB}")
    home = tmp_path / "home"
    shutil.copytree(champion_home, home)
    port = free_port()
    env = {
        "AIRLOOP_HOME": str(home),
        "AIRLOOP_FEAST_ONLINE": "redis",
        "AIRLOOP_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "AIRLOOP_POSTGRES_DSN": f"{PG}/{REGISTRY_DB}",
        "AIRLOOP_FEAST_PROJECT": f"airloop_outage_{uuid.uuid4().hex[:8]}",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    redis_process = start_redis(port, tmp_path)
    from airloop.featurestore import materialize_days, open_store
    from airloop.settings import load_settings
    from airloop.usecases import load_use_case

    use_case = load_use_case("flights")
    store = open_store(load_settings(), use_case)
    materialize_days(store, use_case, [date(2013, 1, 28), date(2013, 1, 29)])
    state = {"redis": redis_process}
    yield home, env, port, tmp_path, state
    if state["redis"].poll() is None:
        state["redis"].send_signal(signal.SIGCONT)  # (a test that failed while it was frozen)
    try:
        store.teardown()
    except Exception:  # noqa: BLE001 - Redis may be gone: its data dies with the test's folder
        pass
    if state["redis"].poll() is None:
        state["redis"].send_signal(signal.SIGCONT)
        state["redis"].kill()
        state["redis"].wait(10)


def test_the_store_down_gives_a_fast_503_not_ready_and_recovery(redis_home):
    home, env, port, folder, state = redis_home
    client, process = start_server(home, **env)
    try:
        ok = predict(client, [ROW])
        assert ok.status_code == 200, ok.text

        def outage(what: str) -> None:
            # the first request after the outage: one bounded call (0.5 s), no retries
            started = time.perf_counter()
            first = predict(client, [ROW])
            took = time.perf_counter() - started
            assert first.status_code == 503, first.text
            assert first.headers["retry-after"] == "1"  # (BentoML hides a 5xx's reason: the log has it)
            assert took < 2.0, f"{what}: the first 503 took {took:.2f} s"
            wait_for(lambda: client.get("/readyz").status_code == 503, f"{what}: not ready", 10)
            started = time.perf_counter()
            again = predict(client, [ROW, {**ROW, "flight": 2}])  # known down: no store call at all
            fast = time.perf_counter() - started
            assert again.status_code == 503 and again.headers["retry-after"] == "1"
            assert fast < 0.5, f"{what}: a 503 while known down took {fast:.2f} s"
            print(f"{what}: first 503 in {took * 1000:.0f} ms, then {fast * 1000:.0f} ms")

        def recovered(what: str) -> None:
            wait_for(lambda: client.get("/readyz").status_code == 200, f"{what}: ready again", 30)
            back = predict(client, [ROW])
            assert back.status_code == 200 and back.json()["predictions"] == ok.json()["predictions"]

        state["redis"].send_signal(signal.SIGSTOP)  # frozen: calls hang until their timeout
        outage("frozen")
        state["redis"].send_signal(signal.SIGCONT)
        recovered("thawed")

        state["redis"].send_signal(signal.SIGTERM)  # stopped (it saves its snapshot first)
        state["redis"].wait(30)
        outage("stopped")
        state["redis"] = start_redis(port, folder)
        recovered("restarted")
        log = (home / f"serve-{client.base_url.port}.log").read_text()
        assert "online store unreachable" in log and "unavailable on /predict" in log
        assert "Traceback" not in log  # one line per refused request, not ~25
    finally:
        stop_server(client, process)


def test_a_request_in_flight_when_the_store_freezes_is_answered_503_in_bounded_time(redis_home):
    """Concurrent requests caught by the outage: each is answered (503) within the bound, none hangs to
    the traffic timeout, and nothing of theirs reaches the live log (they were not answered)."""
    import concurrent.futures

    home, env, port, folder, state = redis_home
    client, process = start_server(home, **env)
    try:
        assert predict(client, [ROW]).status_code == 200
        state["redis"].send_signal(signal.SIGSTOP)
        with (
            httpx.Client(base_url=client.base_url, timeout=30) as other,
            concurrent.futures.ThreadPoolExecutor(8) as pool,
        ):
            started = time.perf_counter()
            codes = list(
                pool.map(lambda i: predict(other, [{**ROW, "flight": 1000 + i}]).status_code, range(16))
            )
            took = time.perf_counter() - started
        assert set(codes) == {503}, codes
        assert took < 3.0, f"16 requests during the outage took {took:.2f} s"
        state["redis"].send_signal(signal.SIGCONT)
        wait_for(lambda: client.get("/readyz").status_code == 200, "ready again", 30)
    finally:
        stop_server(client, process)
