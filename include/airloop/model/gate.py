"""The promotion gate: a pure decision from holdout metrics, the bootstrap interval and behaviour tests."""

from __future__ import annotations

from dataclasses import dataclass

from airloop.model.behaviour import BehaviourResult
from airloop.usecase import ModelSpec


@dataclass(frozen=True)
class Decision:
    promote: bool
    verdict: str  # first_champion | better | within_tolerance | worse | below_minimum | failed_behaviour
    reason: str


def decide(
    challenger_auc: float,
    champion_auc: float | None,
    auc_diff_ci: tuple[float, float, float] | None,
    behaviour: list[BehaviourResult],
    spec: ModelSpec,
) -> Decision:
    """Promote only a challenger that passes every behaviour test, reaches ``min_auc``, and - when a
    champion exists - whose AUC difference to it has a bootstrap lower bound >= ``-tolerance``."""
    failed = [b for b in behaviour if not b.passed]
    if failed:
        return Decision(False, "failed_behaviour", "; ".join(f"{b.name} failed ({b.detail})" for b in failed))
    if challenger_auc < spec.min_auc:
        return Decision(
            False, "below_minimum", f"holdout ROC AUC {challenger_auc:.4f} < minimum {spec.min_auc}"
        )
    if champion_auc is None or auc_diff_ci is None:
        return Decision(
            True, "first_champion", f"no champion yet; holdout ROC AUC {challenger_auc:.4f} passes"
        )
    estimate, low, high = auc_diff_ci
    ci = f"AUC difference {estimate:+.4f} (95% CI {low:+.4f} .. {high:+.4f}) vs champion {champion_auc:.4f}"
    if low > 0:
        return Decision(True, "better", f"better than the champion: {ci}")
    if low >= -spec.tolerance:
        return Decision(
            True, "within_tolerance", f"not worse than the champion beyond {spec.tolerance}: {ci}"
        )
    return Decision(False, "worse", f"may be worse than the champion by more than {spec.tolerance}: {ci}")
