"""The promotion gate: a pure decision from holdout metrics, the bootstrap interval and behaviour tests."""

from __future__ import annotations

from dataclasses import dataclass

from airloop.model.behaviour import BehaviourResult
from airloop.usecase import ModelSpec

# verdicts whose challenger, when kept out, is still compared with the champion on live traffic (shadow):
# kept out by its holdout score only, not by a behaviour test or the minimum
SHADOW_WHEN_KEPT = ("worse", "inconclusive")


@dataclass(frozen=True)
class Decision:
    promote: bool
    # first_champion | better | within_tolerance | inconclusive | worse | below_minimum | failed_behaviour
    verdict: str
    reason: str


def decide(
    challenger_auc: float,
    champion_auc: float | None,
    auc_diff_ci: tuple[float, float, float] | None,
    behaviour: list[BehaviourResult],
    spec: ModelSpec,
) -> Decision:
    """Promote only a challenger that passes every behaviour test and reaches ``min_auc`` (unless the
    champion, on the same holdout, does not reach it either: hard days, not a bad model); when a champion
    exists, by the bootstrap interval of their AUC difference: ``better`` (lower bound > 0) and
    ``within_tolerance`` (lower bound >= ``-tolerance``) promote, ``worse`` (upper bound < 0: worse with
    confidence) keeps the champion, and ``inconclusive`` (neither: the interval reaches below the tolerance
    and above 0) promotes only with ``spec.promote_inconclusive`` - the challenger carries the newer days."""
    failed = [b for b in behaviour if not b.passed]
    if failed:
        return Decision(False, "failed_behaviour", "; ".join(f"{b.name} failed ({b.detail})" for b in failed))
    # the floor stops a model that cannot rank, not hard days: where the champion, on the same holdout,
    # is below it too, the comparison with the champion decides
    hard_days = champion_auc is not None and auc_diff_ci is not None and champion_auc < spec.min_auc
    if challenger_auc < spec.min_auc and not hard_days:
        return Decision(
            False, "below_minimum", f"holdout ROC AUC {challenger_auc:.4f} < minimum {spec.min_auc}"
        )
    if champion_auc is None or auc_diff_ci is None:
        return Decision(
            True, "first_champion", f"no champion yet; holdout ROC AUC {challenger_auc:.4f} passes"
        )
    estimate, low, high = auc_diff_ci
    ci = f"AUC difference {estimate:+.4f} (95% CI {low:+.4f} .. {high:+.4f}) vs champion {champion_auc:.4f}"
    if hard_days:
        ci += f" (both below the minimum {spec.min_auc} on these days: judged against the champion)"
    if low > 0:
        return Decision(True, "better", f"better than the champion: {ci}")
    if low >= -spec.tolerance:
        return Decision(
            True, "within_tolerance", f"not worse than the champion beyond {spec.tolerance}: {ci}"
        )
    if high < 0:
        return Decision(False, "worse", f"worse than the champion: {ci}")
    return Decision(
        spec.promote_inconclusive,
        "inconclusive",
        f"inconclusive: may be worse than the champion by more than {spec.tolerance}, may be better: {ci}"
        + ("; promoted: it has the newer days" if spec.promote_inconclusive else ""),
    )
