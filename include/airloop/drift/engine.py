"""The drift engine: one pass over the current window against a model version's reference profile.

``DriftEngine.from_profile(profile)`` prepares the reference (the ``reference_profile.json`` a model version
carries), ``update(chunk)`` folds in a chunk of the window (a DataFrame or a mapping of column -> array; a
window larger than memory is fed chunk by chunk, see ``airloop.drift.monitor.scan_window``),
``evaluate(policy)`` applies the use case's decision policy and returns one ``FeatureDrift`` per monitored
feature (and the score).
Numeric columns are processed in parallel threads (the compiled window scan releases the GIL).

Inputs the profile marks as ``shared`` (input -> the columns of one observation, e.g. a weather reading
per airport and hour; ``DriftPolicy.shared``) are tested on the window's distinct observations: a row
feeds them only the first time its observation appears in the window (across chunks), as the
reference was profiled on the training rows' distinct observations.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from airloop.drift.stats import (
    PSI_EPSILON,
    CategoricalAccumulator,
    CategoricalReference,
    NumericAccumulator,
    NumericReference,
    adjust_pvalues,
    null_share_pvalue,
)
from airloop.usecase import DriftPolicy

SCORE = "prediction"
"""Name of the model's score in drift results (prediction drift); read from the window's ``probability``."""
SCORE_COLUMN = "probability"

Status = Literal["ok", "significant", "warn", "alert", "too_few_rows", "partial_cycle"]


@dataclass
class FeatureDrift:
    feature: str
    kind: Literal["numeric", "categorical", "score"]
    test: Literal["ks", "chi2"]
    rows: int
    statistic: float
    """KS D (numeric, score) or the chi-square statistic (categorical)."""
    p_value: float
    psi: float
    null_share_reference: float
    null_share_current: float
    null_share_p_value: float
    p_adjusted: float = float("nan")
    status: Status = "ok"
    reasons: list[str] = field(default_factory=list)
    unseen: dict[str, int] = field(default_factory=dict)
    bins: dict[str, Any] = field(default_factory=dict)
    """Reference and current shares per bin/category, for the report's overlays."""

    @property
    def null_share_change(self) -> float:
        return self.null_share_current - self.null_share_reference

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["null_share_change"] = self.null_share_change
        return out


def _numeric_reference(profile: dict) -> NumericReference | None:
    if not profile.get("sample"):
        return None
    return NumericReference.from_sample(
        np.asarray(profile["sample"]),
        profile["edges"],
        profile["frequencies"],
        profile["null_share"],
        profile["rows"],
    )


def _categorical_reference(profile: dict) -> CategoricalReference:
    counts = profile.get("counts")
    if counts is None:  # a profile written before counts were stored: frequencies x present rows
        present = round(profile["rows"] * (1 - profile["null_share"]))
        counts = {k: round(v * present) for k, v in profile["frequencies"].items()}
    return CategoricalReference(
        list(counts),
        np.asarray(list(counts.values()), dtype="int64"),
        float(profile["null_share"]),
        int(profile["rows"]),
    )


