"""Drift statistics that scan only the current window: the reference is precomputed with the model.

Numeric features (two-sample Kolmogorov-Smirnov and PSI)
    The reference is stored sorted, as its distinct values ``r_1 < ... < r_k`` with the empirical CDF just
    before and at each (``F_ref(r_i-)``, ``F_ref(r_i)``). Between two reference values the reference CDF is
    flat and the current one only rises, so ``sup |F_ref - F_cur|`` is reached at some ``r_i`` or just
    before it. The KS statistic therefore needs only ``#{x < r_i}`` and ``#{x <= r_i}`` of the current
    window, and PSI only ``#{x < e_j}`` at its bin edges. One compiled pass over the unsorted window
    (``kernels.PointIndex``) counts the values strictly between and equal to each point of the merged,
    sorted reference values and edges. The counts add up chunk by chunk, so a window larger than memory
    streams in bounded memory and the statistic is still exact (equal to ``scipy.stats.ks_2samp``'s).
    The p-value is scipy's ``method="asymp"`` one (``kstwo.sf(D, round(n*m/(n+m)))``) up to an effective
    size of 10,000 and the limiting Kolmogorov distribution (``kstwobign``) beyond: ``kstwo.sf`` can cost
    ~0.5 s per feature at effective sizes of 5e4-5e5, where the two agree closely.

    PSI uses the reference's quantile bins frozen at training time (duplicate edges removed, so discrete
    features get fewer, wider bins). ``PSI = sum (c - r) * ln(c / r)`` over bins, with each share floored
    at ``PSI_EPSILON`` = 1e-4 so that an empty bin adds a large but finite term (a bin empty in the window
    and holding 10 % of the reference adds ~0.83).

Categorical features: chi-square test of the 2 x K table of counts (``scipy.stats.chi2_contingency``) and
PSI over the categories; values the reference never saw are counted together as one extra category.

Null share: the change of the share of missing values, with a two-proportion z-test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from airloop.drift.kernels import PointIndex

PSI_EPSILON = 1e-4
SMALL_EFFECTIVE_N = 10_000
UNSEEN = "__unseen__"


def psi(reference_shares: np.ndarray, current_counts: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of current bin counts against reference bin shares."""
    total = current_counts.sum()
    if total == 0:
        return float("nan")
    ref = np.maximum(np.asarray(reference_shares, dtype="float64"), epsilon)
    cur = np.maximum(current_counts / total, epsilon)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    """Two-sided asymptotic p-value of the two-sample KS statistic (Kolmogorov distribution)."""
    if n == 0 or m == 0:
        return float("nan")
    from scipy.stats import kstwo, kstwobign

    effective = n * m / (n + m)
    if effective <= SMALL_EFFECTIVE_N:  # scipy's "asymp" method exactly; cheap at this size
        return float(min(1.0, kstwo.sf(statistic, round(effective))))
    return float(min(1.0, kstwobign.sf(statistic * math.sqrt(effective))))


def null_share_pvalue(ref_nulls: int, ref_rows: int, cur_nulls: int, cur_rows: int) -> float:
    """Two-sided two-proportion z-test of the null shares (1.0 when both are 0 or 1)."""
    if ref_rows == 0 or cur_rows == 0:
        return float("nan")
    pooled = (ref_nulls + cur_nulls) / (ref_rows + cur_rows)
    if pooled in (0.0, 1.0):
        return 1.0
    se = math.sqrt(pooled * (1 - pooled) * (1 / ref_rows + 1 / cur_rows))
    z = abs(cur_nulls / cur_rows - ref_nulls / ref_rows) / se
    return float(math.erfc(z / math.sqrt(2)))


