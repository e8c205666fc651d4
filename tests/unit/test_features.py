"""Feature functions on hand-made timelines: nothing after the snapshot instant can leak into a value."""

from datetime import date

import pandas as pd
import pytest

from airloop.features import (
    apply_defaults,
    day_features,
    departures,
    entity_keys,
    event_times,
    history_input_days,
    history_snapshot,
    observation_features,
)
from airloop.usecases import load_use_case

UC = load_use_case("flights")
CARRIER = UC.features.histories[0]
ROUTE = UC.features.histories[1]
MIDNIGHT = pd.Timestamp("2013-01-10T05:00Z")  # 2013-01-10 00:00 in New York


def flight(sched_utc: str, dep_delay: float | None, carrier="AA", origin="JFK", dest="LAX", minute=0, tailnum="N1"):
    hour = pd.Timestamp(sched_utc)
    return {"time_hour": hour, "minute": minute, "dep_delay": dep_delay, "carrier": carrier, "origin": origin,
            "dest": dest, "tailnum": tailnum, "year": 2013, "month": 1, "day": 9, "sched_dep_time": 1200,
            "distance": 2475}


def snapshot(rows, spec=CARRIER, as_of=MIDNIGHT):
    frame = pd.DataFrame(rows)
    return history_snapshot(departures(frame, spec, UC), spec, UC, as_of).set_index(UC.entity_key(spec.entity))


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
    s = snapshot([flight("2013-01-09T15:00Z", 20, carrier="AA"), flight("2012-11-01T15:00Z", 20, carrier="UA")])
    assert list(s.index) == ["AA"]


def test_route_history_keys():
    s = snapshot([flight("2013-01-09T15:00Z", 20), flight("2013-01-09T15:00Z", 0, dest="SFO")], spec=ROUTE)
    assert sorted(s.index) == ["JFK-LAX", "JFK-SFO"]


def test_history_input_days_cover_late_departures():
    days = history_input_days(date(2013, 1, 30), CARRIER)
    assert days[0] == date(2013, 1, 1) and days[-1] == date(2013, 1, 29) and len(days) == 29


def test_observation_stamped_at_its_own_time_and_missing_hour():
    weather = pd.DataFrame({"origin": ["JFK", "JFK"], "time_hour": pd.to_datetime(["2013-01-09T10:00Z", "2013-01-09T12:00Z"]),
                            **{c: [1.0, 2.0] for c in UC.features.observations[0].columns}})
    out = observation_features(weather, UC.features.observations[0], UC, "time_hour")
    assert list(out["event_timestamp"]) == list(weather["time_hour"])  # 11:00 missing: no invented row
    assert list(out["origin"]) == ["JFK", "JFK"]


def test_day_features_stamps_history_at_local_midnight():
    today = pd.DataFrame([flight("2013-01-10T15:00Z", 0)])
    weather = pd.DataFrame({"origin": ["JFK"], "time_hour": pd.to_datetime(["2013-01-10T15:00Z"]),
                            **{c: [1.0] for c in UC.features.observations[0].columns}})
    planes = pd.DataFrame({"tailnum": ["N1", "N2"], "year": [2000.0, 2010.0], "seats": [100, 200], "engines": [2, 2]})
    history = pd.DataFrame([flight("2013-01-09T15:00Z", 20)])
    out = day_features(UC, date(2013, 1, 10), {"flights": today, "weather": weather, "planes": planes}, history)
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

    inputs = pd.DataFrame({"year": [2013], "month": [1], "day": [7], "sched_dep_time": [1545], "distance": [200.0],
                           "plane_year": [2003.0]})
    out = request_features(inputs).iloc[0]
    assert (out.dep_hour, out.dep_minute_of_day, out.weekday, out.month_of_year) == (15, 945, 0, 1)
    assert out.plane_age == 10.0
