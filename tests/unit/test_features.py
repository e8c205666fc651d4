"""Feature functions on hand-made timelines: nothing after the snapshot instant can leak into a value."""

from datetime import date

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from airloop.features import (
    apply_defaults,
    day_features,
    entity_keys,
    event_times,
    history_input_days,
    history_snapshot,
    known_outcomes,
    observation_features,
)
from airloop.usecases import load_use_case

UC = load_use_case("flights")
CARRIER = UC.features.histories[0]
ROUTE = UC.features.histories[1]
MIDNIGHT = pd.Timestamp("2013-01-10T05:00Z")  # 2013-01-10 00:00 in New York


def flight(
    sched_utc: str, dep_delay: float | None, carrier="AA", origin="JFK", dest="LAX", minute=0, tailnum="N1"
):
    hour = pd.Timestamp(sched_utc)
    return {
        "time_hour": hour,
        "minute": minute,
        "dep_delay": dep_delay,
        "carrier": carrier,
        "origin": origin,
        "dest": dest,
        "tailnum": tailnum,
        "year": 2013,
        "month": 1,
        "day": 9,
        "sched_dep_time": 1200,
        "distance": 2475,
    }


def snapshot(rows, spec=CARRIER, as_of=MIDNIGHT):
    frame = pd.DataFrame(rows)
    return history_snapshot(known_outcomes(frame, spec, UC), spec, UC, as_of).set_index(
        UC.entity_key(spec.entity)
    )


def test_event_time_is_scheduled_departure():
    frame = pd.DataFrame([flight("2013-01-09T17:00Z", 5, minute=42)])
    assert event_times(frame, UC).iloc[0] == pd.Timestamp("2013-01-09T17:42Z")


def test_route_key_is_composite():
    frame = pd.DataFrame([flight("2013-01-09T17:00Z", 5)])
    assert entity_keys(frame, UC, "route").iloc[0] == "JFK-LAX"


def test_only_departures_strictly_before_the_snapshot_count():
    rows = [
        flight("2013-01-09T20:00Z", 30),  # departed 20:30Z: before midnight NY (05:00Z) -> counts, delayed
        flight("2013-01-10T04:00Z", 0),  # departed 04:00Z -> counts, on time
        flight("2013-01-10T04:00Z", 60),  # scheduled before midnight but departs 05:00Z == as_of -> excluded
        flight("2013-01-10T04:30Z", 90),  # departs 06:00Z, after the snapshot -> excluded
        flight("2013-01-10T12:00Z", 500),  # a future flight -> excluded
    ]
    s = snapshot(rows)
    assert s.loc["AA", "carrier_events_7d"] == 2
    assert s.loc["AA", "carrier_delayed_share_7d"] == 0.5
    assert s.loc["AA", "carrier_mean_delay_7d"] == 15.0


@pytest.mark.parametrize("future_delay", [0, 45, 900])
def test_future_flights_never_change_the_value(future_delay):
    past = [flight("2013-01-09T15:00Z", 20), flight("2013-01-08T15:00Z", 0)]
    base = snapshot(past)
    with_future = snapshot(past + [flight("2013-01-10T15:00Z", future_delay), flight("2013-01-10T04:59Z", 5)])
    pd.testing.assert_frame_equal(base, with_future)


def test_windows_and_cancelled_flights():
    rows = [
        flight("2013-01-09T15:00Z", 20),  # inside 7 and 28 days
        flight("2012-12-20T15:00Z", 40),  # only inside 28 days
        flight("2012-12-01T15:00Z", 99),  # outside both windows
        flight("2013-01-09T16:00Z", None),  # cancelled: never departed, not counted
    ]
    s = snapshot(rows)
    assert s.loc["AA", "carrier_events_7d"] == 1 and s.loc["AA", "carrier_events_28d"] == 2
    assert s.loc["AA", "carrier_mean_delay_28d"] == 30.0


def test_first_day_has_no_history():
    s = snapshot([flight("2013-01-10T15:00Z", 20)])
    assert s.empty and "carrier_delayed_share_7d" in s.columns


