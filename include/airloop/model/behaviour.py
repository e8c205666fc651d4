"""Behaviour tests of a model (pure: a predict callable and rows): invariance, direction, obvious cases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from airloop.usecase import ModelSpec

Predict = Callable[[pd.DataFrame], np.ndarray]


@dataclass
class BehaviourResult:
    name: str
    passed: bool
    detail: str


def invariance(predict: Predict, rows: pd.DataFrame, column: str) -> BehaviourResult:
    """Changing ``column`` (e.g. the flight number) leaves every prediction exactly unchanged."""
    changed = rows.copy()
    changed[column] = changed[column].astype("int64") + 1111 if column in changed else 1111
    diff = float(np.max(np.abs(predict(rows) - predict(changed)))) if len(rows) else 0.0
    return BehaviourResult(f"invariance:{column}", diff == 0.0, f"max |change| = {diff:.3g}")


def directional(predict: Predict, rows: pd.DataFrame, column: str, increase: float) -> BehaviourResult:
    """Raising ``column`` by ``increase`` never lowers a prediction (all else equal)."""
    more = rows.copy()
    more[column] = (more[column].astype("float64") + increase).astype(rows[column].dtype)
    drop = float(np.max(predict(rows) - predict(more))) if len(rows) else 0.0
    return BehaviourResult(
        f"directional:{column}+{increase:g}", drop <= 1e-6, f"largest decrease = {drop:.3g}"
    )


def minimum_functionality(
    predict: Predict, rows: pd.DataFrame, low: dict[str, float], high: dict[str, float]
) -> BehaviourResult:
    """Each row made obviously risky scores above the same row made obviously safe."""
    safe, risky = rows.copy(), rows.copy()
    for frame, values in ((safe, low), (risky, high)):
        for column, value in values.items():
            frame[column] = pd.Series(value, index=rows.index).astype(rows[column].dtype)
    p_safe, p_risky = predict(safe), predict(risky)
    share = float(np.mean(p_risky > p_safe)) if len(rows) else 1.0
    return BehaviourResult(
        "minimum_functionality",
        share == 1.0,
        f"risky > safe on {share:.1%} of rows (mean {p_safe.mean():.3f} -> {p_risky.mean():.3f})",
    )


def run_all(predict: Predict, rows: pd.DataFrame, spec: ModelSpec) -> list[BehaviourResult]:
    results = [invariance(predict, rows, c) for c in spec.invariant_inputs]
    results += [directional(predict, rows, c, inc) for c, inc in spec.directional.items()]
    if spec.obvious_low_risk and spec.obvious_high_risk:
        results.append(minimum_functionality(predict, rows, spec.obvious_low_risk, spec.obvious_high_risk))
    return results