class DriftEngine:
    def __init__(
        self,
        numeric: dict[str, NumericReference],
        categorical: dict[str, CategoricalReference],
        score: NumericReference | None = None,
        threads: int | None = None,
        shared: Mapping[str, list[str]] | None = None,
    ) -> None:
        self.numeric = {name: NumericAccumulator(ref) for name, ref in numeric.items()}
        self.categorical = {name: CategoricalAccumulator(ref) for name, ref in categorical.items()}
        self.score = NumericAccumulator(score) if score is not None else None
        self.threads = threads or min(len(self.numeric) + 1, os.cpu_count() or 1)
        self.shared = {
            name: tuple(per)
            for name, per in (shared or {}).items()
            if name in self.numeric or name in self.categorical
        }
        """Input -> the columns of one observation: tested on the window's distinct observations."""
        self._seen: dict[tuple[str, ...], np.ndarray] = {}
        self.window_rows = 0

    @classmethod
    def from_profile(
        cls,
        profile: dict,
        features: list[str] | None = None,
        ignore: Collection[str] = (),
        prediction: bool = True,
        threads: int | None = None,
    ) -> DriftEngine:
        """Engine for the features of ``profile`` (all, or those listed), minus ``ignore``."""

        def wanted(name: str) -> bool:
            return (features is None or name in features) and name not in ignore

        numeric = {
            n: r
            for n, p in profile.get("numeric", {}).items()
            if wanted(n) and (r := _numeric_reference(p)) is not None
        }
        categorical = {
            n: _categorical_reference(p) for n, p in profile.get("categorical", {}).items() if wanted(n)
        }
        if features is not None and (missing := set(features) - set(numeric) - set(categorical)):
            raise ValueError(f"monitored features without a reference profile: {sorted(missing)}")
        score = _numeric_reference(profile["score"]) if prediction and profile.get("score") else None
        # (a profile written before shared inputs has no "shared": every input is compared per row)
        return cls(numeric, categorical, score, threads, profile.get("shared"))

    @property
    def columns(self) -> list[str]:
        """Window columns the engine reads."""
        per = [c for columns in self.shared.values() for c in columns]
        return list(
            dict.fromkeys(
                [*self.numeric, *self.categorical, *([SCORE_COLUMN] if self.score is not None else []), *per]
            )
        )

    def _first_seen(self, per: tuple[str, ...], chunk: Mapping[str, Any]) -> np.ndarray:
        """Rows of ``chunk`` whose observation (values of ``per``) appears for the first time in the
        window: the first row of each observation new in this chunk."""
        import pandas as pd

        hashes = pd.util.hash_pandas_object(
            pd.DataFrame({c: np.asarray(chunk[c]) for c in per}), index=False
        ).to_numpy()
        _, first = np.unique(hashes, return_index=True)
        new = np.zeros(len(hashes), dtype=bool)
        new[first] = True
        seen = self._seen.get(per)
        if seen is not None and len(seen):
            new &= ~np.isin(hashes, seen)
        self._seen[per] = np.union1d(seen, hashes[new]) if seen is not None else np.unique(hashes[new])
        return new

    @property
    def rows(self) -> int:
        """Window rows folded in so far (a shared input's test counts its distinct observations)."""
        return self.window_rows

    def update(self, chunk: Mapping[str, Any]) -> None:
        """Fold one chunk of the window in (every column of ``columns`` must be present)."""
        if missing := [c for c in self.columns if c not in chunk]:
            raise KeyError(f"window chunk lacks columns {missing}")
        masks = {per: self._first_seen(per, chunk) for per in dict.fromkeys(self.shared.values())}

        def values(name: str) -> Any:
            per = self.shared.get(name)
            return (
                chunk[name]
                if per is None
                else np.asarray(chunk[name], dtype=object if name in self.categorical else None)[masks[per]]
            )

        self.window_rows += len(chunk[self.columns[0]]) if self.columns else 0
        jobs = [(acc, values(name)) for name, acc in self.numeric.items()]
        if self.score is not None:
            jobs.append((self.score, chunk[SCORE_COLUMN]))
        if self.threads > 1 and len(jobs) > 1:
            with ThreadPoolExecutor(self.threads) as pool:
                list(pool.map(lambda job: job[0].update(np.asarray(job[1])), jobs))
        else:
            for acc, data in jobs:
                acc.update(np.asarray(data))
        for name, cat in self.categorical.items():
            cat.update(values(name))

    def evaluate(
        self, policy: DriftPolicy, epsilon: float = PSI_EPSILON, span_hours: float | None = None
    ) -> list[FeatureDrift]:
        """Every monitored feature's tests, graded by ``policy``; ``span_hours``: how much event time the
        window's rows cover (cyclic inputs are judged only over a whole cycle; None: always judged)."""
        results = []
        for name, acc in self.numeric.items():
            statistic, p = acc.ks()
            results.append(self._numeric_result(name, "numeric", acc, statistic, p, epsilon))
        for name, cat in self.categorical.items():
            statistic, p = cat.test()
            ref = cat.reference
            shares = np.append(ref.counts, 0) / max(ref.counts.sum(), 1)
            results.append(
                FeatureDrift(
                    name,
                    "categorical",
                    "chi2",
                    cat.rows,
                    statistic,
                    p,
                    cat.psi(epsilon),
                    ref.null_share,
                    cat.nulls / max(cat.rows, 1),
                    null_share_pvalue(
                        round(ref.null_share * ref.total_rows), ref.total_rows, cat.nulls, cat.rows
                    ),
                    unseen=dict(cat.unseen),
                    bins={
                        "categories": [*ref.categories, "(unseen)"],
                        "reference": shares.tolist(),
                        "current": (cat.counts / max(cat.counts.sum(), 1)).tolist(),
                    },
                )
            )
        if self.score is not None:
            statistic, p = self.score.ks()
            results.append(self._numeric_result(SCORE, "score", self.score, statistic, p, epsilon))
        apply_policy(results, policy, span_hours, self.window_rows)
        return results

    @staticmethod
    def _numeric_result(
        name: str,
        kind: Literal["numeric", "score"],
        acc: NumericAccumulator,
        statistic: float,
        p: float,
        epsilon: float,
    ) -> FeatureDrift:
        ref = acc.reference
        return FeatureDrift(
            name,
            kind,
            "ks",
            acc.rows,
            statistic,
            p,
            acc.psi(epsilon),
            ref.null_share,
            acc.nulls / max(acc.rows, 1),
            # the score is NaN for rows another version served: not a null-share change
            float("nan")
            if kind == "score"
            else null_share_pvalue(
                round(ref.null_share * ref.total_rows), ref.total_rows, acc.nulls, acc.rows
            ),
            bins={
                "edges": ref.edges.tolist(),
                "reference": ref.shares.tolist(),
                "current": acc.current_shares().tolist(),
                "ecdf_x": ref.values[
                    np.linspace(0, len(ref.values) - 1, min(200, len(ref.values))).astype(int)
                ].tolist()
                if len(ref.values)
                else [],
                "ecdf_reference": _ecdf_at(ref, acc, "reference"),
                "ecdf_current": _ecdf_at(ref, acc, "current"),
            },
        )


