"""Promotion on live evidence: the champion and the shadow version compared on the same served events.

The service scores every answered request with the ``shadow`` alias too (logged, never answered);
``feedback.record_day`` keeps, per day with outcomes, the rows both versions scored
(``lake/monitoring/shadow/ds=DAY.parquet``). ``judge_shadow`` pools the days of the current pair (champion
answered, shadow logged) and decides with a paired bootstrap of AUC(shadow) - AUC(champion) on those
rows, resampling whole days (``decide_live``, pure): wait for more evidence, promote the shadow, confirm
the champion (the shadow retires) or end an undecided comparison after ``ShadowPolicy.max_days``. Every
outcome is recorded on both versions' tags and, when an alias moves, in the registry's audit trail.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from airloop.lake import Lake
    from airloop.registry import ModelRegistry
    from airloop.usecase import ShadowPolicy, UseCase

logger = logging.getLogger(__name__)

Action = Literal["none", "wait", "promote", "better", "confirm", "expire"]


@dataclass(frozen=True)
class LiveVerdict:
    action: Action
    """``none``: no shadow to judge; ``wait``: not enough evidence yet; ``promote``: the shadow became
    champion; ``better``: the shadow is better but the policy does not promote on live evidence;
    ``confirm``: the champion is better, the shadow retires; ``expire``: undecided after ``max_days``."""
    reason: str
    champion: str | None = None
    shadow: str | None = None
    rows: int = 0
    days: int = 0
    champion_roc_auc: float | None = None
    shadow_roc_auc: float | None = None
    auc_diff_ci: tuple[float, float, float] | None = None
    """AUC(shadow) - AUC(champion): estimate, 95% bootstrap interval."""


def decide_live(
    y: np.ndarray,
    p_champion: np.ndarray,
    p_shadow: np.ndarray,
    days: int,
    policy: ShadowPolicy,
    day_of_row: np.ndarray | None = None,
) -> tuple[Action, str, tuple[float, float, float] | None]:
    """The decision on paired live evidence (pure): ``(action, reason, ci)``. With ``day_of_row`` the
    bootstrap resamples whole days (rows of a day are not independent: see
    ``metrics.bootstrap_auc_difference``)."""
    from airloop.model.metrics import bootstrap_auc_difference

    rows = len(y)
    enough = rows >= policy.min_rows and days >= policy.min_days and 0 < y.sum() < rows
    if not enough:
        need = f"{rows:,} of {policy.min_rows:,} rows, {days} of {policy.min_days} days with outcomes"
        if days >= policy.max_days:
            return "expire", f"undecided after {days} days ({need}): the champion stays", None
        return "wait", f"collecting live evidence: {need}", None
    ci = bootstrap_auc_difference(y, p_shadow, p_champion, policy.bootstrap_samples, groups=day_of_row)
    estimate, low, high = ci
    said = (
        f"on {rows:,} live events of {days} days, AUC(shadow) - AUC(champion) {estimate:+.4f} "
        f"(95% CI {low:+.4f} .. {high:+.4f}), margin {policy.margin:+.4f}"
    )
    if low > policy.margin:
        return ("promote" if policy.promote else "better"), f"shadow better {said}", ci
    if high < policy.margin:
        return "confirm", f"champion confirmed {said}", ci
    if days >= policy.max_days:
        return "expire", f"undecided after {days} days {said}: the champion stays", ci
    return "wait", f"undecided so far {said}", ci


def evidence(lake: Lake, champion: str, shadow: str) -> pd.DataFrame:
    """The pooled paired rows of this pair: ``champion`` answered, ``shadow`` logged."""
    frames = []
    for path in sorted((lake.root / "monitoring" / "shadow").glob("ds=*.parquet")):
        frame = pd.read_parquet(path)
        pair = (frame["model_version"].astype(str) == champion) & (
            frame["shadow_version"].astype(str) == shadow
        )
        if pair.any():
            frames.append(frame[pair.to_numpy()])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def judge_shadow(registry: ModelRegistry, use_case: UseCase, lake: Lake, who: str, at: str) -> dict[str, Any]:
    """Judge the current pair on its pooled live evidence and act on the verdict (see the module)."""
    from sklearn.metrics import roc_auc_score

    from airloop.registry import CHAMPION, SHADOW

    spec = use_case.model
    assert spec is not None
    policy = spec.shadow
    champion, shadow = registry.version_of(CHAMPION), registry.version_of(SHADOW)
    if not policy.enabled or champion is None or shadow is None or shadow == champion:
        if shadow is not None and shadow == champion:
            registry.clear_alias(SHADOW, who, f"v{shadow} is the champion", at)
        return asdict(LiveVerdict("none", "no shadow version to compare", champion, shadow))
    rows = evidence(lake, champion, shadow)
    y = rows["y"].to_numpy(dtype=np.int64) if len(rows) else np.zeros(0, dtype=np.int64)
    days = int(rows["ds"].nunique()) if len(rows) else 0
    p_champion = rows["probability"].to_numpy(dtype=np.float64) if len(rows) else np.zeros(0)
    p_shadow = rows["shadow_probability"].to_numpy(dtype=np.float64) if len(rows) else np.zeros(0)
    day_of_row = rows["ds"].astype(str).to_numpy() if len(rows) else None
    action, reason, ci = decide_live(y, p_champion, p_shadow, days, policy, day_of_row)
    both = len(y) and 0 < y.sum() < len(y)
    verdict = LiveVerdict(
        action,
        reason,
        champion,
        shadow,
        int(len(y)),
        days,
        float(roc_auc_score(y, p_champion)) if both else None,
        float(roc_auc_score(y, p_shadow)) if both else None,
        ci,
    )
    logger.info("shadow v%s vs champion v%s: %s - %s", shadow, champion, action, reason)
    if action == "wait":
        return asdict(verdict)
    for version, role in ((champion, "champion"), (shadow, "shadow")):
        registry.client.set_model_version_tag(
            use_case.model_name, version, "live.verdict", f"{action} ({role})"
        )
        registry.client.set_model_version_tag(use_case.model_name, version, "live.reason", reason[:5000])
    if action == "promote":
        registry.move_alias(CHAMPION, shadow, who, f"live evidence: {reason}", at)
        registry.clear_alias(SHADOW, who, f"promoted on live evidence over v{champion}", at)
    elif action in ("confirm", "expire"):
        registry.clear_alias(SHADOW, who, f"live evidence: {reason}", at)
    return asdict(verdict)
