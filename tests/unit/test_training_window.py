"""Where a training's holdout lies: the newest labelled days the champion never trained on (issue 15)."""

from __future__ import annotations

import json
from datetime import date

from airloop.training import TrainingWindow, data_end, plan_window
from airloop.usecases import load_use_case

_FLIGHTS = load_use_case("flights")
assert _FLIGHTS.model is not None
# the window arithmetic with a 150-day trailing window (flights declares 365), holdout_days 30, min 7
UC = _FLIGHTS.model_copy(update={"model": _FLIGHTS.model.model_copy(update={"train_days": 150})})
END = date(2013, 7, 8)


def test_without_a_champion_the_holdout_is_the_last_holdout_days():
    assert plan_window(UC, END, None) == TrainingWindow(date(2013, 1, 9), date(2013, 6, 8), END)


def test_a_gap_of_min_holdout_days_is_all_holdout():
    window = plan_window(UC, END, date(2013, 7, 1))
    assert window == TrainingWindow(date(2013, 2, 1), date(2013, 7, 1), END)


def test_an_old_champion_leaves_the_holdout_at_its_longest():
    assert plan_window(UC, END, date(2013, 3, 1)).holdout_start == date(2013, 6, 8)


def test_a_champion_with_the_newest_data_still_leaves_the_minimum_holdout():
    window = plan_window(UC, END, date(2013, 7, 6))
    assert window.holdout_start == date(2013, 7, 1) and window.train_start == date(2013, 2, 1)
    assert plan_window(UC, END, date(2013, 7, 6), holdout_days=3).holdout_start == date(2013, 7, 5)


def test_the_judged_network_trains_on_the_older_share_of_the_days_the_champion_never_saw():
    def share(value: float) -> object:
        return UC.with_section("model", {"judged_new_share": value})

    # 28 unseen days (06-10 .. 07-07): the judged network gets the older 14, the holdout the newer 14
    window = plan_window(share(0.5), END, date(2013, 6, 10))
    assert window == TrainingWindow(date(2013, 1, 25), date(2013, 6, 24), END)
    # at 0 the holdout is every unseen day: the judged network trains on exactly the champion's days
    assert plan_window(share(0), END, date(2013, 6, 10)).holdout_start == date(2013, 6, 10)
    # 70 unseen days: the holdout stays at most holdout_days (30), the judged network has the other 40
    assert plan_window(share(0.5), END, date(2013, 4, 29)).holdout_start == date(2013, 6, 8)
    # 10 unseen days: the holdout stays at least min_holdout_days (7)
    assert plan_window(share(0.5), END, date(2013, 6, 28)).holdout_start == date(2013, 7, 1)


def test_data_end_of_versions_before_and_after_deploy_through_newest():
    window = {"train_start": "2013-01-01", "holdout_start": "2013-06-01", "holdout_end": "2013-07-01"}
    assert data_end({"airloop.window": json.dumps(window)}) == date(2013, 6, 1)  # trained without holdout
    assert data_end({"airloop.window": json.dumps(window), "airloop.data_end": "2013-07-01"}) == date(
        2013, 7, 1
    )
    assert data_end({}) is None
