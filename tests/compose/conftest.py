"""The compose stack under test: real images on a real Docker engine (``make compose-test`` provides both).

``docker/compose-test.sh`` starts a private engine, builds the images offline and writes the env file; these
fixtures bring ``docker-compose.yaml`` + ``docker/compose.hostnet.yaml`` up, wait for every service's health
check, and take everything down with its volumes at the end (``AIRLOOP_COMPOSE_KEEP=1`` keeps it for
debugging). Every address is on 127.0.0.1. Timings go to ``$AIRLOOP_COMPOSE_RESULTS`` (JSON lines).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from stack import Stack, env_file, read_env, record


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    env = read_env(env_file())
    stack = Stack(env, os.environ.get("AIRLOOP_COMPOSE_PROJECT", "airloop-ci"))
    stack.down(volumes=True)  # nothing left from an interrupted run
    started = time.monotonic()
    stack.compose("up", "-d")
    seconds = stack.wait_healthy(600)
    record(
        "compose_up_to_healthy",
        seconds=round(time.monotonic() - started, 1),
        after_up_returned=round(seconds, 1),
    )
    try:
        yield stack
    finally:
        if os.environ.get("AIRLOOP_COMPOSE_KEEP") != "1":
            stack.down(volumes=True)
