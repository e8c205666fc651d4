"""The Airloop view in a real browser: Debian's chromium (headless, via chromedriver) against a real
``airflow standalone`` on loopback, over stores the library made (``console_home``: v2 promoted over v1, a
drifted window that retrained, live metrics, a quarantined day).

Signs in on Airflow's login page, opens the Airloop nav entry (the plugin's pages in Airflow's frame), sees
the champion and its gate reason, opens a drift report and a quarantine report, rolls back with a reason
through the Actions page (Airflow's REST API with the user's session) and sees the champion change once the
scheduler ran ``rollback_model``. A screenshot of each page goes to ``.airloop/test/artifacts/ui/``
(git-ignored; ``AIRLOOP_UI_SCREENSHOTS`` to put them elsewhere).
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from conftest import TEST_HOME, free_port
from test_airloop_ui import QUARANTINED, console_home  # noqa: F401 - the fixture, for this module too
from webdriver import chromium_session, ensure_chromium

pytestmark = pytest.mark.slow

SHOTS = Path(os.environ.get("AIRLOOP_UI_SCREENSHOTS", TEST_HOME / "artifacts" / "ui"))


def test_the_loop_in_the_airflow_ui(console_home, airflow_db, monkeypatch):  # noqa: F811
    from airloop.registry import ModelRegistry
    from airloop_tools.airflow_runtime import admin_password, local_airflow
    from airloop_tools.bootstrap import ensure_state

    found = ensure_chromium()
    if isinstance(found, str):
        pytest.skip(found)
    chromium, chromedriver = found
    monkeypatch.setenv("AIRLOOP_HOME", str(console_home))
    airflow_home = Path(os.environ["AIRFLOW_HOME"])
    ensure_state(airflow_home)
    registry = ModelRegistry(f"sqlite:///{console_home / 'mlflow' / 'mlflow.db'}", "flight_delay")
    assert registry.version_of("champion") == "2"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with local_airflow(port=port, log_path=console_home.parent / "standalone.log") as api:
        api.wait_until("rollback_model parsed", lambda: api.dag("rollback_model"), 180)
        # no identity, no console: the plugin's endpoints answer 401
        for path in ("/airloop/models", "/airloop/api/models", f"/airloop/reports/quarantine/{QUARANTINED}"):
            assert httpx.get(base + path).status_code == 401, path
        with chromium_session(
            chromium, chromedriver, free_port(), console_home.parent / "chromedriver.log"
        ) as b:
            # sign in on Airflow's own login page; it brings us back to the Airloop nav entry
            b.open(f"{base}/auth/login?next={base}/plugin/airloop")
            b.type(b.wait("the login form", lambda: b.find("input[name=username]")), "admin")
            b.type(b.find("input[name=password]"), admin_password(airflow_home))
            b.click(b.find("button[type=submit]"))

            def in_frame(text: str) -> bool:
                b.frame(None)
                frame = b.find("iframe")
                if frame is None:
                    return False
                b.frame(frame)
                return text in b.text()

            b.wait("the Models page in Airflow's frame", lambda: in_frame("Serving: v2"), 120)
            gate_reason = registry.version("2").tags["gate.reason"]
            assert gate_reason in b.text()
            b.frame(None)
            assert "Airloop" in b.text()  # the nav entry of Airflow's own UI
            b.screenshot(SHOTS / "models.png")

            def tab(name: str, expect: str) -> None:
                b.wait(f"tab {name}", lambda: in_frame("Airloop"))
                b.click(b.wait(f"the {name} link", lambda: b.find(f"a[href$='/airloop/{name.lower()}']")))
                b.wait(f"the {name} page", lambda: in_frame(expect))

            tab("Drift", "Drift checks")
            assert "retrain" in b.text() and "temp" in b.text()
            b.frame(None)
            b.screenshot(SHOTS / "drift.png")
            in_frame("Drift checks")
            b.click(b.find("a[href*='/airloop/reports/drift/']"))
            b.wait("the drift report", lambda: in_frame("PSI") and "temp" in b.text())
            b.frame(None)
            b.screenshot(SHOTS / "drift-report.png")
            b.open(f"{base}/plugin/airloop")  # the report is a page of its own: back to the view

            tab("Data", "Quarantined days")
            b.frame(None)
            b.screenshot(SHOTS / "data.png")
            in_frame("Quarantined days")
            b.click(b.find(f"tr.quarantined-day a[href$='/reports/quarantine/{QUARANTINED}']"))
            b.wait("the quarantine report", lambda: in_frame(f"Quarantined: flights data of {QUARANTINED}"))
            assert "carrier: values must not be null" in b.text()
            b.frame(None)
            b.screenshot(SHOTS / "quarantine-report.png")

            tab("Live", "Live accuracy")
            b.frame(None)
            b.screenshot(SHOTS / "live.png")

            tab("Actions", "Roll back the champion")
            b.type(b.find("#rollback-form input[name=reason]"), "browser test: back to v1")
            b.click(b.find("#rollback"))
            b.wait("the rollback run", lambda: in_frame("rollback_model run"))
            b.frame(None)
            b.screenshot(SHOTS / "actions.png")
            # the whole move: the alias and the audit entry (written after it) with the reason typed
            api.wait_until(
                "champion back on v1, audited",
                lambda: (
                    registry.version_of("champion") == "1"
                    and any("browser test: back to v1" in m.why for m in registry.audit_trail())
                ),
                300,
                2.0,
            )
            tab("Models", "Serving: v1")
            assert "rollback: browser test: back to v1" in b.text()
            b.frame(None)
            b.screenshot(SHOTS / "models-after-rollback.png")
    audit = registry.audit_trail()
    assert audit[-1].who.startswith("airflow:rollback_model/") or audit[-2].who.startswith(
        "airflow:rollback_model/"
    )
