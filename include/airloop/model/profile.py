"""The reference profile a model version carries for the drift monitor (stored as its artifact).

Per numeric feature: decile bin edges of the training window (duplicates removed), the reference
share in each bin, a sorted sample (at most ``sample_size`` values) for the KS test, the null share.
Per categorical feature: value counts and frequencies (nulls apart). Also the score distribution of the
model on the window.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def numeric_profile(values: pd.Series, bins: int = 10, sample_size: int = 20000, seed: int = 0) -> dict:
    data = values.astype("float64")
    present = data.dropna().to_numpy()
    if len(present) == 0:
        return {"edges": [], "frequencies": [], "sample": [], "null_share": 1.0, "rows": int(len(data))}
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)))
    inner = edges[1:-1]
    counts = np.bincount(np.searchsorted(inner, present, side="right"), minlength=len(inner) + 1)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(present, size=min(sample_size, len(present)), replace=False))
    return {
        "edges": edges.tolist(),
        "frequencies": (counts / counts.sum()).tolist(),
        "sample": sample.tolist(),
        "null_share": float(data.isna().mean()),
        "rows": int(len(data)),
    }


def categorical_profile(values: pd.Series) -> dict:
    from airloop.drift.stats import as_category

    present = values.dropna()
    counts = as_category(present).value_counts()
    return {
        "counts": {str(k): int(v) for k, v in counts.items()},
        "frequencies": {str(k): float(v) / max(len(present), 1) for k, v in counts.items()},
        "null_share": float(values.isna().mean()),
        "rows": int(len(values)),
    }


def reference_profile(
    frame: pd.DataFrame,
    categorical: list[str],
    numeric: list[str],
    scores: np.ndarray,
    shared: dict[str, list[str]] | None = None,
) -> dict:
    """The profile of ``frame``'s rows; ``shared``: input -> the columns of one observation, profiled on
    ``frame``'s distinct observations (first row of each), and recorded under ``shared`` so the drift
    check deduplicates the live window the same way (a profile without it predates this: every input
    was profiled per row, and the check compares per row)."""
    shared = {c: per for c, per in (shared or {}).items() if c in categorical or c in numeric}
    distinct: dict[tuple[str, ...], pd.DataFrame] = {}

    def rows_of(column: str) -> pd.Series:
        per = shared.get(column)
        if per is None:
            return frame[column]
        key = tuple(per)
        if key not in distinct:
            distinct[key] = frame.drop_duplicates(subset=list(per))
        return distinct[key][column]

    return {
        "numeric": {c: numeric_profile(rows_of(c)) for c in numeric},
        "categorical": {c: categorical_profile(rows_of(c)) for c in categorical},
        "score": numeric_profile(pd.Series(scores)),
        "rows": int(len(frame)),
        "shared": shared,
    }
