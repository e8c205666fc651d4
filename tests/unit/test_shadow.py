"""The live-evidence decision (pure): wait, promote, confirm or expire on paired scores of two versions."""

from __future__ import annotations

import numpy as np
import pytest

from airloop.shadow import decide_live
from airloop.usecase import ShadowPolicy

POLICY = ShadowPolicy(min_rows=1000, min_days=2, max_days=5, bootstrap_samples=200)


def paired(n: int, shadow_signal: float, champion_signal: float, seed: int = 0):
    """Outcomes and two versions' probabilities whose separation grows with their signal."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    noise = rng.normal(size=(2, n))
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    return y, sigmoid(champion_signal * (y - 0.5) + noise[0]), sigmoid(shadow_signal * (y - 0.5) + noise[1])


def test_waits_for_enough_rows_and_days():
    y, champion, shadow = paired(500, 2.0, 0.5)
    action, reason, ci = decide_live(y, champion, shadow, 3, POLICY)
    assert action == "wait" and ci is None and "500 of 1,000 rows" in reason
    y, champion, shadow = paired(3000, 2.0, 0.5)
    assert decide_live(y, champion, shadow, 1, POLICY)[0] == "wait"  # one day: too few days


def test_a_clearly_better_shadow_is_promoted_and_a_worse_one_confirms_the_champion():
    y, champion, shadow = paired(3000, shadow_signal=2.0, champion_signal=0.5)
    action, reason, (estimate, low, high) = decide_live(y, champion, shadow, 3, POLICY)
    assert action == "promote" and low > 0 and "shadow better" in reason
    assert decide_live(y, champion, shadow, 3, POLICY.model_copy(update={"promote": False}))[0] == "better"
    action, reason, (estimate, low, high) = decide_live(y, shadow, champion, 3, POLICY)  # roles swapped
    assert action == "confirm" and high < 0 and "champion confirmed" in reason


def test_undecided_evidence_waits_until_max_days_then_expires():
    y, champion, shadow = paired(3000, 1.0, 1.0, seed=3)  # the same signal: no confident difference
    action, _, (estimate, low, high) = decide_live(y, champion, shadow, 3, POLICY)
    assert action == "wait" and low < 0 < high
    assert decide_live(y, champion, shadow, 5, POLICY)[0] == "expire"
    assert decide_live(y[:10], champion[:10], shadow[:10], 5, POLICY)[0] == "expire"  # too few rows, too late


def test_the_margin_is_what_the_shadow_must_beat():
    y, champion, shadow = paired(3000, shadow_signal=1.3, champion_signal=1.0)
    estimate = decide_live(y, champion, shadow, 3, POLICY)[2][0]
    demanding = POLICY.model_copy(update={"margin": estimate + 0.05})
    assert decide_live(y, champion, shadow, 3, demanding)[0] == "confirm"


def test_policy_days_must_be_ordered():
    with pytest.raises(ValueError, match="max_days"):
        ShadowPolicy(min_days=5, max_days=2)
