"""Training, evaluation and promotion of the use case's model, callable from Airflow tasks and the CLI.

Each step reads and writes through the lake (datasets keyed on the training window) and the MLflow
tracking store, so a step can be re-run on its own. Times written to MLflow tags ("at") come from the
caller (the DAG run's logical date), never from the clock.
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from airloop.lake import Lake
from airloop.settings import PROJECT_ROOT, Settings
from airloop.usecase import UseCase

logger = logging.getLogger(__name__)

TIME = "event_timestamp"


@dataclass(frozen=True)
class TrainingWindow:
    """Train on ``[train_start, holdout_start)``, judge on the most recent labeled period
    ``[holdout_start, holdout_end)`` (end exclusive; local days of the use case)."""

    train_start: date
    holdout_start: date
    holdout_end: date

    @property
    def key(self) -> str:
        return f"{self.train_start}_{self.holdout_start}_{self.holdout_end}"

    @classmethod
    def ending(cls, end: date, train_days: int, holdout_days: int) -> TrainingWindow:
        holdout_start = end - timedelta(days=holdout_days)
        return cls(holdout_start - timedelta(days=train_days), holdout_start, end)

    def as_dict(self) -> dict[str, str]:
        return {k: v.isoformat() for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, str]) -> TrainingWindow:
        return cls(*(date.fromisoformat(d[k]) for k in ("train_start", "holdout_start", "holdout_end")))


def _local_days(frame: pd.DataFrame, use_case: UseCase) -> pd.Series:
    """The use case's local calendar day of each row's event time (a day is a data interval)."""
    return pd.to_datetime(frame[TIME], utc=True).dt.tz_convert(use_case.timezone).dt.date


def data_end(tags: dict[str, str]) -> date | None:
    """The first local day a registered version has NOT trained on: its ``airloop.data_end`` tag, else
    (versions registered before deploy-through-newest, trained without their holdout) its holdout start."""
    if tags.get("airloop.data_end"):
        return date.fromisoformat(tags["airloop.data_end"])
    if tags.get("airloop.window"):
        return date.fromisoformat(json.loads(tags["airloop.window"])["holdout_start"])
    return None


def plan_window(
    use_case: UseCase,
    end: date,
    champion_end: date | None,
    train_days: int | None = None,
    holdout_days: int | None = None,
) -> TrainingWindow:
    """The window of a training ending ``end`` (exclusive): the holdout is the newest labelled days the
    champion never trained on (from ``champion_end``) - all of them but the ``judged_new_share`` the judged
    network trains on - at most ``holdout_days`` and at least ``min_holdout_days`` (then the champion saw
    part of it: recorded, and the comparison favours the champion); training days come before it.
    Without a champion: the last ``holdout_days``."""
    spec = use_case.model
    assert spec is not None
    train_days = train_days or spec.train_days
    holdout_days = holdout_days or spec.holdout_days
    newest = holdout_days
    if champion_end is not None:
        unseen = (end - champion_end).days
        judged_new = int(unseen * spec.judged_new_share)
        newest = max(min(holdout_days, unseen - judged_new), min(spec.min_holdout_days, holdout_days))
    holdout_start = end - timedelta(days=newest)
    return TrainingWindow(holdout_start - timedelta(days=train_days), holdout_start, end)


def champion_data_end(settings: Settings, use_case: UseCase) -> date | None:
    """``data_end`` of the current champion (None without one)."""
    from airloop.registry import CHAMPION, open_registry

    registry = open_registry(settings, use_case)
    version = registry.version_of(CHAMPION)
    return None if version is None else data_end(registry.version(version).tags)


def _days(first: date, end_exclusive: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((end_exclusive - first).days)]


def build_datasets(
    settings: Settings, use_case: UseCase, lake: Lake, window: TrainingWindow
) -> dict[str, Any]:
    """Point-in-time training and holdout frames (Feast historical retrieval) written to the lake."""
    from airloop.featurestore import open_store, training_set

    available = set(lake.validated_days())
    days = [d for d in _days(window.train_start, window.holdout_end) if d in available]
    if not days:
        raise ValueError(f"no validated days in the training window {window.as_dict()}")
    events = lake.read_validated(use_case.primary_source, days)
    spec = use_case.model
    if spec is None:
        raise ValueError(f"use case {use_case.name} declares no model (UseCase.model)")
    carry = list(dict.fromkeys([*use_case.logged_columns(), *spec.invariant_inputs, *use_case.slice_columns]))
    frame = training_set(open_store(settings, use_case), use_case, events, carry=carry)
    local = _local_days(frame, use_case)
    train = frame[local < window.holdout_start].reset_index(drop=True)
    holdout = frame[local >= window.holdout_start].reset_index(drop=True)
    if len(train) == 0 or len(holdout) == 0:
        raise ValueError(f"empty split: {len(train)} training rows, {len(holdout)} holdout rows")
    lake.write_dataset("training", f"{window.key}/train", train)
    lake.write_dataset("training", f"{window.key}/holdout", holdout)
    logger.info("training set %s: %d train rows, %d holdout rows", window.key, len(train), len(holdout))
    return {
        "window": window.as_dict(),
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        "days": len(days),
    }


def mlflow_experiment(settings: Settings, use_case: UseCase, name: str) -> str:
    """Open the use case's tracking store; return the id of experiment ``name``, created if needed with
    its artifacts under the state folder when local (else the tracking server's default artifact root)."""
    import mlflow

    from airloop.registry import open_registry

    open_registry(settings, use_case)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = settings.artifact_root
    return mlflow.create_experiment(name, artifact_location=location)


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def train_and_register(
    settings: Settings,
    use_case: UseCase,
    lake: Lake,
    window: TrainingWindow,
    hyperparameters: dict[str, Any],
    lineage: dict[str, str],
    at: str,
) -> dict[str, Any]:
    """Judge the recipe, then ship it trained on everything.

    The network (``fit_recipe``) and the baseline are trained on the window's training rows and scored on
    its holdout (the *judged* run: its model is what the gate compares with the champion). With
    ``deploy_through_newest`` the same recipe is trained again on training + holdout rows and that network
    is registered as the new version (alias ``challenger``; tags: the judged run, the judged holdout
    metrics, ``airloop.data_end``); otherwise the judged network itself is registered."""
    import mlflow

    from airloop.model.baseline import Baseline
    from airloop.model.metrics import calibration, daily_roc_auc, scores, slice_metrics
    from airloop.model.pyfunc import log_model
    from airloop.model.train import fit_recipe, recency_weights, time_split
    from airloop.registry import CHALLENGER, open_registry

    spec = use_case.model
    assert spec is not None and use_case.features is not None
    label = use_case.label.name
    train_all = lake.read_dataset("training", f"{window.key}/train")
    holdout = lake.read_dataset("training", f"{window.key}/holdout")
    hp = {**spec.hyperparameters, **hyperparameters}

    def recipe(frame: pd.DataFrame) -> Any:
        return fit_recipe(
            frame,
            TIME,
            label,
            spec.categorical,
            spec.numeric,
            spec.monotone_increasing,
            hp,
            spec.validation_fraction,
            spec.refit,
        )

    model = recipe(train_all)
    y = holdout[label].to_numpy()
    p = model.predict_proba(holdout)
    torch_metrics = scores(y, p)
    # what live monitoring compares with (ModelSpec.live_measure): the holdout's AUC day by day (tagged
    # beside the pooled one, airloop.holdout_roc_auc)
    daily_auc = daily_roc_auc(y, p, _local_days(holdout, use_case).to_numpy())
    if daily_auc is not None:
        torch_metrics["daily_roc_auc"] = daily_auc
    # The baseline on the rows the network's weights saw (all of them when refit), same preprocessing.
    fit_rows = train_all if spec.refit else time_split(train_all, TIME, spec.validation_fraction)[0]
    weights = recency_weights(fit_rows[TIME], float(model.hyperparameters["recency_half_life_days"]))
    baseline = Baseline(model.pre, seed=int(hp.get("seed", 13))).fit(fit_rows, label, weights)
    base_metrics = scores(y, baseline.predict_proba(holdout))
    experiment = mlflow_experiment(settings, use_case, f"airloop-{use_case.name}")
    tags = {
        "airloop.use_case": use_case.name,
        "airloop.window": json.dumps(window.as_dict()),
        "airloop.train_rows": str(len(train_all)),
        "airloop.holdout_rows": str(len(holdout)),
        "airloop.feature_service": use_case.features.service,
        "airloop.git_commit": git_commit(),
        **lineage,
    }
    with mlflow.start_run(experiment_id=experiment, run_name=f"baseline {window.key}") as run:
        mlflow.set_tags({**tags, "airloop.model_kind": "baseline-hgb"})
        mlflow.log_params({"model": "HistGradientBoostingClassifier", **window.as_dict()})
        mlflow.log_metrics({f"holdout_{k}": v for k, v in base_metrics.items()})
        baseline_run = run.info.run_id

    def log_network(name: str, net: Any, extra_tags: dict[str, str], trained_on: pd.DataFrame | None) -> Any:
        """One MLflow run holding a trained network as a pyfunc model and, for the network that will be
        registered (``trained_on`` its rows), the drift reference profile."""
        from airloop.model.profile import reference_profile

        with mlflow.start_run(experiment_id=experiment, run_name=f"{name} {window.key}") as run:
            mlflow.set_tags(
                {
                    **tags,
                    "airloop.model_kind": "torch-tabular",
                    "airloop.baseline_run_id": baseline_run,
                    "airloop.fit_rows": str(net.rows),
                    **extra_tags,
                }
            )
            mlflow.log_params(
                {
                    **net.hyperparameters,
                    **window.as_dict(),
                    "device": net.device,
                    "threshold": net.threshold,
                    "refit": spec.refit,
                    "best_epochs": net.best_epochs,
                    "fit_rows": net.rows,
                    "validation_fraction": spec.validation_fraction,
                }
            )
            for row in net.history:
                mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])
            mlflow.log_metrics({f"holdout_{k}": v for k, v in torch_metrics.items()})
            mlflow.log_metrics({f"baseline_holdout_{k}": v for k, v in base_metrics.items()})
            mlflow.log_metrics(
                {"train_seconds": net.seconds, "train_samples_per_second": net.samples_per_second}
            )
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                _log_reports(folder, holdout, y, p, use_case.slice_columns, calibration, slice_metrics)
                if trained_on is not None:  # the judged network of a deployed recipe never serves
                    profile = reference_profile(
                        trained_on,
                        spec.categorical,
                        spec.numeric,
                        net.predict_proba(trained_on),
                        {c: g.per for g in use_case.drift.shared for c in g.inputs},
                    )
                    (folder / "reference_profile.json").write_text(json.dumps(profile))
                    mlflow.log_artifact(str(folder / "reference_profile.json"))
                info = log_model(net, holdout.head(5), folder / "model_files")
            return run.info.run_id, info

    judged_run, judged_info = log_network(
        "torch",
        model,
        {"airloop.role": "judged" if spec.deploy_through_newest else "deployed"},
        None if spec.deploy_through_newest else train_all,
    )
    shipped, run_id, info, end = model, judged_run, judged_info, window.holdout_start
    if spec.deploy_through_newest:
        everything = pd.concat([train_all, holdout], ignore_index=True).sort_values(TIME, kind="stable")
        shipped = recipe(everything.reset_index(drop=True))
        end = window.holdout_end
        run_id, info = log_network(
            "torch deployed",
            shipped,
            {
                "airloop.role": "deployed",
                "airloop.judged_run_id": judged_run,
                "airloop.judged_model_uri": judged_info.model_uri,
                "airloop.data_end": end.isoformat(),
            },
            everything,
        )
    registry = open_registry(settings, use_case)
    version = registry.register(
        info.model_uri,
        run_id,
        {
            "airloop.window": json.dumps(window.as_dict()),
            "airloop.holdout_roc_auc": f"{torch_metrics['roc_auc']:.5f}",
            **({"airloop.holdout_daily_roc_auc": f"{daily_auc:.5f}"} if daily_auc is not None else {}),
            "airloop.data_end": end.isoformat(),
            "airloop.judged_run_id": judged_run,
            "airloop.judged_model_uri": judged_info.model_uri,
            **{k: v[:5000] for k, v in lineage.items()},
        },
        model_id=info.model_id,
    )
    registry.move_alias(CHALLENGER, version, lineage.get("airloop.triggered_by", "cli"), "newly trained", at)
    return {
        "version": version,
        "run_id": run_id,
        "judged_run_id": judged_run,
        "baseline_run_id": baseline_run,
        "metrics": torch_metrics,
        "baseline_metrics": base_metrics,
        "window": window.as_dict(),
        "data_end": end.isoformat(),
        "train_rows": len(train_all),
        "fit_rows": shipped.rows,
        "best_epochs": model.best_epochs,
        "train_seconds": model.seconds + (shipped.seconds if shipped is not model else 0.0),
        "samples_per_second": model.samples_per_second,
        "device": model.device,
    }


