import math

import pandas as pd
import pytest

from airloop.labels import label_status, make_label
from airloop.usecases import load_use_case

LABEL = load_use_case("flights").label


@pytest.mark.parametrize(
    "dep_time, arr_delay, status, positive",
    [
        (517.0, 11.0, "on_time", 0),
        (517.0, 15.0, "on_time", 0),  # the threshold itself is not a delay: strictly greater
        (517.0, 16.0, "delayed", 1),
        (517.0, -20.0, "on_time", 0),
        (math.nan, math.nan, "cancelled", 1),
        (517.0, math.nan, "diverted", 1),
    ],
)
def test_label_rule(dep_time, arr_delay, status, positive):
    frame = pd.DataFrame({"dep_time": [dep_time], "arr_delay": [arr_delay]})
    labelled = make_label(frame, LABEL)
    assert labelled["is_delayed_status"].iloc[0] == status
    assert labelled["is_delayed"].iloc[0] == positive


def test_no_row_is_dropped_on_real_data():
    flights = pd.read_parquet("include/data/nycflights13/flights.parquet", columns=["dep_time", "arr_delay"])
    status = label_status(flights, LABEL)
    assert len(status) == len(flights) == 336_776
    counts = status.value_counts()
    assert counts["cancelled"] == 8_255 and counts["diverted"] == 1_175
