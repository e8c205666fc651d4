"""extract -> validate -> publish/quarantine, with a folder source standing in for the external system."""

from datetime import date

import pandas as pd
import pytest
from conftest import CORRUPTIONS

from airloop.ingest import failure_message, ingest_day, summarize, validate_day
from airloop.lake import Lake
from airloop.resources import source_path
from airloop.settings import load_settings
from airloop.sources import make_source
from airloop.usecases import load_use_case

UC = load_use_case("flights")


def run(ds: str):
    settings = load_settings()
    lake = Lake(settings.lake)
    source = make_source(settings.source.kind, source_path(settings, UC))
    return lake, ingest_day(UC, source, lake, date.fromisoformat(ds))


def test_real_day_is_published(airloop_home, source_folder):
    source_folder("2013-01-01")
    lake, result = run("2013-01-01")
    assert result.status == "validated" and result.rows["flights"] == 842
    assert lake.validated_days() == ["2013-01-01"]
    flights = lake.read_partition("validated", "flights", "2013-01-01")
    assert len(flights) == 842 and str(flights.time_hour.dtype) == "datetime64[ns, UTC]"
    assert lake.manifest("2013-01-01")["rows"]["flights"] == 842


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_bad_day_is_quarantined_and_validated_zone_untouched(airloop_home, source_folder, corruption):
    source_folder("2013-01-01")
    source_folder("2013-01-02", corruption)
    lake, good = run("2013-01-01")
    before = lake.read_partition("validated", "flights", "2013-01-01")
    lake, result = run("2013-01-02")
    assert result.status == "quarantined"
    expected = CORRUPTIONS[corruption][2]
    assert any(expected in line for line in result.failures), result.failures
    # the validated zone holds exactly what it held before, and nothing of the bad day
    assert lake.validated_days() == ["2013-01-01"]
    assert not lake.partition("validated", "flights", "2013-01-02").exists()
    pd.testing.assert_frame_equal(lake.read_partition("validated", "flights", "2013-01-01"), before)
    # quarantine: readable report, full GX result, and the data itself
    folder = lake.quarantine_dir("2013-01-02")
    report = (folder / "REPORT.md").read_text()
    assert (
        "Quarantined: flights data of 2013-01-02" in report
        and expected.split(" -> ")[0].split(".")[-1] in report
    )
    assert (folder / "validation.json").exists()
    assert (folder / "flights").is_dir() and any((folder / "flights").iterdir())


def test_failure_message_names_every_failed_expectation(airloop_home, source_folder):
    source_folder("2013-01-01", "null_key")
    _, result = run("2013-01-01")
    message = failure_message([result.to_dict()])
    assert message.startswith("1 of 1 day(s) quarantined:")
    assert "2013-01-01" in message and "flights.carrier: values must not be null -> 3 of 842 rows" in message


def test_reingest_is_idempotent(airloop_home, source_folder):
    source_folder("2013-01-01")
    lake, first = run("2013-01-01")
    a = lake.read_partition("validated", "flights", "2013-01-01")
    manifest = lake.manifest("2013-01-01")
    lake, second = run("2013-01-01")
    pd.testing.assert_frame_equal(a, lake.read_partition("validated", "flights", "2013-01-01"))
    assert manifest == lake.manifest("2013-01-01") and first == second
    assert [p.name for p in lake.partition("validated", "flights", "2013-01-01").iterdir()] == [
        "part-0.parquet"
    ]


def test_fixed_source_rerun_leaves_quarantine(airloop_home, source_folder):
    source_folder("2013-01-01", "out_of_range")
    lake, bad = run("2013-01-01")
    assert lake.quarantined_days() == ["2013-01-01"]
    source_folder("2013-01-01")  # the source is repaired
    lake, good = run("2013-01-01")
    assert (
        good.status == "validated"
        and lake.quarantined_days() == []
        and lake.validated_days() == ["2013-01-01"]
    )


def test_day_that_turns_bad_is_withdrawn(airloop_home, source_folder):
    source_folder("2013-01-01")
    lake, _ = run("2013-01-01")
    source_folder("2013-01-01", "duplicated_flights")
    lake, again = run("2013-01-01")
    assert again.status == "quarantined" and lake.validated_days() == []


def test_validate_without_extract_is_an_error(airloop_home):
    with pytest.raises(FileNotFoundError):
        validate_day(UC, Lake(load_settings().lake), date(2013, 1, 1))


def test_summary_counts():
    results = [
        {"ds": "2013-01-01", "status": "validated", "rows": {"flights": 842}},
        {"ds": "2013-01-02", "status": "quarantined", "rows": {"flights": 943}},
    ]
    s = summarize(results, "flights")
    assert (s["validated"], s["quarantined"], s["flights_rows"]) == (1, 1, 842)
    assert s["quarantined_days"] == ["2013-01-02"]


def test_implausible_readings_are_nulled_and_tolerated_values_reported(airloop_home, source_folder):
    """Issue 13 finding 4, on the real 2013-02-12: EWR's 1,048 mph wind reading is set to null (declared
    ``repair="null"``) and said in the manifest; a value let through by a ``mostly`` tolerance is counted
    with examples; wholesale breakage (over the null share) still quarantines."""
    root = source_folder("2013-02-12")
    lake, result = run("2013-02-12")
    assert result.status == "validated"
    manifest = lake.manifest("2013-02-12")
    (line,) = manifest["repaired"]
    assert line.startswith("weather.wind_speed: 1 of ") and "1048" in line and "set to null" in line
    weather = lake.read_partition("validated", "weather", "2013-02-12")
    assert weather.wind_speed.max() < 150 and weather.wind_speed.isna().sum() >= 1
    assert manifest["tolerated"] == []

    broken = pd.read_parquet(root / "weather" / "ds=2013-02-12" / "part.parquet")
    broken.loc[broken.index[:10], "wind_speed"] = 999.0  # ~14% of the day's readings: a broken sensor
    broken.to_parquet(root / "weather" / "ds=2013-02-12" / "part.parquet", index=False)
    _, result = run("2013-02-12")
    assert result.status == "quarantined"
    assert any("wind_speed: values must not be null" in f for f in result.failures), result.failures


def test_a_tolerance_that_lets_values_through_says_so():
    from airloop.usecase import Column, Source
    from airloop.validation import ValidationContext, validate_frame

    source = Source(
        name="readings",
        kind="dimension",
        key=["id"],
        columns=[
            Column(name="id", dtype="int64"),
            Column(name="value", dtype="float64", min_value=0, max_value=10, mostly=0.9),
        ],
    )
    frame = pd.DataFrame({"id": range(20), "value": [1.0] * 19 + [55.0]})
    from airloop.intervals import DayInterval

    report = validate_frame(frame, source, ValidationContext(DayInterval(date(2013, 1, 1), "UTC")))
    assert report.passed
    (check,) = report.tolerated
    assert check.tolerated == 1 and "1 of 20 rows unexpected" in check.line() and "55.0" in check.line()