def _log_reports(
    folder: Path,
    holdout: pd.DataFrame,
    y: np.ndarray,
    p: np.ndarray,
    slices: list[str],
    calibration: Any,
    slice_metrics: Any,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow

    curve = calibration(y, p)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.plot(curve.predicted, curve.observed, "o-")
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed positive rate")
    ax.set_title("calibration (holdout)")
    fig.tight_layout()
    fig.savefig(folder / "calibration.png", dpi=100)
    plt.close(fig)
    curve.to_csv(folder / "calibration.csv", index=False)
    for column in slices:
        slice_metrics(holdout, y, p, column).to_csv(folder / f"slices_{column}.csv", index=False)
    for name in ("calibration.png", "calibration.csv", *(f"slices_{column}.csv" for column in slices)):
        mlflow.log_artifact(str(folder / name), artifact_path="evaluation")


def evaluate_and_decide(
    settings: Settings, use_case: UseCase, lake: Lake, window: TrainingWindow, version: str
) -> dict[str, Any]:
    """Score challenger and champion on the SAME holdout, run the behaviour tests, decide."""

    from airloop.model.behaviour import run_all
    from airloop.model.gate import decide
    from airloop.model.metrics import bootstrap_auc_difference, scores
    from airloop.model.pyfunc import RegisteredModel
    from airloop.registry import CHAMPION, open_registry

    spec = use_case.model
    assert spec is not None
    registry = open_registry(settings, use_case)
    holdout = lake.read_dataset("training", f"{window.key}/holdout")
    y = holdout[use_case.label.name].to_numpy()
    tags = registry.version(version).tags
    # The gate judges the recipe: the network trained before the holdout (the version itself when it was
    # not retrained through the holdout); the behaviour tests check the network that will serve.
    trust = settings.allow_pickled_models
    predict = RegisteredModel(f"models:/{use_case.model_name}/{version}", version, trust).probability
    judged_uri = tags.get("airloop.judged_model_uri")
    p_new = (RegisteredModel(judged_uri, None, trust).probability if judged_uri else predict)(holdout)
    champion_version = registry.version_of(CHAMPION)
    champion_auc, ci = None, None
    overlap = 0
    if champion_version is not None and champion_version != version:
        champion = f"models:/{use_case.model_name}/{champion_version}"
        p_old = RegisteredModel(champion, champion_version, trust).probability(holdout)
        seen = data_end(registry.version(champion_version).tags)
        overlap = max(0, (seen - window.holdout_start).days) if seen else 0
        champion_auc = scores(y, p_old)["roc_auc"]
        # resampling whole days of the holdout: a day's flights share its weather (not independent rows)
        day_of_row = _local_days(holdout, use_case).astype(str)
        ci = bootstrap_auc_difference(y, p_new, p_old, spec.bootstrap_samples, groups=day_of_row.to_numpy())
    sample = holdout.sample(min(500, len(holdout)), random_state=0).reset_index(drop=True)
    behaviour = run_all(predict, sample, spec)
    new_auc = scores(y, p_new)["roc_auc"]
    decision = decide(new_auc, champion_auc, ci, behaviour, spec)
    run_id = registry.version(version).run_id
    client = registry.client
    client.log_metric(run_id, "gate_challenger_roc_auc", new_auc)
    if champion_auc is not None and ci is not None:
        client.log_metric(run_id, "gate_champion_roc_auc", champion_auc)
        client.log_metric(run_id, "gate_auc_diff_low", ci[1])
        client.log_metric(run_id, "gate_auc_diff_high", ci[2])
    if overlap:
        # the champion trained on part of the holdout: the comparison favours it (kept, and said)
        client.set_model_version_tag(use_case.model_name, version, "gate.champion_saw_days", str(overlap))
    client.set_model_version_tag(use_case.model_name, version, "gate.verdict", decision.verdict)
    client.set_model_version_tag(use_case.model_name, version, "gate.reason", decision.reason[:5000])
    client.set_model_version_tag(
        use_case.model_name, version, "gate.behaviour", json.dumps([b.__dict__ for b in behaviour])[:5000]
    )
    logger.info("gate for v%s: %s - %s", version, decision.verdict, decision.reason)
    return {
        "version": version,
        "champion_version": champion_version,
        "challenger_auc": new_auc,
        "champion_auc": champion_auc,
        "auc_diff_ci": ci,
        "promote": decision.promote,
        "verdict": decision.verdict,
        "reason": decision.reason,
        "behaviour": [b.__dict__ for b in behaviour],
        "champion_saw_days": overlap,
    }


def promote(
    settings: Settings, use_case: UseCase, verdict: dict[str, Any], who: str, at: str
) -> dict[str, Any]:
    """Move ``champion`` to the challenger when the gate said so; otherwise record why it stays. With
    shadow evaluation (``ModelSpec.shadow``) the other candidate keeps being scored on live traffic: the
    replaced champion after a promotion, the challenger kept out only by its holdout score otherwise
    (never one that failed a behaviour test or the minimum)."""
    from airloop.model.gate import SHADOW_WHEN_KEPT
    from airloop.registry import CHAMPION, SHADOW, open_registry

    spec = use_case.model
    assert spec is not None
    registry = open_registry(settings, use_case)
    version = verdict["version"]
    if not verdict["promote"]:
        registry.client.set_model_version_tag(
            use_case.model_name,
            version,
            "promotion",
            f"kept v{verdict['champion_version']}: {verdict['reason']}"[:5000],
        )
        shadow = None
        if spec.shadow.enabled and verdict["verdict"] in SHADOW_WHEN_KEPT and verdict["champion_version"]:
            shadow = registry.move_alias(
                SHADOW,
                version,
                who,
                f"kept out by the holdout gate ({verdict['reason']}); live traffic "
                f"compares it with v{verdict['champion_version']}",
                at,
            ).version
        return {
            "champion": verdict["champion_version"],
            "promoted": False,
            "reason": verdict["reason"],
            "shadow": shadow,
        }
    move = registry.move_alias(CHAMPION, version, who, f"{verdict['verdict']}: {verdict['reason']}", at)
    shadow = None
    if spec.shadow.enabled and move.previous is not None and move.previous != version:
        why = f"replaced by v{version}; live traffic compares them"
        shadow = registry.move_alias(SHADOW, move.previous, who, why, at).version
    elif registry.version_of(SHADOW) == version:
        registry.clear_alias(SHADOW, who, f"v{version} is the champion", at)
    return {
        "champion": move.version,
        "previous": move.previous,
        "promoted": True,
        "reason": verdict["reason"],
        "shadow": shadow,
    }
