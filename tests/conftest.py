"""Test-wide set-up: an isolated, project-local Airflow (SQLite) and a fresh lake per test.

Environment variables are set here, before any test module imports Airflow, so Airflow reads this
project's airflow.cfg with a test home (``.airloop/test``) instead of a developer's state.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_HOME = ROOT / ".airloop" / "test"

os.environ["AIRLOOP_ROOT"] = str(ROOT)
os.environ["AIRFLOW_CONFIG"] = str(ROOT / "airflow.cfg")
os.environ["AIRFLOW_HOME"] = str(TEST_HOME / "airflow")
os.environ["AIRLOOP_HOME"] = str(TEST_HOME / "state")
os.environ.setdefault(
    "AIRFLOW__CORE__FERNET_KEY", base64.urlsafe_b64encode(b"airloop-tests-only-key-32-bytes!").decode()
)
os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", "airloop-tests-only")
os.environ.setdefault("AIRFLOW__API__SECRET_KEY", "airloop-tests-only")
os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

DATA = ROOT / "include" / "data" / "nycflights13"


QUICK_MODEL = {"members": 2, "ple_bins": 16}
"""Tests train the declared recipe smaller (2 networks, 16 bins): they check the loop, not the model's
quality (measured in bench/bench_training.py); the ensemble and encoding paths are still exercised."""


# One flights request row the serving tests send (a real flight of 2013-01-29, UA 1545 EWR-IAH).
ROW = {
    "year": 2013,
    "month": 1,
    "day": 29,
    "sched_dep_time": 1545,
    "sched_arr_time": 1830,
    "carrier": "UA",
    "flight": 1545,
    "tailnum": "N14228",
    "origin": "EWR",
    "dest": "IAH",
    "distance": 1400,
    "hour": 15,
    "minute": 45,
    "time_hour": "2013-01-29T20:00:00Z",
}


def dag_named(dag_id: str):
    """The DAG of ``dags/<dag_id>.py``, parsed the way the scheduler parses it (no import errors allowed)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / f"{dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


def wait_for(condition, what: str, seconds: float = 30, poll: float = 0.05) -> None:
    """Wait until ``condition()`` holds, failing with ``what`` after ``seconds`` (tests wait on state)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(poll)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A freshly migrated Airflow metadata DB for this test session (SQLite under .airloop/test)."""
    home = Path(os.environ["AIRFLOW_HOME"])
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, env=os.environ.copy())
    return home


