"""The model library: preprocessing, network, determinism, the gate, behaviour tests, leakage guard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from airloop.model.baseline import Baseline
from airloop.model.behaviour import BehaviourResult, directional, invariance, minimum_functionality
from airloop.model.gate import decide
from airloop.model.metrics import (
    bootstrap_auc_difference,
    daily_roc_auc,
    histogram_roc_auc,
    live_roc_auc,
    score_histogram,
    scores,
)
from airloop.model.net import TabularNet
from airloop.model.preprocess import Preprocessor
from airloop.model.profile import numeric_profile
from airloop.model.train import TrainedModel, fit_recipe, recency_weights, time_split, train
from airloop.usecase import ModelSpec
from airloop.usecases import load_use_case

UC = load_use_case("flights")
SPEC = ModelSpec(
    categorical=["c"], numeric=["x", "rain"], monotone_increasing=["rain"], min_auc=0.6, tolerance=0.01
)


def synthetic(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "c": rng.choice(["AA", "UA", "DL"], n),
            "x": rng.normal(size=n),
            "rain": rng.exponential(0.1, n),
            "flight": rng.integers(1, 5000, n),
            "event_timestamp": pd.date_range("2013-01-01", periods=n, freq="min", tz="UTC"),
        }
    )
    logit = 1.5 * frame.x + 3 * frame.rain + (frame.c == "AA") * 0.8 - 0.5
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def test_preprocessing_identical_at_fit_and_serve_time():
    frame = synthetic()
    pre = Preprocessor(["c"], ["x", "rain"], ["rain"]).fit(frame)
    restored = Preprocessor.from_json(pre.to_json())
    for a, b in zip(pre.transform(frame.head(50)), restored.transform(frame.head(50)), strict=True):
        np.testing.assert_array_equal(a, b)
    one_by_one = [restored.transform(frame.iloc[[i]])[1][0] for i in range(5)]
    np.testing.assert_array_equal(np.vstack(one_by_one), pre.transform(frame.head(5))[1])
    cats, dense, mono = pre.transform(pd.DataFrame({"c": ["ZZ"], "x": [None], "rain": [0.1]}))
    assert cats[0, 0] == 0 and dense[0, 0] == 0.0  # unseen category -> 0, missing -> mean


def test_piecewise_linear_encoding():
    """PLE: quantile edges fitted on the training rows; per bin 0 below, 1 above, linear inside (values
    beyond the training range saturate); monotone inputs stay standardized; the JSON round trip and the
    array scorer's path give the same matrix; a network trains on it."""
    frame = synthetic()
    frame["flag"] = (frame.x > 1).astype(int)  # a binary input: one bin
    pre = Preprocessor(["c"], ["x", "flag", "rain"], ["rain"], ple_bins=8).fit(frame)
    edges = np.asarray(pre.edges["x"])
    np.testing.assert_allclose(edges, np.quantile(frame.x, np.linspace(0, 1, 9)))
    assert len(pre.edges["flag"]) == 2 and pre.dense_width == 8 + 1 and "rain" not in pre.edges
    probe = pd.DataFrame(
        {
            "c": ["AA"] * 4,
            "x": [edges[0] - 5, (edges[3] + edges[4]) / 2, edges[-1] + 5, None],
            "flag": [0, 1, 1, 0],
            "rain": [0.0, 0.1, 0.2, 0.3],
        }
    )
    cats, dense, mono = pre.transform(probe)
    assert dense.shape == (4, 9) and dense.dtype == np.float32
    assert pre.transform(probe.head(0))[1].shape == (0, 9)  # (the service warms its scorer on no rows)
    np.testing.assert_array_equal(dense[0, :8], np.zeros(8))  # below the training range: every bin 0
    np.testing.assert_array_equal(dense[2, :8], np.ones(8))  # above it: every bin 1 (saturates)
    np.testing.assert_allclose(dense[1, :8], [1, 1, 1, 0.5, 0, 0, 0, 0], atol=1e-6)
    assert list(dense[:, 8]) == [0, 1, 1, 0]
    missing = pre.transform(probe.assign(x=frame.x.mean()).iloc[[3]])[1]
    np.testing.assert_array_equal(dense[3], missing[0])  # missing -> the training mean, then encoded
    assert mono[1, 0] == pytest.approx((0.1 - pre.mean["rain"]) / pre.std["rain"], rel=1e-6)
    restored = Preprocessor.from_json(pre.to_json())
    for a, b in zip(pre.transform(frame), restored.transform(frame), strict=True):
        np.testing.assert_array_equal(a, b)
    values = frame[pre.dense].astype("float64").fillna(pd.Series(pre.mean)).to_numpy()
    np.testing.assert_array_equal(pre.encode_dense(values), pre.transform(frame)[1])
    # the encoding by its definition, bin by bin, on values that include every edge exactly
    probes = np.concatenate([values[:200, 0], edges, edges[[0, -1]] + [-1, 1]])
    expected = np.clip((probes[:, None] - edges[:-1]) / np.diff(edges), 0, 1).astype(np.float32)
    got = pre.encode_dense(np.column_stack([probes, np.zeros(len(probes))]))[:, :8]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert pre.standardized().dense_width == 2 and pre.standardized().transform(frame)[1].shape == (
        len(frame),
        2,
    )
    fit, valid = time_split(frame, "event_timestamp", 0.2)
    hp = {"epochs": 3, "seed": 7, "batch_size": 256, "ple_bins": 8}
    model = train(fit, valid, "y", ["c"], ["x", "rain"], ["rain"], hp, device="cpu")
    assert model.pre.ple_bins == 8 and scores(valid.y.to_numpy(), model.predict_proba(valid))["roc_auc"] > 0.7


