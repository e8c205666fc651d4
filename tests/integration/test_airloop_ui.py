"""The Airloop console (plugins/airloop_ui.py) inside Airflow's real API app, on stores the library made.

The app under test is Airflow's own ``create_app`` (its plugin loading, auth manager and middlewares), with
this project's plugins folder: requests go to ``/airloop/...`` exactly as in the api-server. The state is a
copy of ``champion_home`` (a trained v1) where the library then: registered and judged a v2 that the gate
promoted, checked a drifted live window (report + summary), recorded live metrics, and quarantined a day
with a null carrier key.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import CORRUPTIONS, _real_day

QUARANTINED = "2013-01-30"


def _drifted_live_rows(home: Path):
    """Rows of the champion's own data, served at the end of January, during a +30 F heat wave."""

    from airloop.lake import Lake
    from airloop.model.pyfunc import RegisteredModel
    from airloop.training import TrainingWindow

    lake, key = Lake(home / "lake"), TrainingWindow.ending(date(2013, 1, 30), 22, 7).key
    frame = lake.read_dataset("training", f"{key}/holdout").reset_index(drop=True)
    frame["temp"] = frame["temp"] + 30
    frame["dewp"] = frame["dewp"] + 25
    scored = RegisteredModel("models:/flight_delay@champion", "2").predict(frame)
    start = datetime(2013, 1, 31, 14, tzinfo=UTC)
    return frame.assign(
        probability=scored["probability"].to_numpy(),
        label=scored["label"].to_numpy(),
        model_version="2",
        request_id="req-ui",
        served_at=[start + timedelta(milliseconds=i) for i in range(len(frame))],
    )


