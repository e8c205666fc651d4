"""Evaluation metrics of a probabilistic classifier: pure functions of labels and scores."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision), log loss, Brier score, base rate. ``p`` are probabilities."""
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "positive_rate": float(np.mean(y)),
        "rows": float(len(y)),
    }


def daily_roc_auc(y: np.ndarray, p: np.ndarray, days: np.ndarray) -> float | None:
    """ROC AUC day by day (``ModelSpec.live_measure`` ``daily``; see ``live_roc_auc``): each day's own (days
    with both outcomes), averaged over the days weighted by their rows (None: no such day). Pooled over
    days, ROC AUC also ranks one day's events against another's (a stormy day's against a calm one's),
    which a day's flights never ask of a model: a daily use case's live AUC is compared with its holdout
    AUC measured this way."""
    frame = pd.DataFrame({"y": np.asarray(y), "p": np.asarray(p), "day": np.asarray(days)})
    total, weighted = 0, 0.0
    for _, day in frame.groupby("day", sort=False):
        if 0 < day["y"].sum() < len(day):
            total += len(day)
            weighted += float(roc_auc_score(day["y"], day["p"])) * len(day)
    return weighted / total if total else None


SCORE_BINS = 6400
"""Bins of a score histogram: equal widths in log-odds over [-``SCORE_SPAN``, ``SCORE_SPAN``] (0.005 log-odds:
~0.001 of probability around 0.3, ~5% of a probability near 0 or 1), so scores near the extremes keep their
ranks as the middle does; beyond the span (p < 1.1e-7 or above 1 - 1.1e-7) they tie in the end bins."""
SCORE_SPAN = 16.0


def score_histogram(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """The class-conditional counts of the scores ``p`` in ``SCORE_BINS`` log-odds bins, sparse (the
    occupied bins only; JSON-ready): ``{"size", "span", "index", "negatives", "positives"}``. Histograms of
    any days sum, and ``histogram_roc_auc`` of the sum is the ROC AUC of their rows pooled, with no row kept
    (scores in one bin count as tied)."""
    y = np.asarray(y).astype(bool)
    q = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    logit = np.log(q) - np.log1p(-q)
    position = (logit + SCORE_SPAN) / (2 * SCORE_SPAN) * SCORE_BINS
    which = np.clip(position.astype(np.int64), 0, SCORE_BINS - 1)
    negatives = np.bincount(which[~y], minlength=SCORE_BINS)
    positives = np.bincount(which[y], minlength=SCORE_BINS)
    index = np.flatnonzero(negatives + positives)
    return {
        "size": SCORE_BINS,
        "span": SCORE_SPAN,
        "index": index.tolist(),
        "negatives": negatives[index].tolist(),
        "positives": positives[index].tolist(),
    }


def histogram_roc_auc(histograms: Iterable[dict[str, Any]]) -> float | None:
    """ROC AUC of the rows of ``histograms`` (``score_histogram``'s) pooled: the chance that a positive
    outscores a negative, a tie counting half (None: no positive or no negative). Histograms binned other
    than ``SCORE_BINS``/``SCORE_SPAN`` are refused."""
    negatives = np.zeros(SCORE_BINS, dtype=np.float64)
    positives = np.zeros(SCORE_BINS, dtype=np.float64)
    for h in histograms:
        if h["size"] != SCORE_BINS or h["span"] != SCORE_SPAN:
            raise ValueError(f"score histogram binned {h['size']}/{h['span']}, not {SCORE_BINS}/{SCORE_SPAN}")
        np.add.at(negatives, h["index"], h["negatives"])
        np.add.at(positives, h["index"], h["positives"])
    n, m = negatives.sum(), positives.sum()
    if n == 0 or m == 0:
        return None
    below = np.cumsum(negatives) - negatives  # negatives in lower bins
    return float((positives * (below + negatives / 2)).sum() / (n * m))


def roc_auc_or_none(y: np.ndarray, p: np.ndarray) -> float | None:
    """ROC AUC of the rows; None with a single class (undefined, not invented)."""
    y = np.asarray(y)
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None


MEASURES = ("daily", "pooled")
"""The live measures a use case may declare (``ModelSpec.live_measure``)."""


def check_measure(measure: str) -> str:
    if measure not in MEASURES:
        raise ValueError(f"live measure {measure!r} is not one of {MEASURES}")
    return measure


def live_roc_auc(y: np.ndarray, p: np.ndarray, days: np.ndarray, measure: str) -> float | None:
    """Live ROC AUC as the use case declares it (``ModelSpec.live_measure``): ``daily`` (``daily_roc_auc``)
    or ``pooled`` (the rows' ROC AUC, all days ranked together; None with a single class)."""
    if check_measure(measure) == "daily":
        return daily_roc_auc(y, p, days)
    return roc_auc_or_none(y, p)


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed rate in equal-width probability bins (empty bins omitted)."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    frame = (
        pd.DataFrame({"bin": which, "p": p, "y": y})
        .groupby("bin")
        .agg(predicted=("p", "mean"), observed=("y", "mean"), rows=("y", "size"))
    )
    return frame.reset_index()


