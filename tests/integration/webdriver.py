"""A minimal W3C WebDriver client (httpx) for Debian's ``chromedriver`` driving ``/usr/bin/chromium``.

The W3C protocol is JSON over HTTP; the few calls a UI test needs (open a URL, find, click, type, switch
frames, read text, screenshot) do not justify a browser-automation dependency in the lock.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def ensure_chromium() -> tuple[str, str] | str:
    """(chromium, chromedriver) paths, installing Debian's packages when missing; else why not."""
    if not (shutil.which("chromedriver") and shutil.which("chromium")):
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            return "chromium/chromium-driver missing and not root: apt-get install chromium chromium-driver"
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium", "chromium-driver"]
        done = subprocess.run(install, capture_output=True, text=True, env=env)
        if done.returncode != 0:  # a stale package index: update once and try again
            subprocess.run(["apt-get", "update"], capture_output=True, env=env)
            done = subprocess.run(install, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            return f"apt-get install chromium chromium-driver failed: {done.stderr[-300:]}"
    return shutil.which("chromium") or "", shutil.which("chromedriver") or ""


class Browser:
    """One headless Chromium session."""

    def __init__(self, driver_url: str, chromium: str) -> None:
        self._http = httpx.Client(base_url=driver_url, timeout=120.0)
        caps = {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1440,1000",
                    "--no-first-run",
                ],
            },
        }
        answer = self._call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})
        self.session = answer["sessionId"]

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._http.request(method, path, json=body)
        value = response.json().get("value")
        if response.status_code >= 300:
            raise RuntimeError(f"webdriver {method} {path}: {value}")
        return value

    def _s(self, method: str, path: str, body: Any = None) -> Any:
        return self._call(method, f"/session/{self.session}{path}", body)

    def open(self, url: str) -> None:
        self._s("POST", "/url", {"url": url})

    @property
    def url(self) -> str:
        return self._s("GET", "/url")

    def find(self, css: str) -> str | None:
        found = self._s("POST", "/elements", {"using": "css selector", "value": css})
        if not found:
            return None
        return found[0][ELEMENT]

    def click(self, element: str) -> None:
        self._s("POST", f"/element/{element}/click", {})

    def type(self, element: str, text: str) -> None:
        self._s("POST", f"/element/{element}/value", {"text": text})

    def frame(self, element: str | None) -> None:
        """Into the frame ``element`` (``None``: back to the top document)."""
        self._s("POST", "/frame", {"id": None if element is None else {ELEMENT: element}})

    def text(self) -> str:
        return self._s(
            "POST",
            "/execute/sync",
            {"script": "return document.body ? document.body.innerText : '';", "args": []},
        )

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self._s("GET", "/screenshot")))

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 60.0, poll: float = 0.5) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                value = check()
            except RuntimeError as err:  # e.g. a frame that is being replaced
                last, value = err, None
            if value:
                return value
            time.sleep(poll)
        raise TimeoutError(
            f"browser: {what} not within {timeout:.0f} s ({last}); at {self.url}: {self.text()[:500]}"
        )

    def close(self) -> None:
        try:
            self._call("DELETE", f"/session/{self.session}")
        finally:
            self._http.close()


@contextmanager
def chromium_session(chromium: str, chromedriver: str, port: int, log: Path) -> Iterator[Browser]:
    """Start ``chromedriver`` on 127.0.0.1:``port`` and one browser session for the block."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        driver = subprocess.Popen([chromedriver, f"--port={port}"], stdout=out, stderr=subprocess.STDOUT)
    browser = None
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/status", timeout=2).json()["value"]["ready"]:
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            assert time.monotonic() < deadline, f"chromedriver not ready within 30 s (see {log})"
            time.sleep(0.2)
        browser = Browser(url, chromium)
        yield browser
    finally:
        if browser is not None:
            browser.close()
        driver.terminate()
        driver.wait(10)