def test_missing_input_column_is_a_clear_error():
    pre = Preprocessor(["c"], ["x", "rain"], ["rain"]).fit(synthetic())
    with pytest.raises(KeyError, match="lacks columns"):
        pre.transform(pd.DataFrame({"c": ["AA"]}))


def test_forward_backward_on_a_tiny_batch():
    net = TabularNet([4], n_dense=1, n_monotone=1)
    cats, dense, mono = torch.tensor([[1], [2]]), torch.randn(2, 1), torch.rand(2, 1)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        net(cats, dense, mono), torch.tensor([0.0, 1.0])
    )
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())


def test_training_and_scoring_paths_compute_the_same_function():
    """Training splits the first layer in two products (no input gradient for the dense block); scoring
    uses one product on the concatenation: the same network either way."""
    torch.manual_seed(0)
    net = TabularNet([4, 3], n_dense=30, n_monotone=1).eval()
    cats = torch.randint(0, 3, (64, 2))
    dense, mono = torch.rand(64, 30), torch.rand(64, 1)
    with torch.no_grad():
        scoring = net(cats, dense, mono)
    training = net(cats, dense, mono)  # grad enabled: the split path
    assert training.requires_grad
    torch.testing.assert_close(training.detach(), scoring, rtol=1e-5, atol=1e-5)


def test_monotone_input_never_lowers_the_risk():
    net = TabularNet([4], n_dense=1, n_monotone=1).eval()  # eval: no dropout noise between the two calls
    with torch.no_grad():
        net.monotone_weight.fill_(-3.0)  # even a negative raw weight gives a positive softplus slope
        low = net(torch.tensor([[1]]), torch.zeros(1, 1), torch.zeros(1, 1))
        high = net(torch.tensor([[1]]), torch.zeros(1, 1), torch.ones(1, 1))
    assert high.item() >= low.item()


def test_same_seed_same_metrics():
    frame = synthetic()
    fit, valid = time_split(frame, "event_timestamp", 0.2)
    hp = {"epochs": 3, "seed": 7, "batch_size": 256}
    runs = [train(fit, valid, "y", ["c"], ["x", "rain"], ["rain"], hp, device="cpu") for _ in range(2)]
    np.testing.assert_array_equal(runs[0].predict_proba(valid), runs[1].predict_proba(valid))
    assert runs[0].history == runs[1].history
    assert scores(valid.y.to_numpy(), runs[0].predict_proba(valid))["roc_auc"] > 0.7


def test_refit_trains_on_every_row_for_the_chosen_epochs():
    """The recipe: early stopping on the newest 20% picks epochs and threshold; the refit then sees all rows
    (its preprocessing too) for exactly that many epochs and is a different, deterministic network."""
    frame = synthetic()
    hp = {"epochs": 6, "seed": 7, "batch_size": 256, "patience": 2}
    args = ("event_timestamp", "y", ["c"], ["x", "rain"], ["rain"], hp, 0.2)
    fit, valid = time_split(frame, "event_timestamp", 0.2)
    early = train(fit, valid, "y", ["c"], ["x", "rain"], ["rain"], hp, device="cpu")
    refit = fit_recipe(frame, *args, refit=True, device="cpu")
    assert early.rows == len(fit) and refit.rows == len(frame)
    assert 1 <= early.best_epochs <= 6 and refit.best_epochs == early.best_epochs
    assert refit.threshold == early.threshold and refit.history == early.history
    assert refit.pre.mean["x"] == pytest.approx(frame.x.mean(), rel=1e-6)  # fit on all rows
    assert not np.allclose(refit.predict_proba(valid), early.predict_proba(valid))
    again = fit_recipe(frame, *args, refit=True, device="cpu")
    np.testing.assert_array_equal(again.predict_proba(valid), refit.predict_proba(valid))
    kept = fit_recipe(frame, *args, refit=False, device="cpu")
    np.testing.assert_array_equal(kept.predict_proba(valid), early.predict_proba(valid))


