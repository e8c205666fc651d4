import pandas as pd
import pytest

from airloop.feedback import day_metrics, without_histograms
from airloop.model.metrics import histogram_roc_auc
from airloop.usecases import load_use_case

UC = load_use_case("flights")
KEY = {"year": 2013, "month": 1, "day": 5, "origin": "JFK", "carrier": "AA"}


def test_served_predictions_joined_to_outcomes_by_flight_key():
    served = pd.DataFrame(
        [
            {
                **KEY,
                "flight": 1,
                "probability": 0.9,
                "label": 1,
                "model_version": "1",
                "served_at": pd.Timestamp("2013-01-05T10:00Z"),
            },
            {
                **KEY,
                "flight": 2,
                "probability": 0.1,
                "label": 0,
                "model_version": "1",
                "served_at": pd.Timestamp("2013-01-05T10:00Z"),
            },
            {
                **KEY,
                "flight": 3,
                "probability": 0.7,
                "label": 1,
                "model_version": "1",
                "served_at": pd.Timestamp("2013-01-05T10:00Z"),
            },
            {
                **KEY,
                "flight": 3,
                "probability": 0.2,
                "label": 0,
                "model_version": "2",
                "served_at": pd.Timestamp("2013-01-05T11:00Z"),
            },
            {
                **KEY,
                "flight": 9,
                "probability": 0.5,
                "label": 1,
                "model_version": "2",
                "served_at": pd.Timestamp("2013-01-05T11:00Z"),
            },
        ]
    )
    outcomes = pd.DataFrame(
        [
            {**KEY, "flight": 1, "dep_time": 900.0, "arr_delay": 60.0},  # delayed
            {**KEY, "flight": 2, "dep_time": 900.0, "arr_delay": 0.0},  # on time
            {**KEY, "flight": 3, "dep_time": None, "arr_delay": None},  # cancelled -> positive
        ]
    )
    m = day_metrics(served, outcomes, UC)
    assert (
        m["served"] == 4 and m["with_outcome"] == 3
    )  # flight 9 has no outcome; flight 3 counted once (latest)
    summary = without_histograms(m)["by_version"]
    assert summary["1"] == {"rows": 2, "accuracy": 1.0, "roc_auc": 1.0, "positive_rate": 0.5}
    # the file keeps each version's score histogram: a positive (0.9) and a negative (0.1)
    scores = m["by_version"]["1"]["scores"]
    assert sum(scores["positives"]) == 1 and sum(scores["negatives"]) == 1
    assert histogram_roc_auc([scores]) == 1.0
    assert m["by_version"]["2"]["rows"] == 1 and m["by_version"]["2"]["accuracy"] == 0.0
    assert m["by_version"]["2"]["roc_auc"] is None  # one class only: undefined, not invented


def test_rows_a_shadow_scored_give_both_versions_metrics_on_the_same_events():
    served = pd.DataFrame(
        [
            {
                **KEY,
                "flight": f,
                "probability": p,
                "label": int(p >= 0.5),
                "model_version": "2",
                "served_at": pd.Timestamp("2013-01-05T10:00Z"),
                "shadow_version": shadow,
                "shadow_probability": sp,
                "shadow_label": float(sp >= 0.5) if sp == sp else float("nan"),
            }
            for f, p, shadow, sp in [
                (1, 0.9, "1", 0.2),
                (2, 0.1, "1", 0.6),
                (3, 0.8, "1", 0.7),
                (4, 0.3, None, float("nan")),  # served before the shadow was loaded
            ]
        ]
    )
    outcomes = pd.DataFrame(
        [
            {**KEY, "flight": 1, "dep_time": 900.0, "arr_delay": 60.0},  # delayed
            {**KEY, "flight": 2, "dep_time": 900.0, "arr_delay": 0.0},  # on time
            {**KEY, "flight": 3, "dep_time": 900.0, "arr_delay": 45.0},  # delayed
            {**KEY, "flight": 4, "dep_time": 900.0, "arr_delay": 0.0},
        ]
    )
    m = day_metrics(served, outcomes, UC)
    assert m["by_version"]["2"]["rows"] == 4  # the answers: every row, by the champion
    (pair,) = m["shadow"]
    assert pair["champion"] == "2" and pair["shadow"] == "1" and pair["rows"] == 3
    assert pair["champion_metrics"]["roc_auc"] == 1.0 and pair["champion_metrics"]["accuracy"] == 1.0
    assert pair["shadow_metrics"]["roc_auc"] == 0.5 and pair["shadow_metrics"]["accuracy"] == pytest.approx(
        1 / 3
    )
    assert "scores" in m["by_version"]["2"] and "scores" not in without_histograms(m)["by_version"]["2"]
    assert "scores" not in pair["shadow_metrics"]  # the pair's evidence is kept as rows (shadow parquet)
    assert "shadow" not in day_metrics(served.drop(columns=["shadow_version"]), outcomes, UC)
