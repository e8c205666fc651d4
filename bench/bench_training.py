"""Training time and quality: the PyTorch model beside the HistGradientBoosting baseline, same time split.

Train January-May 2013, test on June (the declared window ending 2013-07-01), features from Feast
historical retrieval. The lake is built once under .airloop/bench (ingestion + features, a few minutes)
and reused. For 5 seeds: the network early-stopped on the newest 15% of the training rows (what shipped
before issue 15) and the shipped recipe (then refit on all rows for the chosen epochs); the baseline fit
on the same two row sets. Prints seconds, samples/s, epochs and holdout ROC AUC mean ± sd side by side.

GPU: ``--datasets-only`` writes the training/holdout frames and the model's column lists to
``.airloop/bench/training`` (carry that folder to the GPU machine); there
``PYTHONPATH=include python3 bench/bench_training.py --from-datasets .airloop/bench/training --device cuda``
trains the same model on CUDA and on the CPU of that machine, side by side (no MLflow, no Feast needed).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
ROOT = Path(__file__).resolve().parents[1]
BENCH_HOME = ROOT / ".airloop" / "bench"


def bench_home(use_case: str = "flights") -> Path:
    """The bench state of a use case: ``.airloop/bench`` for flights, a folder under it for another."""
    return BENCH_HOME if use_case == "flights" else BENCH_HOME / use_case


def build_lake(first: str, last: str, use_case_name: str = "flights") -> None:
    """Ingest + features of ``first``..``last`` (inclusive) into the use case's bench lake (its declared
    replay data); days there are kept."""
    os.environ["AIRLOOP_HOME"] = str(bench_home(use_case_name))
    import warnings

    warnings.filterwarnings("ignore")
    from datetime import date

    from airloop.feature_pipeline import compute_days
    from airloop.ingest import ingest_day
    from airloop.intervals import day_range
    from airloop.resources import load_resources

    resources = load_resources(use_case=use_case_name)
    use_case, lake, source = resources.use_case, resources.lake, resources.source
    days = day_range(date.fromisoformat(first), date.fromisoformat(last))
    done = set(lake.validated_days())
    todo = [d for d in days if d.isoformat() not in done]
    for d in todo:
        ingest_day(use_case, source, lake, d)
    features = use_case.features
    first_view = features.groups[0].name
    featured = {p.name[3:] for p in (lake.root / "features" / first_view).glob("ds=*")}
    if todo or any(d.isoformat() not in featured for d in days):
        compute_days(use_case, lake, days)


def prepare(first: str, holdout_end: str) -> Path:
    """Ingest + features for the window into the bench lake (skipping days already there)."""
    from datetime import date, timedelta

    build_lake(first, (date.fromisoformat(holdout_end) - timedelta(days=1)).isoformat())
    import time

    from airloop.lake import Lake
    from airloop.settings import load_settings
    from airloop.training import TrainingWindow, build_datasets
    from airloop.usecases import load_use_case

    settings, use_case = load_settings(), load_use_case("flights")
    lake = Lake(settings.lake)
    spec = use_case.model
    window = TrainingWindow.ending(date.fromisoformat(holdout_end), spec.train_days, spec.holdout_days)
    t0 = time.perf_counter()
    built = build_datasets(settings, use_case, lake, window)
    built["retrieval_s"] = time.perf_counter() - t0
    out = BENCH_HOME / "training"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("train", "holdout"):
        lake.read_dataset("training", f"{window.key}/{name}").to_parquet(out / f"{name}.parquet", index=False)
    (out / "spec.json").write_text(
        json.dumps(
            {
                "categorical": spec.categorical,
                "numeric": spec.numeric,
                "monotone": spec.monotone_increasing,
                "hyperparameters": spec.hyperparameters,
                "label": use_case.label.name,
                "validation_fraction": spec.validation_fraction,
                **built,
            }
        )
    )
    return out


def run(folder: Path, devices: list[str], baseline: bool, seeds: list[int], overrides: dict) -> dict:
    """Per seed and device: the network early-stopped on the validation tail (fit rows only) and the
    shipped recipe (``fit_recipe``: the same, then refit on every training row for the chosen epochs);
    the baseline fit on the fit rows and on all rows (deterministic: one run each)."""
    import pandas as pd
    import torch

    from airloop.model.metrics import scores
    from airloop.model.train import fit_recipe, time_split, train

    spec = json.loads((folder / "spec.json").read_text())
    train_all = pd.read_parquet(folder / "train.parquet")
    holdout = pd.read_parquet(folder / "holdout.parquet")
    fit, valid = time_split(train_all, "event_timestamp", spec["validation_fraction"])
    y = holdout[spec["label"]].to_numpy()
    inputs = (spec["label"], spec["categorical"], spec["numeric"], spec["monotone"])
    rows: dict[str, list[dict]] = {}
    for device in devices:
        if device == "cuda" and not torch.cuda.is_available():
            continue
        where = f"{device}{', ' + torch.cuda.get_device_name() if device == 'cuda' else ''}"
        for seed in seeds:
            hp = {**spec["hyperparameters"], **overrides, "seed": seed}
            early = train(fit, valid, *inputs, hp, device=device)
            refit = fit_recipe(
                train_all, "event_timestamp", *inputs, hp, spec["validation_fraction"], True, device
            )
            for name, model in ((f"torch early-stopped ({where})", early), (f"torch refit ({where})", refit)):
                rows.setdefault(name, []).append(
                    {
                        "seed": seed,
                        "seconds": model.seconds,
                        "samples_per_s": model.samples_per_second,
                        "epochs": model.best_epochs,
                        "fit_rows": model.rows,
                        **scores(y, model.predict_proba(holdout)),
                    }
                )
    if baseline:
        from airloop.model.baseline import Baseline
        from airloop.model.preprocess import Preprocessor

        for name, frame in (("baseline fit rows", fit), ("baseline refit", train_all)):
            t0 = time.perf_counter()
            pre = Preprocessor(spec["categorical"], spec["numeric"], spec["monotone"]).fit(frame)
            base = Baseline(pre).fit(frame, spec["label"])
            seconds = time.perf_counter() - t0
            rows[f"{name} (HistGradientBoosting, cpu)"] = [
                {
                    "seed": 13,
                    "seconds": seconds,
                    "samples_per_s": len(frame) / seconds,
                    "epochs": 0,
                    "fit_rows": len(frame),
                    **scores(y, base.predict_proba(holdout)),
                }
            ]
    return {
        "train_rows": len(train_all),
        "fit_rows": len(fit),
        "valid_rows": len(valid),
        "holdout_rows": len(holdout),
        "retrieval_s": spec.get("retrieval_s"),
        "seeds": seeds,
        "hyperparameters": {**spec["hyperparameters"], **overrides},
        "rows": rows,
    }


def summary(runs: list[dict]) -> dict:
    import numpy as np

    auc = np.array([r["roc_auc"] for r in runs])
    return {
        "n": len(runs),
        "roc_auc_mean": float(auc.mean()),
        "roc_auc_sd": float(auc.std(ddof=1)) if len(runs) > 1 else 0.0,
        "roc_auc_min": float(auc.min()),
        "roc_auc_max": float(auc.max()),
        **{
            k: float(np.mean([r[k] for r in runs]))
            for k in ("seconds", "samples_per_s", "pr_auc", "log_loss", "brier", "fit_rows")
        },
        "epochs": sorted({r["epochs"] for r in runs}),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--first-day", default="2013-01-01")
    parser.add_argument("--holdout-end", default="2013-07-01")
    parser.add_argument("--datasets-only", action="store_true")
    parser.add_argument("--from-datasets", type=Path)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (trains on cuda and cpu side by side)")
    parser.add_argument("--seeds", default="13,1,2,3,4", help="comma-separated training seeds")
    parser.add_argument(
        "--set", action="append", default=[], help="override a hyperparameter: name=value (repeatable)"
    )
    args = parser.parse_args()
    folder = args.from_datasets or prepare(args.first_day, args.holdout_end)
    if args.datasets_only:
        print(folder)
        return
    devices = ["cuda", "cpu"] if args.device == "cuda" else ["cpu"]
    seeds = [int(x) for x in args.seeds.split(",")]
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    result = run(folder, devices, importlib.util.find_spec("sklearn") is not None, seeds, overrides)
    try:
        from _machine import machine

        where = machine()
    except ImportError:  # on the GPU machine only torch/pandas are there (PackageNotFoundError is one)
        import platform

        where = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(
        f"## Training: {result['train_rows']:,} training rows (Jan-May 2013; early stopping watches the last "
        f"{result['valid_rows']:,}), holdout {result['holdout_rows']:,} rows (June); seeds {seeds}\n"
    )
    print(
        f"Machine: {where}"
        + (
            f"; Feast retrieval of the training set {result['retrieval_s']:.1f} s"
            if result.get("retrieval_s")
            else ""
        )
        + "\n"
    )
    print(
        "| model | fit rows | train s | samples/s | epochs | ROC AUC mean ± sd (range) | PR AUC | log loss |"
    )
    print("|---|---:|---:|---:|---|---|---:|---:|")
    result["summary"] = {name: summary(runs) for name, runs in result["rows"].items()}
    for name, r in result["summary"].items():
        spread = (
            f" ± {r['roc_auc_sd']:.4f} ({r['roc_auc_min']:.4f}-{r['roc_auc_max']:.4f})" if r["n"] > 1 else ""
        )
        print(
            f"| {name} | {r['fit_rows']:,.0f} | {r['seconds']:.1f} | {r['samples_per_s']:,.0f} "
            f"| {','.join(map(str, r['epochs'])) or '-'} | {r['roc_auc_mean']:.4f}{spread} "
            f"| {r['pr_auc']:.4f} | {r['log_loss']:.4f} |"
        )
    shipped = result["summary"].get("torch refit (cpu)")
    base = result["summary"].get("baseline refit (HistGradientBoosting, cpu)")
    if shipped and base:
        gap = shipped["roc_auc_mean"] - base["roc_auc_mean"]
        met = gap >= -0.005 and shipped["roc_auc_sd"] <= 0.004
        print(
            f"\ntorch refit (mean of {shipped['n']} seeds) - refit baseline ROC AUC = {gap:+.4f}, seed sd "
            f"{shipped['roc_auc_sd']:.4f} (issue 15 target: >= -0.005 and sd <= 0.004: "
            f"{'met' if met else 'NOT met'})"
        )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "training.json").write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