def test_entity_without_recent_events_gets_no_row():
    s = snapshot(
        [flight("2013-01-09T15:00Z", 20, carrier="AA"), flight("2012-11-01T15:00Z", 20, carrier="UA")]
    )
    assert list(s.index) == ["AA"]


def test_route_history_keys():
    s = snapshot([flight("2013-01-09T15:00Z", 20), flight("2013-01-09T15:00Z", 0, dest="SFO")], spec=ROUTE)
    assert sorted(s.index) == ["JFK-LAX", "JFK-SFO"]


def test_history_input_days_cover_late_departures():
    days = history_input_days(date(2013, 1, 30), CARRIER)
    assert days[0] == date(2013, 1, 1) and days[-1] == date(2013, 1, 29) and len(days) == 29


def test_observation_stamped_at_its_own_time_and_missing_hour():
    weather = pd.DataFrame(
        {
            "origin": ["JFK", "JFK"],
            "time_hour": pd.to_datetime(["2013-01-09T10:00Z", "2013-01-09T12:00Z"]),
            **{c: [1.0, 2.0] for c in UC.features.observations[0].columns},
        }
    )
    out = observation_features(weather, UC.features.observations[0], UC, "time_hour")
    assert list(out["event_timestamp"]) == list(weather["time_hour"])  # 11:00 missing: no invented row
    assert list(out["origin"]) == ["JFK", "JFK"]


def test_day_features_stamps_history_at_local_midnight():
    today = pd.DataFrame([flight("2013-01-10T15:00Z", 0)])
    weather = pd.DataFrame(
        {
            "origin": ["JFK"],
            "time_hour": pd.to_datetime(["2013-01-10T15:00Z"]),
            **{c: [1.0] for c in UC.features.observations[0].columns},
        }
    )
    planes = pd.DataFrame(
        {"tailnum": ["N1", "N2"], "year": [2000.0, 2010.0], "seats": [100, 200], "engines": [2, 2]}
    )
    history = pd.DataFrame([flight("2013-01-09T15:00Z", 20)])
    out = day_features(
        UC, date(2013, 1, 10), {"flights": today, "weather": weather, "planes": planes}, history
    )
    assert set(out) == {"origin_weather", "carrier_history", "route_history", "plane_attributes"}
    assert (out["carrier_history"]["event_timestamp"] == MIDNIGHT).all()
    assert list(out["plane_attributes"]["tailnum"]) == ["N1"]  # only planes flying that day
    assert out["plane_attributes"]["plane_year"].iloc[0] == 2000.0


def test_defaults_fill_and_flag():
    frame = pd.DataFrame({"temp": [None, 30.0], "carrier_delayed_share_7d": [0.3, None]})
    out = apply_defaults(frame, UC)
    assert out["temp"].tolist() == [55.3, 30.0] and out["origin_weather__missing"].tolist() == [1, 0]
    assert out["carrier_delayed_share_7d"].tolist() == [0.3, 0.2]
    assert out["carrier_history__missing"].tolist() == [0, 1]


def test_request_transform():
    from airloop.usecases.flights import request_features

    inputs = pd.DataFrame(
        {
            "year": [2013],
            "month": [1],
            "day": [7],
            "sched_dep_time": [1545],
            "distance": [200.0],
            "plane_year": [2003.0],
        }
    )
    out = request_features(inputs).iloc[0]
    assert (out.dep_hour, out.dep_minute_of_day, out.weekday, out.month_of_year) == (15, 945, 0, 1)
    assert out.plane_age == 10.0


