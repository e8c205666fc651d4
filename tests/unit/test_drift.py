"""The drift engine's statistics and decision policy, against scipy and plain reference implementations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from airloop.drift.engine import DriftEngine
from airloop.drift.monitor import NewData, Performance, Window, decide, live_performance, new_data
from airloop.drift.report import render_html
from airloop.drift.stats import PSI_EPSILON, NumericAccumulator, NumericReference, adjust_pvalues
from airloop.model.profile import categorical_profile, numeric_profile, reference_profile
from airloop.usecase import DriftPolicy, Thresholds

NO_FLOORS = Thresholds(ks_warn=0, ks_alert=0, psi_warn=0, psi_alert=0, null_share_warn=0, null_share_alert=0)


def _reference(values: np.ndarray) -> NumericReference:
    p = numeric_profile(pd.Series(values), sample_size=len(values))
    return NumericReference.from_sample(
        np.asarray(p["sample"]), p["edges"], p["frequencies"], p["null_share"], p["rows"]
    )


@pytest.mark.parametrize(
    "seed,n,m,discrete,chunks",
    [
        (0, 20000, 50000, False, 1),
        (1, 500, 30000, False, 7),
        (2, 3000, 800, True, 3),
        (3, 50, 40, True, 1),
        (4, 10000, 10000, False, 4),
    ],
)
def test_ks_statistic_equals_scipy(seed, n, m, discrete, chunks):
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(size=n), rng.normal(0.05 * seed, 1 + 0.1 * seed, size=m)
    if discrete:  # heavy ties
        ref, cur = np.round(ref * 2), np.round(cur * 2)
    cur[::13] = np.nan  # nulls are not part of the KS sample
    acc = NumericAccumulator(_reference(ref))
    for part in np.array_split(cur, chunks):
        acc.update(part)
    statistic, p = acc.ks()
    expected = ks_2samp(ref, cur[~np.isnan(cur)], method="asymp")
    assert abs(statistic - expected.statistic) <= 1e-9
    assert p == pytest.approx(
        expected.pvalue, rel=0.1, abs=1e-3
    )  # asymptotic Kolmogorov vs scipy's finite-n asymp
    assert acc.nulls == int(np.isnan(cur).sum())


def _plain_psi(ref: np.ndarray, cur: np.ndarray, edges: np.ndarray) -> float:
    """PSI written out: bins [e_i, e_i+1) open at both ends, shares floored at epsilon."""
    inner = edges[1:-1]
    total = 0.0
    for i in range(len(inner) + 1):
        lo = -np.inf if i == 0 else inner[i - 1]
        hi = np.inf if i == len(inner) else inner[i]
        r = max(np.mean((ref >= lo) & (ref < hi)), PSI_EPSILON)
        c = max(np.mean((cur >= lo) & (cur < hi)), PSI_EPSILON)
        total += (c - r) * np.log(c / r)
    return total


@pytest.mark.parametrize("shift,discrete", [(0.0, False), (0.5, False), (3.0, False), (0.3, True)])
def test_psi_equals_plain_implementation(shift, discrete):
    rng = np.random.default_rng(7)
    ref, cur = rng.normal(size=20000), rng.normal(shift, size=9000)
    if discrete:  # duplicate quantile edges collapse into fewer bins
        ref, cur = np.floor(ref), np.floor(cur)
    reference = _reference(ref)
    acc = NumericAccumulator(reference)
    acc.update(cur)
    assert acc.psi() == pytest.approx(_plain_psi(ref, cur, reference.edges), abs=1e-12)


def _profile(rng: np.random.Generator, n: int = 20000) -> tuple[dict, dict]:
    frame = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(5)})
    frame["carrier"] = rng.choice(["AA", "B6", "DL", "UA"], size=n, p=[0.4, 0.3, 0.2, 0.1])
    return reference_profile(frame, ["carrier"], [f"x{i}" for i in range(5)], rng.uniform(size=n)), {}


def _window(rng: np.random.Generator, n: int, shift: float = 0.0, new_category: float = 0.0) -> pd.DataFrame:
    frame = pd.DataFrame({f"x{i}": rng.normal(shift if i == 0 else 0.0, size=n) for i in range(5)})
    frame["carrier"] = rng.choice(["AA", "B6", "DL", "UA"], size=n, p=[0.4, 0.3, 0.2, 0.1])
    if new_category:
        frame.loc[rng.uniform(size=n) < new_category, "carrier"] = "ZZ"
    frame["probability"] = rng.uniform(size=n)
    return frame


def _run(profile: dict, window: pd.DataFrame, policy: DriftPolicy):
    engine = DriftEngine.from_profile(profile, threads=1)
    engine.update(window)
    results = engine.evaluate(policy)
    w = Window(None, datetime(2013, 7, 1, tzinfo=UTC), len(window))
    return results, decide(results, Performance(None, None, 0, [], None, False), w, policy, None)


def test_false_alarm_rate_of_the_decision_is_at_most_alpha():
    """No drift: windows drawn from the reference's distribution; no effect floors, so only the
    multiple-testing correction stands between 7 tests per window and a false alarm."""
    rng = np.random.default_rng(11)
    profile, _ = _profile(rng)
    policy = DriftPolicy(alpha=0.05, default=NO_FLOORS, min_rows=100)
    alarms = sum(_run(profile, _window(rng, 2000), policy)[1].retrain for _ in range(250))
    assert alarms / 250 <= policy.alpha
    uncorrected = DriftPolicy(alpha=0.05, default=NO_FLOORS, min_rows=100, correction="bonferroni")
    assert sum(_run(profile, _window(rng, 2000), uncorrected)[1].retrain for _ in range(100)) / 100 <= 0.05


def test_small_mean_shift_at_50k_rows_is_detected_but_alarms_only_above_the_floor():
    rng = np.random.default_rng(5)
    profile, _ = _profile(rng)
    window = _window(rng, 50_000, shift=0.1)
    results, decision = _run(profile, window, DriftPolicy())
    x0 = next(r for r in results if r.feature == "x0")
    assert x0.p_adjusted < 1e-6 and x0.status == "significant"  # detected ...
    assert (
        not decision.retrain and decision.status == "quiet"
    )  # ... but 0.1 sigma is below the default floors
    assert all(r.status in ("ok", "significant") for r in results if r.feature != "x0")
    tuned = DriftPolicy(overrides={"x0": Thresholds(ks_warn=0.02, ks_alert=0.03)})
    results, decision = _run(profile, window, tuned)
    assert decision.retrain and decision.alerts == ["x0"] and "x0 (KS 0.0" in decision.reason


def test_large_shift_alerts_with_default_floors():
    rng = np.random.default_rng(6)
    profile, _ = _profile(rng)
    results, decision = _run(profile, _window(rng, 5000, shift=1.0), DriftPolicy())
    assert decision.retrain and "x0" in decision.alerts
    x0 = next(r for r in results if r.feature == "x0")
    assert x0.statistic > 0.25 and x0.psi > 0.25


def test_new_category_is_detected_and_counted():
    rng = np.random.default_rng(8)
    profile, _ = _profile(rng)
    results, decision = _run(profile, _window(rng, 5000, new_category=0.1), DriftPolicy())
    carrier = next(r for r in results if r.feature == "carrier")
    assert carrier.test == "chi2" and carrier.p_adjusted < 1e-6
    assert 400 < carrier.unseen["ZZ"] < 600 and carrier.status == "alert"
    assert decision.retrain and decision.alerts == ["carrier"]


def test_null_share_change_is_an_alert():
    rng = np.random.default_rng(9)
    profile, _ = _profile(rng)
    window = _window(rng, 5000)
    window.loc[:2000, "x3"] = np.nan
    results, decision = _run(profile, window, DriftPolicy())
    x3 = next(r for r in results if r.feature == "x3")
    assert (
        x3.null_share_change == pytest.approx(2001 / 5000)
        and x3.status == "alert"
        and "null share" in x3.reasons[-1]
    )


def test_categorical_profile_treats_whole_floats_like_integers():
    assert categorical_profile(pd.Series([5.0, 5.0, 17.0, None]))["counts"] == {"5": 2, "17": 1}
    assert categorical_profile(pd.Series([5, 17, 17]))["counts"] == {"17": 2, "5": 1}


def test_pvalue_adjustment():
    p = [0.01, 0.04, 0.03, float("nan"), 0.2]
    assert adjust_pvalues(p, "bonferroni")[:3].tolist() == pytest.approx([0.04, 0.16, 0.12])
    bh = adjust_pvalues(p, "bh")
    assert bh[[0, 1, 2, 4]].tolist() == pytest.approx(
        [0.04, 0.16 / 3, 0.16 / 3, 0.2]
    )  # step-up: min over ranks >= own
    assert np.isnan(bh[3])
    with pytest.raises(ValueError, match="unknown"):
        adjust_pvalues(p, "holm")


def test_decision_min_rows_cooldown_and_performance():
    rng = np.random.default_rng(10)
    profile, _ = _profile(rng)
    engine = DriftEngine.from_profile(profile, threads=1)
    engine.update(_window(rng, 3000, shift=1.0))
    policy = DriftPolicy(min_rows=1000, cooldown_hours=24)
    results = engine.evaluate(policy)
    quiet_perf = Performance(0.7, 0.69, 2000, ["2013-07-01"], 0.01, False)
    end = datetime(2013, 7, 2, tzinfo=UTC)
    assert decide(results, quiet_perf, Window(None, end, 500), policy, None).status == "too_few_rows"
    assert decide(results, quiet_perf, Window(None, end, 3000), policy, None).retrain
    cooled = decide(results, quiet_perf, Window(None, end, 3000), policy, end - timedelta(hours=3))
    assert not cooled.retrain and cooled.status == "cooldown" and "cooldown" in cooled.reason
    assert decide(results, quiet_perf, Window(None, end, 3000), policy, end - timedelta(hours=30)).retrain
    engine = DriftEngine.from_profile(profile, threads=1)
    engine.update(_window(rng, 3000))
    calm = engine.evaluate(policy)
    worse = Performance(0.7, 0.6, 2000, ["2013-07-01"], 0.1, True)
    decision = decide(calm, worse, Window(None, end, 3000), policy, None)
    assert decision.retrain and "live ROC AUC 0.600" in decision.reason


def test_the_performance_trigger_measures_live_auc_as_declared():
    """Days whose positives are which days peak (an absolute label): each day's own ranking is a coin flip,
    the days pooled rank well - ``daily`` alerts on that champion, ``pooled`` does not."""
    from sklearn.metrics import roc_auc_score

    from airloop.model.metrics import score_histogram

    rng = np.random.default_rng(4)
    days = []
    for d, rate in enumerate([0.1, 0.8, 0.2, 0.9]):
        y = (rng.random(300) < rate).astype(int)
        p = np.clip(rate + rng.normal(0, 0.05, 300), 0.01, 0.99)  # the day's level, nothing within it
        entry = {"rows": 300, "roc_auc": float(roc_auc_score(y, p)), "scores": score_histogram(y, p)}
        days.append((f"2014-07-0{d + 1}", entry))
    policy = DriftPolicy(min_labelled_rows=1000, performance_drop=0.05)
    daily = live_performance(days, 0.8, policy, "daily")
    pooled = live_performance(days, 0.8, policy, "pooled")
    assert daily.live_auc is not None and abs(daily.live_auc - 0.5) < 0.06 and daily.alert
    assert pooled.live_auc is not None and pooled.live_auc > 0.85 and not pooled.alert
    assert pooled.labelled_rows == daily.labelled_rows == 1200 and len(pooled.days) == 4
    assert (daily.measure, pooled.measure) == ("daily", "pooled")
    # a day recorded before histograms were kept is left out of the pooled measure only
    days[0] = (days[0][0], {k: v for k, v in days[0][1].items() if k != "scores"})
    assert live_performance(days, 0.8, policy, "pooled").labelled_rows == 900
    assert live_performance(days, 0.8, policy, "daily").labelled_rows == 1200


def test_a_report_only_input_alerts_without_triggering():
    rng = np.random.default_rng(11)
    profile, _ = _profile(rng)
    engine = DriftEngine.from_profile(profile, threads=1)
    engine.update(_window(rng, 3000, shift=1.0))  # x0 moves (a season), nothing else
    end = datetime(2013, 7, 2, tzinfo=UTC)
    calm_perf = Performance(0.7, 0.69, 2000, ["2013-07-01"], 0.01, False)
    policy = DriftPolicy(min_rows=1000, report_only=["x0"])
    results = engine.evaluate(policy)
    decision = decide(results, calm_perf, Window(None, end, 3000), policy, None)
    assert not decision.retrain and decision.status == "quiet"
    assert decision.alerts == ["x0"] and "report-only alerts: x0" in decision.reason  # still reported
    worse = Performance(0.7, 0.6, 2000, ["2013-07-01"], 0.1, True)  # the performance trigger still fires
    decision = decide(results, worse, Window(None, end, 3000), policy, None)
    assert decision.retrain and "live ROC AUC" in decision.reason and "drift in" not in decision.reason
    assert decide(results, calm_perf, Window(None, end, 3000), DriftPolicy(min_rows=1000), None).retrain


def test_drift_waits_for_enough_new_data_to_act_on():
    """``min_new_share``: drift (or a performance drop) triggers a retrain only once the events since the
    champion's data end reach that share of the rows it was fit on; before, it is reported and waits."""
    rng = np.random.default_rng(13)
    profile, _ = _profile(rng)
    engine = DriftEngine.from_profile(profile, threads=1)
    engine.update(_window(rng, 3000, shift=1.0))
    policy = DriftPolicy(min_rows=1000, min_new_share=0.15)
    results = engine.evaluate(policy)
    calm = Performance(0.7, 0.69, 2000, ["2013-07-01"], 0.01, False)
    end = datetime(2013, 7, 8, tzinfo=UTC)
    window = Window(None, end, 3000)
    waits = decide(results, calm, window, policy, None, NewData(14_000, 100_000, "2013-07-01"))
    assert not waits.retrain and waits.status == "too_little_new_data"
    assert waits.reason.startswith("drift in x0") and waits.alerts  # the evidence is still reported
    assert "14000 events since 2013-07-01 (the newest data the champion or the last triggered retrain " in (
        waits.reason
    )
    assert "are 14.0% of the 100000 the champion was fit on, below min_new_share 15%" in waits.reason
    assert decide(results, calm, window, policy, None, NewData(15_000, 100_000, "2013-07-01")).retrain
    worse = Performance(0.7, 0.6, 2000, ["2013-07-01"], 0.1, True)  # a performance drop waits too
    assert decide(results, worse, window, policy, None, NewData(100, 100_000, "2013-07-01")).status == (
        "too_little_new_data"
    )
    # unknown fit rows (a champion registered before the tag), no count, or the default policy: not checked
    assert decide(results, calm, window, policy, None, NewData(100, None, None)).retrain
    assert decide(results, calm, window, policy, None).retrain
    assert decide(results, calm, window, DriftPolicy(min_rows=1000), None, NewData(1, 10**6, None)).retrain
    cooled = decide(results, calm, window, policy, end - timedelta(hours=1), NewData(1, 10**6, None))
    assert cooled.status == "cooldown"  # the cooldown is said first