def test_recency_weights_halve_per_half_life():
    times = pd.Series(pd.to_datetime(["2013-03-01", "2013-02-19", "2013-02-09", "2013-03-01"], utc=True))
    w = recency_weights(times, 10.0)
    assert w is not None and w.mean() == pytest.approx(1.0)
    assert w[1] / w[0] == pytest.approx(0.5) and w[2] / w[0] == pytest.approx(0.25) and w[3] == w[0]
    shifted = recency_weights(times + pd.Timedelta(days=30), 10.0)
    np.testing.assert_allclose(shifted, w)  # only ages count
    assert recency_weights(times, 0) is None


def shifting(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """100 days: the first 70 the risk rises with x, the last 30 it falls with x."""
    frame = synthetic(n, seed)
    frame["event_timestamp"] = pd.date_range("2013-01-01", "2013-04-10", periods=n, tz="UTC")
    new = frame.event_timestamp >= pd.Timestamp("2013-03-12", tz="UTC")
    sign = np.where(new, -1.0, 1.0)
    rng = np.random.default_rng(seed + 1)
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-2.5 * sign * frame.x))).astype(int)
    return frame


def test_recency_weighting_follows_the_newest_days():
    """With a short half-life the network and the baseline learn the newest regime; alike weights learn the
    older majority (the case a trailing window would cut away, kept here with less weight)."""
    frame = shifting()
    newest = shifting(2000, seed=5).iloc[-600:]  # the new regime, rows never trained on
    y = newest.y.to_numpy()
    auc = {}
    for half_life in (0, 5):
        hp = {"epochs": 4, "seed": 7, "batch_size": 256, "recency_half_life_days": half_life}
        model = fit_recipe(
            frame, "event_timestamp", "y", ["c"], ["x", "rain"], ["rain"], hp, 0.1, device="cpu"
        )
        weights = recency_weights(frame.event_timestamp, half_life)
        baseline = Baseline(model.pre).fit(frame, "y", weights)
        auc[half_life] = (
            roc_auc_score(y, model.predict_proba(newest)),
            roc_auc_score(y, baseline.predict_proba(newest)),
        )
    assert auc[0][0] < 0.5 and auc[0][1] < 0.5
    assert auc[5][0] > 0.7 and auc[5][1] > 0.7


def test_the_refit_trains_at_least_min_epochs():
    """``min_epochs`` floors the epoch count early stopping hands to the refit (never above ``epochs``);
    early stopping itself, its kept state and threshold, are unchanged."""
    frame = synthetic()
    fit, valid = time_split(frame, "event_timestamp", 0.2)
    hp = {"epochs": 6, "seed": 7, "batch_size": 256, "patience": 1}
    early = train(fit, valid, "y", ["c"], ["x", "rain"], ["rain"], hp, device="cpu")
    assert early.best_epochs < 5  # the floor below lies above what early stopping chose

    def recipe(min_epochs: int) -> TrainedModel:
        return fit_recipe(
            frame,
            "event_timestamp",
            "y",
            ["c"],
            ["x", "rain"],
            ["rain"],
            {**hp, "min_epochs": min_epochs},
            0.2,
            device="cpu",
        )

    floored = recipe(5)
    assert floored.best_epochs == 5 and len(floored.history) == len(early.history)
    assert floored.threshold == early.threshold
    assert recipe(1).best_epochs == early.best_epochs  # a floor below the choice changes nothing
    assert recipe(99).best_epochs == 6  # capped at epochs