def reference_request_features(inputs: pd.DataFrame) -> pd.DataFrame:
    """The flights request transform as plain pandas: the oracle for its numpy version."""
    out = pd.DataFrame(index=inputs.index)
    sched = inputs["sched_dep_time"].astype("int64")
    out["dep_hour"] = (sched // 100).astype("int64")
    out["dep_minute_of_day"] = (sched // 100 * 60 + sched % 100).astype("int64")
    dates = pd.to_datetime(
        dict(year=inputs["year"], month=inputs["month"], day=inputs["day"]), errors="coerce"
    )
    out["weekday"] = dates.dt.weekday.fillna(-1).astype("int64")
    out["month_of_year"] = inputs["month"].astype("int64")
    out["distance_miles"] = inputs["distance"].astype("float64")
    plane_age = inputs["year"].astype("float64") - inputs["plane_year"].astype("float64")
    out["plane_age"] = plane_age.astype("float64")
    return out


def request_rows(
    n: int, seed: int, years: list[int] | None = None, index: pd.Index | None = None
) -> pd.DataFrame:
    """Random request rows: many dates invalid (month 0-13, day 0-32), a fifth of the planes unknown."""
    rng = np.random.default_rng(seed)
    plane_year = rng.integers(1960, 2014, n).astype("float64")
    plane_year[rng.random(n) < 0.2] = np.nan
    return pd.DataFrame(
        {
            "year": rng.choice(years or [2012, 2013, 2014], n),
            "month": rng.integers(0, 14, n),
            "day": rng.integers(0, 33, n),
            "sched_dep_time": rng.integers(0, 24, n) * 100 + rng.integers(0, 60, n),  # HHMM
            "distance": rng.integers(17, 4984, n).astype("float64"),
            "plane_year": plane_year,
        },
        index=index,
    )


def request_edges() -> pd.DataFrame:
    """Dates on every edge: leap days, month 13, day 0, pandas' day carry, the datetime64[ns] range."""
    ymd = [
        (2013, 1, 7),
        (2012, 2, 29),
        (2013, 2, 29),
        (2013, 2, 30),
        (2013, 13, 1),
        (2013, 0, 5),
        (2013, 3, 0),
        (2013, 4, 31),
        (2013, 12, 31),
        (2013, 1, 128),
        (2013, 2, -5),
        (1677, 9, 21),
        (1677, 9, 22),
        (2262, 4, 11),
        (2262, 4, 12),
        (1900, 1, 1),
        (170, 1, 1),
        (999, 12, 31),
        (10_000, 1, 1),
        (-1, 1, 1),
    ]
    rows = request_rows(len(ymd), seed=3)
    rows[["year", "month", "day"]] = np.array(ymd)
    return rows


@pytest.mark.parametrize(
    "inputs",
    [
        pytest.param(request_rows(100_000, seed=11), id="100k-random"),
        pytest.param(request_rows(1, seed=12), id="one-row"),
        pytest.param(request_rows(64, seed=13), id="64-rows"),
        pytest.param(request_rows(0, seed=14), id="empty"),
        pytest.param(
            pd.DataFrame(columns=["year", "month", "day", "sched_dep_time", "distance", "plane_year"]),
            id="empty-untyped",
        ),
        pytest.param(
            request_rows(50, seed=15, index=pd.Index([f"r{i}" for i in range(50)], name="request")),
            id="named-index",
        ),
        pytest.param(request_rows(50, seed=16, index=pd.Index(np.arange(50)[::-1] * 7 + 3)), id="int-index"),
        pytest.param(request_edges(), id="edges"),
        pytest.param(
            request_rows(500, seed=17, years=[5, 170, 999, 1677, 2013, 2262, 9999, 10_000]), id="odd-years"
        ),
        pytest.param(
            request_rows(500, seed=18).astype({"year": "int32", "month": "int16", "day": "int8"}),
            id="narrow-ints",
        ),
        pytest.param(
            request_rows(500, seed=19).astype({"year": "float64", "day": "float64"}), id="float-dates"
        ),
    ],
)
def test_request_transform_matches_pandas(inputs: pd.DataFrame) -> None:
    from airloop.usecases.flights import request_features

    assert_frame_equal(
        request_features(inputs),
        reference_request_features(inputs),
        check_dtype=True,
        check_index_type=True,
        check_column_type=True,
        check_exact=True,
    )