def test_new_data_counts_the_validated_events_from_the_champions_data_end(tmp_path):
    from datetime import date

    from airloop.lake import Lake, write_json
    from airloop.usecases import load_use_case

    lake, flights = Lake(tmp_path), load_use_case("flights")
    for day, rows in (("2013-06-29", 900), ("2013-06-30", 800), ("2013-07-01", 700), ("2013-07-02", 600)):
        write_json(lake.manifest_path(day), {"rows": {"flights": rows, "weather": 72}})
    fresh = new_data(lake, flights, date(2013, 6, 30), 10_000)
    assert (fresh.rows, fresh.fit_rows, fresh.since, fresh.share) == (2100, 10_000, "2013-06-30", 0.21)
    assert new_data(lake, flights, date(2013, 7, 3), 10_000).rows == 0
    assert new_data(lake, flights, None, None).share is None
    # a retrain triggered with the data through 2013-07-01 (the gate kept it out, or the shadow judge put
    # the champion back): the new data counts from its data end, not the older champion's
    for until, retrain in (("2013-07-01T20:00:00+00:00", False), ("2013-07-02T09:00:00+00:00", True)):
        write_json(
            lake.root / "monitoring" / "drift" / "checks" / until[:13] / "summary.json",
            {
                "window": {"until": until},
                "decision": {"retrain": retrain},
                "latest_validated_day": "2013-07-01",
            },
        )
    tried = new_data(lake, flights, date(2013, 6, 30), 10_000)
    assert (tried.rows, tried.since) == (600, "2013-07-02")
    assert new_data(lake, flights, date(2013, 7, 3), 10_000).since == "2013-07-03"  # a newer champion