@dataclass(frozen=True)
class NumericReference:
    """A numeric feature's training-time reference, ready for the window scan."""

    values: np.ndarray
    """Distinct reference values, ascending."""
    cdf_before: np.ndarray
    """``F_ref(values[i]-)``."""
    cdf_at: np.ndarray
    """``F_ref(values[i])``."""
    rows: int
    """Non-null reference rows behind the CDF (the KS sample size)."""
    edges: np.ndarray
    """PSI bin edges (first and last are the reference min/max; bins are [e_i, e_i+1), open at both ends)."""
    shares: np.ndarray
    null_share: float
    total_rows: int

    @classmethod
    def from_sample(
        cls,
        sample: np.ndarray,
        edges: Sequence[float],
        shares: Sequence[float],
        null_share: float,
        total_rows: int,
    ) -> NumericReference:
        data = np.sort(np.asarray(sample, dtype="float64"))
        values, counts = np.unique(data, return_counts=True)
        cumulative = np.cumsum(counts)
        n = int(cumulative[-1]) if len(cumulative) else 0
        at = cumulative / max(n, 1)
        before = (cumulative - counts) / max(n, 1)
        return cls(
            values,
            before,
            at,
            n,
            np.asarray(edges, dtype="float64"),
            np.asarray(shares, dtype="float64"),
            float(null_share),
            int(total_rows),
        )

    @property
    def inner_edges(self) -> np.ndarray:
        return self.edges[1:-1]

    @cached_property
    def index(self) -> PointIndex:
        """The scan's index over the reference values and PSI edges, merged and sorted."""
        from airloop.drift.kernels import PointIndex

        return PointIndex.build(np.union1d(self.values, self.inner_edges))

    @cached_property
    def slots(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the reference values and of the inner PSI edges among ``index.points``."""
        points = self.index.points
        return np.searchsorted(points, self.values), np.searchsorted(points, self.inner_edges)


class NumericAccumulator:
    """Streams a numeric feature's current window: counts at the reference values and per PSI bin."""

    def __init__(self, reference: NumericReference) -> None:
        self.reference = reference
        self._counts: np.ndarray | None = None  # built by the first update (in the engine's worker thread)
        self.rows = 0
        self.nulls = 0

    @property
    def counts(self) -> np.ndarray:
        """Per slot of the merged points: ``2a`` strictly between points a-1 and a, ``2a+1`` equal to a."""
        if self._counts is None:
            self._counts = self.reference.index.empty_counts()
        return self._counts

    def update(self, chunk: np.ndarray) -> None:
        values = np.asarray(chunk)
        self.nulls += self.reference.index.count(values, self.counts)
        self.rows += len(values)

    @property
    def present(self) -> int:
        return self.rows - self.nulls

    def _below(self, positions: np.ndarray, inclusive: bool) -> np.ndarray:
        """Window values below (or at) the points at ``positions``."""
        cumulative = np.cumsum(self.counts)
        return cumulative[2 * positions + int(inclusive)]

    @property
    def below(self) -> np.ndarray:
        """``#{x < r_i}`` for each reference value."""
        return self._below(self.reference.slots[0], inclusive=False)

    @property
    def at_or_below(self) -> np.ndarray:
        """``#{x <= r_i}`` for each reference value."""
        return self._below(self.reference.slots[0], inclusive=True)

    @property
    def bins(self) -> np.ndarray:
        """Window values per PSI bin."""
        below_edges = self._below(self.reference.slots[1], inclusive=False)
        return np.diff(np.concatenate(([0], below_edges, [self.present])))

    def ks(self) -> tuple[float, float]:
        """(statistic, p-value) of the window so far against the reference."""
        m, ref = self.present, self.reference
        if m == 0 or ref.rows == 0:
            return float("nan"), float("nan")
        statistic = max(
            float(np.max(np.abs(ref.cdf_at - self.at_or_below / m))),
            float(np.max(np.abs(ref.cdf_before - self.below / m))),
        )
        return statistic, ks_pvalue(statistic, ref.rows, m)

    def psi(self, epsilon: float = PSI_EPSILON) -> float:
        return psi(self.reference.shares, self.bins, epsilon)

    def current_shares(self) -> np.ndarray:
        return self.bins / max(self.bins.sum(), 1)


@dataclass(frozen=True)
class CategoricalReference:
    categories: list[str]
    counts: np.ndarray
    null_share: float
    total_rows: int


class CategoricalAccumulator:
    """Streams a categorical feature: counts per reference category plus one bucket for unseen values."""

    def __init__(self, reference: CategoricalReference) -> None:
        self.reference = reference
        self.index = {c: i for i, c in enumerate(reference.categories)}
        self.counts = np.zeros(len(reference.categories) + 1, dtype="int64")  # last: unseen
        self.unseen: dict[str, int] = {}
        self.rows = 0
        self.nulls = 0

    def update(self, chunk: Sequence[object]) -> None:
        import pandas as pd

        series = pd.Series(chunk)
        missing = series.isna()
        self.rows += len(series)
        self.nulls += int(missing.sum())
        for value, count in as_category(series[~missing]).value_counts().items():
            slot = self.index.get(value)
            if slot is None:
                self.counts[-1] += count
                self.unseen[value] = self.unseen.get(value, 0) + int(count)
            else:
                self.counts[slot] += count

    def test(self) -> tuple[float, float]:
        """(chi-square statistic, p-value) of the 2 x K table (categories empty in both are dropped)."""
        from scipy.stats import chi2_contingency

        ref = np.append(self.reference.counts, 0)
        table = np.vstack([ref, self.counts])
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2 or table[1].sum() == 0 or table[0].sum() == 0:
            return 0.0, 1.0
        result = chi2_contingency(table, correction=False)
        return float(result.statistic), float(result.pvalue)

    def psi(self, epsilon: float = PSI_EPSILON) -> float:
        ref = np.append(self.reference.counts, 0).astype("float64")
        return psi(ref / max(ref.sum(), 1), self.counts, epsilon)


def as_category(values: object) -> pd.Series:
    """Categories as strings, integers without a decimal point (``5.0`` and ``5`` are the same hour)."""
    import pandas as pd

    series = pd.Series(values)
    if pd.api.types.is_float_dtype(series):
        whole = series.dropna()
        if (whole == np.floor(whole)).all():
            return series.astype("Int64").astype(str)
    return series.astype(str)


def adjust_pvalues(pvalues: Sequence[float], method: str) -> np.ndarray:
    """Multiple-testing adjusted p-values: ``bh`` (Benjamini-Hochberg) or ``bonferroni``; NaN stays NaN."""
    p = np.asarray(pvalues, dtype="float64")
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    k = len(q)
    if k == 0:
        return out
    if method == "bonferroni":
        out[ok] = np.minimum(q * k, 1.0)
    elif method == "bh":
        order = np.argsort(q)
        ranked = q[order] * k / np.arange(1, k + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        adjusted = np.empty(k)
        adjusted[order] = np.minimum(ranked, 1.0)
        out[ok] = adjusted
    else:
        raise ValueError(f"unknown multiple-testing correction {method!r} (bh or bonferroni)")
    return out
