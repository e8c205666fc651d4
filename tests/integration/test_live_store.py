"""The live-traffic log's two stores obey one contract: what the writer flushed (on close too) is what
``count_since`` counts and ``scan`` returns for a window, in batches; Parquet in the lake (embedded) and
a PostgreSQL table (production, the local service)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

T0 = datetime(2013, 7, 1, 12, tzinfo=UTC)


def _rows(n: int, start: datetime, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "temp": rng.normal(70, 10, n),
            "carrier": rng.choice(["AA", "UA"], n),
            "dep_hour": rng.integers(5, 23, n),
            "probability": rng.uniform(size=n),
            "model_version": "1",
            "request_id": f"r{seed}",
            "served_at": [start + timedelta(seconds=i) for i in range(n)],
        }
    )


@pytest.fixture(params=["parquet", pytest.param("postgres", marks=pytest.mark.production)])
def store(request, tmp_path):
    from airloop.livelog import ParquetLiveStore, PostgresLiveStore

    if request.param == "parquet":
        yield ParquetLiveStore(tmp_path / "live")
        return
    psycopg = pytest.importorskip("psycopg")
    try:
        with psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=3
        ) as c:
            if not c.execute("SELECT 1 FROM pg_database WHERE datname = 'airloop_test_live'").fetchone():
                c.execute("CREATE DATABASE airloop_test_live")
    except psycopg.OperationalError as err:
        pytest.skip(f"no local PostgreSQL: {err}")
    dsn = "postgresql://postgres@127.0.0.1:5432/airloop_test_live"
    table = f"live_{tmp_path.name.replace('-', '_')[-40:]}"
    yield PostgresLiveStore(dsn, table)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f'DROP TABLE IF EXISTS "{table}"')


def test_store_contract(store):
    from airloop.livelog import LiveLog

    assert store.count_since(None) == (0, None)
    log = LiveLog(store, flush_rows=300, flush_seconds=0.2)
    first, second = _rows(1000, T0, 1), _rows(700, T0 + timedelta(hours=2), 2)
    for start in range(0, 1000, 250):
        log.append(first.iloc[start : start + 250])
    log.append(second.assign(plane_age=3.5))  # a column that appears later
    log.close()  # graceful: everything queued is written
    assert log.rows_written == 1700

    count, latest = store.count_since(None)
    assert count == 1700 and pd.Timestamp(latest) == pd.Timestamp(second["served_at"].iloc[-1])
    cursor = first["served_at"].iloc[-1]
    assert store.count_since(cursor)[0] == 700

    window = pd.concat(
        store.scan(
            T0 + timedelta(seconds=99), cursor, ["temp", "carrier", "dep_hour", "nope"], batch_rows=256
        ),
        ignore_index=True,
    )
    assert len(window) == 900 and set(window.columns) == {"temp", "carrier", "dep_hour", "served_at"}
    expected = first.iloc[100:].reset_index(drop=True)
    got = window.sort_values("served_at").reset_index(drop=True)
    np.testing.assert_allclose(got["temp"].to_numpy(dtype=float), expected["temp"].to_numpy())
    assert got["carrier"].tolist() == expected["carrier"].tolist()
    assert got["dep_hour"].astype(int).tolist() == expected["dep_hour"].tolist()
    later = pd.concat(store.scan(cursor, None, ["plane_age"]), ignore_index=True)
    assert len(later) == 700 and (later["plane_age"] == 3.5).all()