def test_a_cyclic_input_is_judged_only_over_a_whole_cycle():
    """Three weekdays against a reference of all seven differ by construction: with ``cycles`` the input
    is reported ``partial_cycle`` (left out of the family, never an alert) until the window spans its
    cycle; then a real shift of it alerts as before."""
    rng = np.random.default_rng(12)
    profile, _ = _profile(rng)
    window = _window(rng, 3000)
    window["carrier"] = rng.choice(["AA", "B6"], size=3000)  # only part of the cycle's categories
    policy = DriftPolicy(min_rows=100, cycles={"carrier": 168})
    engine = DriftEngine.from_profile(profile, threads=1)
    engine.update(window)
    plain = {r.feature: r for r in engine.evaluate(DriftPolicy(min_rows=100))}
    assert plain["carrier"].status == "alert"  # what a 3-day window did to `weekday`
    short = {r.feature: r for r in engine.evaluate(policy, span_hours=72)}
    assert (
        short["carrier"].status == "partial_cycle"
        and "72 h of its 168 h cycle" in short["carrier"].reasons[0]
    )
    end = datetime(2013, 7, 1, tzinfo=UTC)
    quiet = decide(
        list(short.values()),
        Performance(None, None, 0, [], None, False),
        Window(None, end, 3000),
        policy,
        None,
    )
    assert not quiet.retrain and "carrier" not in quiet.alerts
    whole = {r.feature: r for r in engine.evaluate(policy, span_hours=162)}  # 0.9 of the cycle: judged
    assert whole["carrier"].status == "alert"
    assert {r.feature: r.status for r in engine.evaluate(policy)}["carrier"] == "alert"  # span unknown