@pytest.fixture(scope="module")
def console_home(champion_home, tmp_path_factory):
    from airloop.drift.monitor import Window, check_window
    from airloop.feedback import record_day
    from airloop.ingest import ingest_day
    from airloop.lake import Lake
    from airloop.livelog import LiveLog, live_store
    from airloop.registry import open_registry
    from airloop.settings import load_settings
    from airloop.sources import make_source
    from airloop.training import TrainingWindow, evaluate_and_decide, promote
    from airloop.usecases import load_use_case

    home = tmp_path_factory.mktemp("console") / "home"
    shutil.copytree(champion_home, home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRLOOP_HOME", str(home))
        # a January champion and three days of traffic: no waiting for a share of new data to retrain
        settings, use_case = load_settings(), load_use_case("flights").with_drift({"min_new_share": 0})
        lake = Lake(settings.lake)
        registry = open_registry(settings, use_case)
        # v2: v1's network registered again by a drift-triggered run, judged by the gate and promoted
        v1 = registry.version("1")
        lineage = {
            "airloop.dag_id": "train_model",
            "airloop.run_id": "drift__scheduled__2013-01-31",
            "airloop.trigger_reason": "drift_monitor: drift in temp",
            "airloop.triggered_by": "airflow:train_model/drift__scheduled__2013-01-31",
        }
        # (judged as itself: without a judged recipe the gate compares the version that serves)
        tags = {k: v for k, v in v1.tags.items() if k != "airloop.judged_model_uri"}
        version = registry.register(v1.source, v1.run_id, {**tags, **lineage}, model_id=v1.model_id)
        registry.move_alias(
            "challenger",
            version,
            lineage["airloop.triggered_by"],
            "newly trained",
            "2013-01-31T05:00:00+00:00",
        )
        window = TrainingWindow.ending(date(2013, 1, 30), 22, 7)
        verdict = evaluate_and_decide(settings, use_case, lake, window, version)
        assert verdict["promote"], verdict
        promote(settings, use_case, verdict, lineage["airloop.triggered_by"], "2013-01-31T06:00:00+00:00")
        # live traffic: a drifted window, checked by the library; live metrics of the days it served
        rows = _drifted_live_rows(home)
        log = LiveLog(lake.root / "live", flush_rows=2000)
        log.append(rows)
        log.close()
        for day in (date(2013, 1, 27), date(2013, 1, 28), date(2013, 1, 29)):
            record_day(lake, live_store(settings), use_case, day)
        summary = check_window(
            settings,
            use_case,
            lake,
            Window(None, rows["served_at"].max().to_pydatetime(), len(rows)),
            run_label="scheduled__2013-01-31T15:00:00+00:00",
        )
        assert summary["decision"]["status"] == "retrain", summary["decision"]
        # a day whose carrier key is null in three rows: quarantined by the real suites
        source = home / "source"
        for name, frame in _real_day(QUARANTINED).items():
            if CORRUPTIONS["null_key"][0] == name:
                frame = CORRUPTIONS["null_key"][1](frame)
            (source / name / f"ds={QUARANTINED}").mkdir(parents=True)
            frame.to_parquet(source / name / f"ds={QUARANTINED}" / "part.parquet", index=False)
        assert (
            ingest_day(use_case, make_source("folder", source), lake, date(2013, 1, 30)).status
            == "quarantined"
        )
        (home / "secret.txt").write_text("outside the report folders")
    return home


class Sent:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        """A stand-in for Airflow's REST API: records the call, answers like Airflow."""
        self.requests.append(request)
        if request.method == "GET" and request.url.path.endswith("/hitlDetails"):
            return httpx.Response(200, json={"hitl_details": [], "total_entries": 0})
        if request.method == "GET":
            return httpx.Response(
                200, json={"dag_id": request.url.path.rsplit("/", 1)[-1], "is_paused": True}
            )
        if request.method == "PATCH":
            return httpx.Response(200, json={"is_paused": False})
        return httpx.Response(200, json={"dag_run_id": "manual__2013-02-01T00:00:00+00:00"})


@pytest.fixture(scope="module")
def console(console_home, airflow_db):
    """(Airflow's API app with this project's plugins, an admin's JWT, the fake REST API's log)."""
    from fastapi.testclient import TestClient

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRLOOP_HOME", str(console_home))
        from airflow.api_fastapi.app import create_app, get_auth_manager
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
        from airflow.plugins_manager import get_fastapi_plugins

        app = create_app("core")
        sent = Sent()
        from airloop_ui_app import create_app as create_console

        # the app Airflow mounted: the plugins manager's (cached) list, not whatever module object holds
        # the name airloop_ui now (a test before this one in the process may have loaded it again)
        (lazy,) = [entry["app"] for entry in get_fastapi_plugins()[0] if entry["name"] == "Airloop console"]
        lazy._app = create_console(api_url="http://airflow.test", transport=httpx.MockTransport(sent))
        token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="ADMIN"))
        with TestClient(app, base_url="http://127.0.0.1:8080") as client:
            yield client, token, sent


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


PAGES = ["/airloop/models", "/airloop/drift", "/airloop/data", "/airloop/live", "/airloop/actions"]


def test_every_endpoint_needs_an_airflow_identity(console):
    client, token, sent = console
    for path in [
        *PAGES,
        "/airloop/",
        "/airloop/api/models",
        "/airloop/api/drift",
        "/airloop/api/data",
        "/airloop/api/live",
        f"/airloop/reports/quarantine/{QUARANTINED}",
        "/airloop/reports/drift/x",
        "/airloop/links/model?dag_id=train_model&run_id=x&task_id=train",
    ]:
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 401, (path, answer.status_code, answer.text[:200])
        assert answer.headers["www-authenticate"] == "Bearer"
        forged = client.get(path, headers={"Authorization": "Bearer not-a-jwt"}, follow_redirects=False)
        assert forged.status_code == 401, path
        client.cookies.set("_token", "not-a-jwt")
        assert client.get(path, follow_redirects=False).status_code == 401, path
        client.cookies.clear()
    for path in ("/airloop/actions/rollback", "/airloop/actions/train", "/airloop/actions/approval"):
        assert client.post(path, data={"reason": "why not"}).status_code == 401
    assert not sent.requests  # nothing reached Airflow's API
    # a browser asking for a page is sent to Airflow's login, and back here afterwards
    browser = client.get("/airloop/drift", headers={"Accept": "text/html"}, follow_redirects=False)
    assert browser.status_code == 303
    assert browser.headers["location"].startswith(
        "/auth/login?next=http%3A%2F%2F127.0.0.1%3A8080%2Fairloop%2Fdrift"
    )