def slice_metrics(
    frame: pd.DataFrame, y: np.ndarray, p: np.ndarray, column: str, min_rows: int = 200
) -> pd.DataFrame:
    """ROC AUC and positive rate per value of ``column`` (slices with both classes and enough rows)."""
    rows = []
    for value, idx in frame.groupby(column).indices.items():
        if len(idx) >= min_rows and 0 < y[idx].sum() < len(idx):
            rows.append(
                {
                    column: value,
                    "rows": len(idx),
                    "roc_auc": float(roc_auc_score(y[idx], p[idx])),
                    "positive_rate": float(y[idx].mean()),
                    "mean_score": float(p[idx].mean()),
                }
            )
    return pd.DataFrame(rows)


def bootstrap_auc_difference(
    y: np.ndarray,
    p_new: np.ndarray,
    p_old: np.ndarray,
    samples: int = 200,
    seed: int = 0,
    level: float = 0.95,
    groups: np.ndarray | None = None,
) -> tuple[float, float, float]:
    """Paired bootstrap of AUC(new) - AUC(old) on the same rows: ``(estimate, low, high)``.

    Resamples rows with replacement - or, with ``groups`` (e.g. each row's day), whole groups: rows of
    one day share their weather and the day's disruptions, so they are not independent draws, and a row
    bootstrap over a few days is overconfident (in the year-long replay, 3 days of live evidence
    "proved" differences of +-0.01-0.02 ROC AUC that the following weeks reversed). Resamples with a
    single class are skipped; the interval is the percentile interval at ``level``.
    """
    rng = np.random.default_rng(seed)
    n = len(y)
    if groups is not None:
        _, inverse = np.unique(np.asarray(groups), return_inverse=True)
        members = [np.flatnonzero(inverse == g) for g in range(inverse.max() + 1)] if n else []
    diffs = []
    for _ in range(samples):
        if groups is None:
            idx = rng.integers(0, n, n)
        else:
            idx = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
        if y[idx].min() == y[idx].max():
            continue
        diffs.append(roc_auc_score(y[idx], p_new[idx]) - roc_auc_score(y[idx], p_old[idx]))
    estimate = float(roc_auc_score(y, p_new) - roc_auc_score(y, p_old))
    low, high = np.quantile(diffs, [(1 - level) / 2, 1 - (1 - level) / 2])
    return estimate, float(low), float(high)


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The probability threshold that maximizes F1 (used as the model's label threshold)."""
    order = np.argsort(-p)
    y_sorted, p_sorted = y[order], p[order]
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(1 - y_sorted)
    f1 = 2 * tp / (tp + fp + y.sum())
    return float(p_sorted[int(np.argmax(f1))])