@pytest.mark.parametrize(
    ("flavor", "pickled"),
    [
        ({"loader_module": "mlflow.pyfunc.model", "python_model": "python_model.pkl"}, True),  # before
        (
            {"loader_module": "mlflow.pyfunc.loaders.code_model", "model_code_path": "/m/logged_model.py"},
            False,
        ),
        ({"model_code_path": "/m/logged_model.py", "python_model": "python_model.pkl"}, True),  # both: no
        ({"loader_module": "mlflow.pyfunc.model"}, True),  # neither: not a model from code
    ],
)
def test_pickled_pyfunc_flavors_are_told_from_models_from_code(flavor, pickled):
    """The check ``RegisteredModel`` makes on a version's MLmodel before anything is loaded."""
    from airloop.model.pyfunc import DelayModel, TabularModel, is_pickled

    assert is_pickled(flavor) is pickled
    assert DelayModel is TabularModel  # the name versions registered before the rename unpickle by


def test_time_split_is_ordered():
    frame = synthetic().sample(frac=1, random_state=1)
    fit, valid = time_split(frame, "event_timestamp", 0.25)
    assert fit.event_timestamp.max() < valid.event_timestamp.min() and len(valid) == 750


PASS = [BehaviourResult("x", True, "")]


@pytest.mark.parametrize(
    "challenger, champion, ci, behaviour, verdict, promote",
    [
        (0.75, None, None, PASS, "first_champion", True),
        (0.55, None, None, PASS, "below_minimum", False),
        (0.58, 0.65, (-0.07, -0.09, -0.05), PASS, "below_minimum", False),
        # hard days: the champion is below the floor on the same holdout too, so the comparison decides
        (0.59, 0.585, (0.005, -0.004, 0.014), PASS, "within_tolerance", True),
        (0.55, 0.59, (-0.04, -0.06, -0.02), PASS, "worse", False),
        (0.80, 0.75, (0.05, 0.03, 0.07), PASS, "better", True),
        (0.75, 0.75, (0.0, -0.008, 0.008), PASS, "within_tolerance", True),
        (0.70, 0.75, (-0.05, -0.07, -0.03), PASS, "worse", False),
        # reaches below the tolerance and above 0: kept unless the spec promotes the newer days
        (0.74, 0.75, (-0.01, -0.024, +0.007), PASS, "inconclusive", False),
        # worse with confidence: the upper bound is below 0
        (0.74, 0.75, (-0.012, -0.02, -0.001), PASS, "worse", False),
        (
            0.80,
            0.75,
            (0.05, 0.03, 0.07),
            [BehaviourResult("directional:rain", False, "drop")],
            "failed_behaviour",
            False,
        ),
    ],
)
def test_gate_decisions(challenger, champion, ci, behaviour, verdict, promote):
    decision = decide(challenger, champion, ci, behaviour, SPEC)
    assert (decision.verdict, decision.promote) == (verdict, promote)
    assert decision.reason


def test_an_inconclusive_challenger_is_promoted_when_the_spec_says_so():
    spec = SPEC.model_copy(update={"promote_inconclusive": True})
    decision = decide(0.74, 0.75, (-0.01, -0.024, +0.007), PASS, spec)
    assert (decision.verdict, decision.promote) == ("inconclusive", True)
    assert "promoted: it has the newer days" in decision.reason
    assert decide(0.70, 0.75, (-0.05, -0.07, -0.03), PASS, spec).promote is False  # worse stays worse


def test_bootstrap_difference_brackets_the_estimate():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    good, noisy = y + rng.normal(0, 0.5, 2000), y + rng.normal(0, 2.0, 2000)
    est, low, high = bootstrap_auc_difference(y, good, noisy, samples=100)
    assert low <= est <= high and low > 0
    est, low, high = bootstrap_auc_difference(y, good, good, samples=50)
    assert est == low == high == 0.0


def test_bootstrap_over_days_is_wider_when_days_disagree():
    """Rows of a day are not independent: when which version wins depends on the day (its weather),
    resampling whole days gives the honest, wider interval; a row bootstrap is overconfident."""
    rng = np.random.default_rng(1)
    days = np.repeat(np.arange(4), 800)
    y = rng.integers(0, 2, len(days))
    better_today = np.where(days % 2 == 0, 0.4, 2.0)  # the new version is sharp on even days only
    p_new = y + rng.normal(0, 1, len(y)) * better_today
    p_old = y + rng.normal(0, 1.1, len(y))
    _, row_low, row_high = bootstrap_auc_difference(y, p_new, p_old, samples=200)
    est, day_low, day_high = bootstrap_auc_difference(y, p_new, p_old, samples=200, groups=days)
    assert day_low <= est <= day_high
    assert day_high - day_low > 2 * (row_high - row_low)