def _readings(rng, hours: int, busy_warm: bool) -> pd.DataFrame:
    """Events copying one hourly reading each (``temp`` per ``(origin, hour)``), and a per-event input.
    ``busy_warm``: warm hours get many more events than cold ones (traffic follows the daytime), so
    the copies weigh warm readings more although the readings come from the same distribution."""
    readings = pd.DataFrame(
        {
            "origin": np.repeat(["EWR", "JFK", "LGA"], hours),
            "hour": np.tile(np.arange(hours), 3),
            "temp": rng.normal(15, 8, 3 * hours),
        }
    )
    if busy_warm:
        copies = np.where(readings.temp > 15, 12, 2)
    else:
        copies = np.full(len(readings), 7)
    events = readings.loc[readings.index.repeat(copies)].reset_index(drop=True)
    events["x"] = rng.normal(0, 1, len(events))
    return events


def test_shared_inputs_are_tested_on_their_distinct_observations():
    """A reading copied to every event of its hour: counted per row, a window whose busy hours are the
    warm ones alerts on ``temp`` although its readings come from the reference's distribution; tested on
    distinct readings (profile and window deduplicated alike, across chunks) it does not, while a real
    shift of the readings still alerts; ``min_rows`` applies to the window's rows."""
    rng = np.random.default_rng(21)
    train = _readings(rng, 700, busy_warm=False)
    scores = rng.uniform(0, 1, len(train))
    per_row = reference_profile(train, [], ["temp", "x"], scores)
    shared = reference_profile(train, [], ["temp", "x"], scores, {"temp": ["origin", "hour"]})
    assert shared["numeric"]["temp"]["rows"] == 2100 and shared["numeric"]["x"]["rows"] == len(train)
    assert shared["shared"] == {"temp": ["origin", "hour"]} and per_row["shared"] == {}
    policy = DriftPolicy(min_rows=1000, prediction=False)

    def check(profile, window, chunks=3):
        engine = DriftEngine.from_profile(profile, prediction=False, threads=1)
        for bounds in np.array_split(np.arange(len(window)), chunks):
            engine.update(window.iloc[bounds].reset_index(drop=True))
        return {r.feature: r for r in engine.evaluate(policy)}, engine

    live = _readings(rng, 168, busy_warm=True)
    counted, _ = check(per_row, live)
    assert counted["temp"].status == "alert"  # the copies, not the weather
    distinct, engine = check(shared, live)
    assert distinct["temp"].rows == 3 * 168 and distinct["temp"].status in ("ok", "significant")
    assert distinct["x"].rows == len(live) == engine.rows
    assert engine.columns[-2:] == ["origin", "hour"]
    hot = live.assign(temp=live.temp + 8)
    assert check(shared, hot)[0]["temp"].status == "alert"  # a real shift of the readings
    # a window of 504 readings but under min_rows events is too small, however it is deduplicated
    assert check(shared, live.head(900), chunks=2)[0]["temp"].status == "too_few_rows"