def test_the_session_cookie_is_an_identity(console):
    client, token, _ = console
    client.cookies.set("_token", token)
    try:
        answer = client.get("/airloop/models")
    finally:
        client.cookies.clear()
    assert answer.status_code == 200 and "signed in as admin" in answer.text


def test_models_page_names_the_champion_and_why(console, console_home):
    from airloop.registry import ModelRegistry

    client, token, _ = console
    answer = client.get("/airloop/models", headers=_as(token))
    assert answer.status_code == 200
    text = answer.text
    serving = text[text.index('id="serving"') : text.index('id="v2"')]
    assert "Serving: v2" in serving
    registry = ModelRegistry(f"sqlite:///{console_home / 'mlflow' / 'mlflow.db'}", "flight_delay")
    reason = registry.version("2").tags["gate.reason"]
    assert reason and _escaped(reason) in serving
    assert "drift_monitor: drift in temp" in text and "drift__scheduled__2013-01-31" in text
    assert "/dags/train_model/runs/drift__scheduled__2013-01-31" in text  # the Airflow run
    assert "invariance" in text and "baseline" in text  # behaviour tests, metrics beside the baseline
    data = client.get("/airloop/api/models", headers=_as(token)).json()
    assert data["champion"] == "2" and data["shadow"] == "1"
    v2 = next(v for v in data["versions"] if v["version"] == "2")
    assert v2["gate_reason"] == reason and set(v2["metrics"]) == {"roc_auc", "pr_auc", "log_loss", "brier"}


def _escaped(text: str) -> str:
    import html

    return html.escape(text)


def test_drift_page_and_its_report(console):
    client, token, _ = console
    text = client.get("/airloop/drift", headers=_as(token)).text
    assert 'class="tag retrain"' in text and "temp" in text
    assert "train_model drift__scheduled__2013-01-31T15:00:00+00:00" in text  # what it triggered
    assert "cooldown_hours" in text  # the policy in force
    [check] = client.get("/airloop/api/drift", headers=_as(token)).json()["checks"]
    assert check["retrain"] and check["top"][0]["status"] == "alert" and check["has_report"]
    report = client.get(f"/airloop/reports/drift/{check['id']}", headers=_as(token))
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in report.headers["content-security-policy"]
    assert "<svg" in report.text and "temp" in report.text
    # the extra link of check_drift lands on that report
    link = client.get(
        "/airloop/links/drift?dag_id=drift_monitor&run_id=scheduled__2013-01-31T15:00:00%2B00:00&task_id=check_drift",
        headers=_as(token),
        follow_redirects=False,
    )
    assert link.status_code == 303 and link.headers["location"].endswith(f"/reports/drift/{check['id']}")


@pytest.mark.parametrize(
    "path",
    [
        "/airloop/reports/drift/..%2F..%2Fsecret.txt",
        "/airloop/reports/drift/../../secret.txt",
        "/airloop/reports/drift/%2E%2E/%2E%2E/%2E%2E/secret.txt",
        "/airloop/reports/drift//etc/passwd",
        "/airloop/reports/quarantine/..%2F..%2Fsecret.txt",
        f"/airloop/reports/quarantine/{QUARANTINED}%2F..%2F..%2F..%2Fsecret.txt",
        "/airloop/reports/quarantine/2013-01-29",  # validated, not quarantined
    ],
)
def test_report_paths_cannot_leave_the_report_folders(console, path):
    client, token, _ = console
    answer = client.get(path, headers=_as(token))
    assert answer.status_code == 404, (path, answer.text[:200])
    assert "outside the report folders" not in answer.text