def test_score_histograms_of_days_sum_to_their_pooled_roc_auc():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 9000)
    p = 1 / (1 + np.exp(-(rng.normal(0, 1.5, 9000) + 0.8 * y - 1)))
    days = np.repeat(np.arange(9), 1000)
    per_day = [score_histogram(y[days == d], p[days == d]) for d in range(9)]
    pooled = roc_auc_score(y, p)
    assert histogram_roc_auc(per_day) == pytest.approx(pooled, abs=1e-4)
    assert live_roc_auc(y, p, days, "pooled") == pytest.approx(pooled)
    assert live_roc_auc(y, p, days, "daily") == pytest.approx(daily_roc_auc(y, p, days))
    # extreme scores keep their ranks (log-odds bins), ties count half, one class has no AUC
    assert histogram_roc_auc([score_histogram(np.array([0, 1]), np.array([1e-4, 2e-4]))]) == 1.0
    assert histogram_roc_auc([score_histogram(np.array([0, 1]), np.array([0.5, 0.5]))]) == 0.5
    assert histogram_roc_auc([score_histogram(np.array([1, 0]), np.array([1 - 1e-6, 1 - 1e-5]))]) == 1.0
    with pytest.raises(ValueError, match="live measure"):
        live_roc_auc(y, p, days, "weekly")
    assert histogram_roc_auc([score_histogram(np.zeros(5), p[:5])]) is None
    with pytest.raises(ValueError, match="binned"):
        histogram_roc_auc([{**per_day[0], "size": 10}])


def test_daily_roc_auc_ranks_within_days_only():
    """A score that only knows which day is stormy ranks the pooled rows well and each day's not at all:
    the daily measure (``live_measure`` daily, flights') gives it 0.5, pooled ROC AUC much more."""
    rng = np.random.default_rng(2)
    days = np.repeat(np.arange(6), 500)
    stormy = days % 2 == 0
    y = (rng.random(len(days)) < np.where(stormy, 0.6, 0.1)).astype(int)
    day_level = np.where(stormy, 0.6, 0.1) + rng.normal(0, 1e-6, len(days))  # no ranking inside a day
    assert roc_auc_score(y, day_level) > 0.7
    assert abs(daily_roc_auc(y, day_level, days) - 0.5) < 0.05
    sharp = y + rng.normal(0, 0.5, len(days))
    per_day = [(roc_auc_score(y[days == d], sharp[days == d]), (days == d).sum()) for d in range(6)]
    assert daily_roc_auc(y, sharp, days) == pytest.approx(sum(a * n for a, n in per_day) / len(days))
    one_class = np.where(days == 0, 1, y)  # a day with one outcome only is left out
    kept = days != 0
    assert daily_roc_auc(one_class, sharp, days) == pytest.approx(
        daily_roc_auc(y[kept], sharp[kept], days[kept])
    )
    assert daily_roc_auc(np.ones(10, int), np.zeros(10), np.zeros(10)) is None


def test_behaviour_tests_catch_bad_models():
    rows = synthetic(50)
    ignores = invariance(lambda f: f.x.to_numpy(), rows, "flight")
    uses_flight = invariance(lambda f: f.flight.to_numpy() / 5000.0, rows, "flight")
    assert ignores.passed and not uses_flight.passed
    assert not directional(lambda f: -f.rain.to_numpy(), rows, "rain", 0.5).passed
    assert directional(lambda f: f.rain.to_numpy(), rows, "rain", 0.5).passed
    check = minimum_functionality(lambda f: f.x.to_numpy(), rows, {"x": -2.0}, {"x": 2.0})
    assert (
        check.passed
        and not minimum_functionality(lambda f: -f.x.to_numpy(), rows, {"x": -2.0}, {"x": 2.0}).passed
    )


def test_leakage_guard_declared_inputs():
    spec = UC.model
    inputs = set(spec.categorical) | set(spec.numeric)
    assert not inputs & set(UC.forbidden_inputs)
    data = UC.model_dump()
    data["model"]["numeric"] = [*data["model"]["numeric"], "arr_delay"]
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="forbidden"):
        type(UC).model_validate(data)


def test_numeric_profile_edges_and_frequencies():
    profile = numeric_profile(pd.Series([1.0, 1.0, 1.0, 2.0, None]), bins=4)
    assert profile["edges"] == [1.0, 1.25, 2.0]  # duplicate quantile edges collapse
    assert profile["frequencies"] == [0.75, 0.25] and profile["null_share"] == 0.2
    assert profile["sample"] == [1.0, 1.0, 1.0, 2.0]