@pytest.fixture()
def airloop_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the settings at an empty state folder (lake, stores) for one test."""
    home = tmp_path / "airloop"
    monkeypatch.setenv("AIRLOOP_HOME", str(home))
    monkeypatch.delenv("AIRLOOP_LAKE_DIR", raising=False)
    return home


# -- a fake external data source: a folder of files holding real days, optionally corrupted ---------------


def _real_day(ds: str) -> dict:
    from datetime import date

    from airloop.intervals import DayInterval
    from airloop.sources import ReplaySource
    from airloop.usecases import load_use_case

    use_case = load_use_case("flights")
    interval = DayInterval(date.fromisoformat(ds), use_case.timezone)
    return {s.name: ReplaySource(DATA).extract(s, interval) for s in use_case.sources}


def _dup(frame):
    import pandas as pd

    return pd.concat([frame, frame.head(10)], ignore_index=True)


def _set(column, rows, value):
    def apply(frame):
        frame = frame.copy()
        frame[column] = (
            frame[column].astype(object) if isinstance(value, str) or value is None else frame[column]
        )
        frame.loc[frame.index[:rows], column] = value
        return frame

    return apply


# name -> (source, how to corrupt its frame, text the failure report must contain)
def _local_wall_clock(values, zone: str):
    import pandas as pd

    return pd.to_datetime(values, utc=True).dt.tz_convert(zone).dt.strftime("%Y-%m-%d %H:%M:%S")


CORRUPTIONS = {
    "missing_column": ("flights", lambda f: f.drop(columns=["carrier"]), "carrier: column must exist"),
    "wrong_dtype": (
        "flights",
        lambda f: f.assign(distance=f.distance.astype(str)),
        "distance: dtype must be one of",
    ),
    "null_key": ("flights", _set("carrier", 3, None), "carrier: values must not be null -> 3 of "),
    "out_of_range": (
        "flights",
        _set("distance", 5, -100),
        "distance: values must lie in [1.0, 6000.0] -> 5 of ",
    ),
    "duplicated_flights": (
        "flights",
        _dup,
        "key ['year', 'month', 'day', 'carrier', 'flight', 'origin'] must be unique",
    ),
    "empty_day": ("flights", lambda f: f.head(0), "row count must lie in [1, 3000] -> observed 0"),
    "unknown_airport": (
        "flights",
        _set("origin", 2, "XXX"),
        "origin: values must be in the allowed set -> 2 of ",
    ),
    "unknown_destination": ("flights", _set("dest", 4, "ZZZ"), "dest: known in airports.faa -> 4 of "),
    "naive_times": (  # local wall-clock strings where the declaration promises offsets (issue 13, 1)
        "flights",
        lambda f: f.assign(time_hour=_local_wall_clock(f.time_hour, "America/New_York")),
        "time_hour: timestamps must carry an offset (the declaration gives no timezone for naive values)",
    ),
    "implausible_weather": (
        "weather",
        _set("temp", 30, 500.0),
        "temp: values must lie in [-40.0, 130.0] -> 30 of",
    ),
    "not_parquet": (
        "flights",
        None,
        "flights.input must be a readable table -> flights.parquet is not a readable Parquet",
    ),
}


@pytest.fixture()
def source_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write real days as a folder source (one Parquet per source) and point the settings at it.

    Returns ``write(ds, corruption=None)``; a corruption name from ``CORRUPTIONS`` damages that day.
    """
    root = tmp_path / "source"
    monkeypatch.setenv("AIRLOOP_SOURCE__KIND", "folder")
    monkeypatch.setenv("AIRLOOP_SOURCE__PATH", str(root))

    def write(ds: str, corruption: str | None = None) -> Path:
        tables = _real_day(ds)
        for name, frame in tables.items():
            folder = root / name / f"ds={ds}"
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / "part.parquet"
            if corruption and CORRUPTIONS[corruption][0] == name:
                damage = CORRUPTIONS[corruption][1]
                if damage is None:
                    (folder / "flights.parquet").write_bytes(
                        b"PAR1? no: a CSV export renamed by mistake\n1,2,3\n"
                    )
                    continue
                frame = damage(frame)
            frame.to_parquet(target, index=False)
        return root

    return write


def build_lake(home: Path, first, last):
    """Ingest the real days ``first..last`` into ``home/lake`` (validated) and compute their features."""
    from airloop.feature_pipeline import compute_days
    from airloop.ingest import ingest_day
    from airloop.intervals import day_range
    from airloop.lake import Lake
    from airloop.sources import ReplaySource
    from airloop.usecases import load_use_case

    use_case = load_use_case("flights")
    lake = Lake(home / "lake")
    days = day_range(first, last)
    for d in days:
        assert ingest_day(use_case, ReplaySource(DATA), lake, d).status == "validated"
    compute_days(use_case, lake, days)
    return lake


@pytest.fixture(scope="session")
def champion_home(tmp_path_factory):
    """A state folder with 29 validated days, their features materialized, and a champion (v1)."""
    from datetime import date

    from airloop.featurestore import materialize_days, open_store
    from airloop.intervals import day_range
    from airloop.settings import load_settings
    from airloop.training import (
        TrainingWindow,
        build_datasets,
        evaluate_and_decide,
        promote,
        train_and_register,
    )
    from airloop.usecases import load_use_case

    home = tmp_path_factory.mktemp("champion")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRLOOP_HOME", str(home))
        settings, use_case = load_settings(), load_use_case("flights")
        lake = build_lake(home, date(2013, 1, 1), date(2013, 1, 29))
        days = day_range(date(2013, 1, 1), date(2013, 1, 29))
        materialize_days(open_store(settings, use_case), use_case, days[-3:])
        window = TrainingWindow.ending(date(2013, 1, 30), 22, 7)
        build_datasets(settings, use_case, lake, window)
        trained = train_and_register(
            settings,
            use_case,
            lake,
            window,
            {**QUICK_MODEL, "epochs": 2},
            {"airloop.triggered_by": "test"},
            "2013-01-30T00:00:00-05:00",
        )
        promote(
            settings,
            use_case,
            evaluate_and_decide(settings, use_case, lake, window, trained["version"]),
            "test",
            "2013-01-30T00:00:00-05:00",
        )
    return home
