"""Declarations that fit real data (issue 12): label rules beyond delays, integer and composite keys, CSV
read with declared dtypes, naive local timestamps, histories on any measure."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest

from airloop.features import entity_keys, history_snapshot, key_string, key_strings, known_outcomes
from airloop.intervals import DayInterval
from airloop.labels import make_label
from airloop.sources import FolderSource, SourceReadError, parse_timestamps
from airloop.usecase import Column, Label, NullOutcome, Source
from airloop.usecases import load_use_case

GRID = load_use_case("grid_peak")


@pytest.mark.parametrize(
    "label, values, expected",
    [
        (
            Label(name="y", source="s", definition="", column="v", rule="above", threshold=5.0),
            [4.9, 5.0, 5.1],
            [0, 0, 1],
        ),
        (
            Label(name="y", source="s", definition="", column="v", rule="below", threshold=0.0),
            [-1.0, 0.0, 2.0],
            [1, 0, 0],
        ),
        (Label(name="y", source="s", definition="", column="v", rule="true"), [True, False, True], [1, 0, 1]),
        (Label(name="y", source="s", definition="", column="v", rule="true"), [1, 0, 0], [1, 0, 0]),
        (
            Label(name="y", source="s", definition="", column="v", rule="in", categories=["churned", "lost"]),
            ["active", "lost", "churned"],
            [0, 1, 1],
        ),
    ],
)
def test_label_rules(label, values, expected):
    assert make_label(pd.DataFrame({"v": values}), label)["y"].tolist() == expected


def test_unknown_outcomes_are_left_out_and_null_statuses_apply_in_order():
    label = Label(
        name="y",
        source="s",
        definition="",
        column="v",
        rule="above",
        threshold=1,
        positive_status="hi",
        negative_status="lo",
        when_null=[NullOutcome(status="void", column="w", positive=False)],
    )
    frame = pd.DataFrame({"v": [2.0, 0.0, math.nan, math.nan], "w": [1, 1, None, 1]})
    out = make_label(frame, label)
    assert out["y_status"].tolist() == ["hi", "lo", "void"]  # the 4th row: outcome null, not covered
    assert out["y"].tolist() == [1, 0, 0]


def test_a_rule_without_its_parameter_is_refused():
    with pytest.raises(ValueError, match="rule 'above' needs a threshold"):
        Label(name="y", source="s", definition="", column="v", rule="above")


def test_integer_and_composite_keys_are_join_strings():
    assert key_strings(pd.Series([1, 17, 48])).tolist() == ["1", "17", "48"]
    assert key_strings(pd.Series([1.0, None, 3.0])).tolist() == [
        "1",
        None,
        "3",
    ]  # int column read with a null
    assert key_string(17) == key_string(17.0) == "17" and key_string(True) == "1" and key_string(None) is None
    frame = pd.DataFrame({"workday": [0, 1], "period": [1, 48]})
    assert GRID.entity_key("daytype_half_hour") == "daytype_half_hour"
    assert entity_keys(frame, GRID, "daytype_half_hour").tolist() == ["0-1", "1-48"]
    assert entity_keys(frame, GRID, "half_hour").tolist() == ["1", "48"]


def test_each_value_is_read_by_its_own_offset_and_naive_ones_in_the_declared_zone():
    values = pd.Series(
        [
            "2014-03-01 00:00:00",
            "2014-03-01T00:00:00+00:00",
            "2014-03-01 00:00:00",
            "2014-03-01T09:00:00Z",
            "not a time",
        ]
    )
    out = parse_timestamps(values, "Australia/Brisbane")
    assert [str(t) for t in out] == [
        "2014-02-28 14:00:00+00:00",
        "2014-03-01 00:00:00+00:00",
        "2014-02-28 14:00:00+00:00",
        "2014-03-01 09:00:00+00:00",
        "NaT",
    ]


def test_local_times_a_dst_change_skips_or_repeats_are_not_guessed():
    out = parse_timestamps(
        pd.Series(["2013-03-10 02:30:00", "2013-11-03 01:30:00", "2013-11-03 03:00:00"]), "America/New_York"
    )
    assert out.isna().tolist() == [True, True, False]  # nonexistent, ambiguous, fine


def _source(**dtypes: str) -> Source:
    return Source(
        name="s",
        kind="event",
        event_timestamp="ts",
        key=["ts"],
        columns=[
            Column(name="ts", dtype="timestamp", timezone="Europe/Paris"),
            *(Column(name=n, dtype=t) for n, t in dtypes.items()),
        ],
    )  # type: ignore[arg-type]


def test_csv_is_read_with_the_declared_dtypes(tmp_path):
    (tmp_path / "s.csv").write_text(
        "ts,code,count,extra\n2014-06-01 10:00:00,06,3,x\n2014-06-01 11:00:00,07,,y\n"
    )
    frame = FolderSource(tmp_path).extract(
        _source(code="string", count="int64"), DayInterval(date(2014, 6, 1), "Europe/Paris")
    )
    assert frame["code"].tolist() == ["06", "07"]  # a code stays a code
    assert frame["count"].tolist()[0] == 3 and pd.isna(
        frame["count"].tolist()[1]
    )  # an int column with a null
    assert frame["extra"].tolist() == ["x", "y"]


def test_a_duplicated_csv_header_makes_the_file_unreadable_naming_it(tmp_path):
    (tmp_path / "s.csv").write_text("ts,code,code\n2014-06-01 10:00:00,06,07\n")
    with pytest.raises(SourceReadError, match=r"duplicate column header\(s\) \['code'\]"):
        FolderSource(tmp_path).extract(_source(code="string"), DayInterval(date(2014, 6, 1), "Europe/Paris"))


def test_history_on_a_measure_counts_an_outcome_only_once_it_is_known():
    [spec] = [h for h in GRID.features.histories if h.name == "half_hour_history"]  # type: ignore[union-attr]
    events = pd.DataFrame(
        {
            "period_start": pd.to_datetime(["2014-03-01 13:00", "2014-03-01 13:30"]).tz_localize("UTC"),
            "period": [47, 48],
            "workday": [0, 0],
            "demand_gw": [5.5, 4.0],
        }
    )
    outcomes = known_outcomes(events, spec, GRID)
    # the second half-hour ends (its demand is known) at 14:00 UTC = midnight in Brisbane: not before it
    snapshot = history_snapshot(outcomes, spec, GRID, pd.Timestamp("2014-03-01 14:00", tz="UTC"))
    assert snapshot["half_hour"].tolist() == ["47"]
    assert snapshot["half_hour_high_share_7d"].tolist() == [1.0] and snapshot[
        "half_hour_mean_gw_7d"
    ].tolist() == [5.5]


def test_a_bare_date_has_no_offset():
    assert (
        str(parse_timestamps(pd.Series(["2014-07-01"]), "Australia/Brisbane")[0])
        == "2014-06-30 14:00:00+00:00"
    )


def test_csv_missing_numbers_and_codes_that_look_missing(tmp_path):
    (tmp_path / "s.csv").write_text(
        "\ufeffts,code,count,level\n2014-06-01 10:00:00,NA,NA,NaN\n"
    )  # (with a BOM)
    frame = FolderSource(tmp_path).extract(
        _source(code="string", count="int64", level="float64"), DayInterval(date(2014, 6, 1), "Europe/Paris")
    )
    assert frame["code"].tolist() == ["NA"]  # a string code (e.g. North America), not a null
    assert pd.isna(frame["count"][0]) and pd.isna(frame["level"][0])


@pytest.mark.parametrize(
    "values", [pd.Series([17.0, 17.5, None]), pd.Series([True, 3, "x", None], dtype=object)]
)
def test_one_key_rule_online_and_offline(values):
    assert key_strings(values).tolist() == [key_string(v) for v in values.tolist()]


def test_a_boolean_outcome_written_as_text():
    label = Label(name="y", source="s", definition="", column="v", rule="true")
    out = make_label(pd.DataFrame({"v": ["True", "no", "1", "maybe", None]}), label)
    assert out["y"].tolist() == [1, 0, 1]  # "maybe" and the null are unknown outcomes, left out


def test_a_request_time_a_dst_change_skips_is_refused():
    from datetime import datetime

    from airloop.serving.contract import _as_utc

    with pytest.raises(ValueError, match="does not exist or is ambiguous"):
        _as_utc("America/New_York")(datetime(2013, 3, 10, 2, 30))
    assert str(_as_utc("America/New_York")(datetime(2013, 7, 1, 12))) == "2013-07-01 16:00:00+00:00"


def test_naive_times_are_refused_where_the_declaration_gives_no_timezone():
    """Issue 13 finding 1: a value without an offset is never silently UTC. Without a declared timezone it
    is refused - by ingestion (a critical check naming the values) and by the request contract - and
    ``timezone="UTC"`` says naive values are UTC."""
    from datetime import datetime

    from airloop.serving.contract import _as_utc
    from airloop.validation import timestamp_checks

    values = pd.Series(["2013-01-01T10:00:00Z", "2013-01-01 05:00:00", "2013-01-01T05:00:00-05:00"])
    assert parse_timestamps(values, None).isna().tolist() == [False, True, False]
    assert str(parse_timestamps(values, "UTC")[1]) == "2013-01-01 05:00:00+00:00"
    source = Source(
        name="s",
        kind="event",
        event_timestamp="ts",
        key=["ts"],
        columns=[Column(name="ts", dtype="timestamp")],
    )
    raw = pd.DataFrame({"ts": values})
    (check,) = timestamp_checks(raw, pd.DataFrame({"ts": parse_timestamps(values, None)}), source)
    assert not check.success and check.severity == "critical"
    assert "1 of 3 rows unreadable" in check.line() and "2013-01-01 05:00:00" in check.line()
    assert "no timezone for naive values" in check.rule
    with pytest.raises(ValueError, match="no UTC offset"):
        _as_utc(None)(datetime(2013, 1, 1, 5))
    assert str(_as_utc("UTC")(datetime(2013, 1, 1, 5))) == "2013-01-01 05:00:00+00:00"