def test_report_has_table_and_overlays():
    rng = np.random.default_rng(12)
    profile, _ = _profile(rng)
    results, decision = _run(profile, _window(rng, 3000, shift=1.0, new_category=0.05), DriftPolicy())
    summary = {
        "window": {"id": "w1", "after": None, "until": "2013-07-01", "rows": 3000},
        "model": "m",
        "champion_version": "1",
        "policy": DriftPolicy().model_dump(),
        "decision": decision.__dict__,
        "performance": Performance(None, None, 0, [], None, False).as_dict(),
        "features": [r.as_dict() for r in results],
    }
    page = render_html(summary)
    assert page.count("<tr>") == len(results) + 1 and "sortTable" in page
    assert page.count("<polyline") == 2 * 6 and "ZZ (" in page and "Decision: retrain" in page
    assert "New data" not in page  # a check written before new_data was recorded
    summary["new_data"] = NewData(20_000, 100_000, "2013-06-30").as_dict()
    page = render_html(summary)
    assert "New data: 20000 events since 2013-06-30 (the newest data" in page
    assert "20.0% of the 100000 the champion was fit on (min_new_share 0%)" in page


def test_float32_windows_give_the_same_statistics():
    rng = np.random.default_rng(3)
    ref = rng.normal(size=5000).astype("float32").astype("float64")
    cur = rng.normal(0.2, size=20000).astype("float32")
    a, b = NumericAccumulator(_reference(ref)), NumericAccumulator(_reference(ref))
    a.update(cur)
    b.update(cur.astype("float64"))
    assert a.ks() == b.ks() and a.psi() == b.psi()
    assert abs(a.ks()[0] - ks_2samp(ref, cur.astype("float64")).statistic) <= 1e-9