def _ecdf_at(ref: NumericReference, acc: NumericAccumulator, which: str) -> list[float]:
    """Both ECDFs at up to 200 reference values (the report's overlay)."""
    if not len(ref.values):
        return []
    idx = np.linspace(0, len(ref.values) - 1, min(200, len(ref.values))).astype(int)
    if which == "reference":
        return ref.cdf_at[idx].tolist()
    return (acc.at_or_below[idx] / max(acc.present, 1)).tolist()


def apply_policy(
    results: list[FeatureDrift],
    policy: DriftPolicy,
    span_hours: float | None = None,
    window_rows: int | None = None,
) -> None:
    """Adjust p-values across the window's tests and grade each feature (in place).

    One family: every judged feature's main test (KS or chi-square) and its null-share test. A cyclic
    input (``policy.cycles``) in a window spanning less than its cycle is not judged: ``partial_cycle``.
    ``policy.min_rows`` applies to the window's rows (``window_rows``; None: each test's own rows), not to
    a shared input's distinct observations.
    """
    judged = []
    for r in results:
        cycle = policy.cycles.get(r.feature)
        if cycle is not None and span_hours is not None and span_hours < cycle * policy.cycle_coverage:
            r.status = "partial_cycle"
            r.reasons = [f"the window's events span {span_hours:.0f} h of its {cycle:g} h cycle: not judged"]
        else:
            judged.append(r)
    results = judged
    pvalues = [r.p_value for r in results] + [r.null_share_p_value for r in results]
    adjusted = adjust_pvalues(pvalues, policy.correction)
    k = len(results)
    for i, r in enumerate(results):
        r.p_adjusted = float(adjusted[i])
        null_adjusted = float(adjusted[k + i])
        floors = policy.thresholds(r.feature)
        r.reasons = []
        if (window_rows if window_rows is not None else r.rows) < policy.min_rows:
            r.status = "too_few_rows"
            continue
        significant = r.p_adjusted < policy.alpha
        null_significant = null_adjusted < policy.alpha
        level = 0
        if significant:
            if r.test == "ks" and r.statistic >= floors.ks_alert or r.psi >= floors.psi_alert:
                level = 2
            elif r.test == "ks" and r.statistic >= floors.ks_warn or r.psi >= floors.psi_warn:
                level = 1
            if level:
                r.reasons.append(
                    f"{'KS D' if r.test == 'ks' else 'chi2'} {r.statistic:.4g} (p_adj {r.p_adjusted:.2g}), "
                    f"PSI {r.psi:.3f}"
                )
        if null_significant:
            change = abs(r.null_share_change)
            null_level = (
                2 if change >= floors.null_share_alert else 1 if change >= floors.null_share_warn else 0
            )
            if null_level:
                r.reasons.append(f"null share {r.null_share_reference:.3f} -> {r.null_share_current:.3f}")
            level = max(level, null_level)
        r.status = (
            ("alert", "warn")[2 - level]
            if level
            else ("significant" if significant or null_significant else "ok")
        )