def test_a_link_out_of_the_checks_folder_is_refused(console, console_home):
    client, token, _ = console
    checks = console_home / "lake" / "monitoring" / "drift" / "checks"
    (checks / "escape").mkdir()
    (checks / "escape" / "report.html").symlink_to(console_home / "secret.txt")
    (checks / "outside").symlink_to(console_home)
    try:
        for name in ("escape", "outside"):
            answer = client.get(f"/airloop/reports/drift/{name}", headers=_as(token))
            assert answer.status_code == 404 and "outside the report folders" not in answer.text
    finally:
        shutil.rmtree(checks / "escape")
        (checks / "outside").unlink()


def test_data_page_shows_the_quarantined_day_and_its_report(console):
    client, token, _ = console
    text = client.get("/airloop/data", headers=_as(token)).text
    assert f'href="/airloop/reports/quarantine/{QUARANTINED}"' in text
    assert "carrier: values must not be null -&gt; 3 of" in text
    assert "29 validated, 1 quarantined" in text
    data = client.get("/airloop/api/data", headers=_as(token)).json()
    day = next(d for d in data["days"] if d["ds"] == "2013-01-29")
    assert day["status"] == "validated" and day["rows"]["flights"] > 500
    views = {f["view"]: f for f in data["features"]}
    assert views["origin_weather"]["last_computed"] == "2013-01-29"
    assert views["origin_weather"]["last_materialized"] is not None  # champion_home materialized 3 days
    report = client.get(f"/airloop/reports/quarantine/{QUARANTINED}", headers=_as(token))
    assert report.status_code == 200 and "FAILED flights" not in report.text
    assert f"Quarantined: flights data of {QUARANTINED}" in report.text
    assert "carrier: values must not be null" in report.text


def test_live_page_plots_live_metrics_per_version(console):
    client, token, _ = console
    text = client.get("/airloop/live", headers=_as(token)).text
    assert text.count("<svg") == 3 and "live ROC AUC per day" in text and "<polyline" in text
    live = client.get("/airloop/api/live", headers=_as(token)).json()
    assert [d["ds"] for d in live["days"]] == ["2013-01-27", "2013-01-28", "2013-01-29"]
    assert live["versions"] == ["2"]


def test_actions_go_through_airflows_rest_api_with_the_users_token(console):
    client, token, sent = console
    sent.requests.clear()
    answer = client.post(
        "/airloop/actions/rollback",
        data={"reason": "v2 misses the evening peak"},
        headers={**_as(token), "Origin": "http://127.0.0.1:8080"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text[:300]
    assert "done=rollback_model" in answer.headers["location"]
    calls = [(r.method, r.url.path) for r in sent.requests]
    assert calls == [
        ("GET", "/api/v2/dags/rollback_model"),
        ("PATCH", "/api/v2/dags/rollback_model"),
        ("POST", "/api/v2/dags/rollback_model/dagRuns"),
    ]
    assert all(r.headers["authorization"] == f"Bearer {token}" for r in sent.requests)
    assert json.loads(sent.requests[-1].content)["conf"] == {"reason": "v2 misses the evening peak"}
    sent.requests.clear()
    client.post(
        "/airloop/actions/train",
        data={"reason": "new data", "require_approval": "true"},
        headers=_as(token),
        follow_redirects=False,
    )
    conf = json.loads(sent.requests[-1].content)["conf"]
    assert conf == {"reason": "console: new data", "require_approval": True, "holdout_end": "2013-01-30"}
    # a form posted from another site is not an action, whatever cookie it carries
    sent.requests.clear()
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = client.post(
            "/airloop/actions/rollback", data={"reason": "csrf"}, headers={**_as(token), **headers}
        )
        assert refused.status_code == 403
    assert not sent.requests


def test_the_plugin_is_registered_with_airflow(console):
    client, token, _ = console
    plugins = client.get("/api/v2/plugins", headers=_as(token)).json()["plugins"]
    airloop = next(p for p in plugins if p["name"] == "airloop")
    assert airloop["fastapi_apps"][0]["url_prefix"] == "/airloop"
    assert airloop["external_views"][0]["url_route"] == "airloop"
    assert len(airloop["global_operator_extra_links"]) == 3
