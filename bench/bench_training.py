"""Training time and quality: the PyTorch model beside the HistGradientBoosting baseline, same time split.

Train January-May 2013, test on June (the declared window ending 2013-07-01), features from Feast
historical retrieval. The lake is built once under .airloop/bench (ingestion + features, a few minutes)
and reused. Prints seconds, samples/s and holdout ROC AUC / PR AUC / log loss / Brier side by side.

GPU: ``--datasets-only`` writes the training/holdout frames and the model's column lists to
``.airloop/bench/training`` (carry that folder to the GPU machine); there
``PYTHONPATH=include python3 bench/bench_training.py --from-datasets .airloop/bench/training --device cuda``
trains the same model on CUDA and on the CPU of that machine, side by side (no MLflow, no Feast needed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
ROOT = Path(__file__).resolve().parents[1]
BENCH_HOME = ROOT / ".airloop" / "bench"


def prepare(first: str, holdout_end: str) -> Path:
    """Ingest + features for the window into the bench lake (skipping days already there)."""
    os.environ["AIRLOOP_HOME"] = str(BENCH_HOME)
    import warnings

    warnings.filterwarnings("ignore")
    from datetime import date, timedelta

    from airloop.feature_pipeline import compute_days
    from airloop.ingest import ingest_day
    from airloop.intervals import day_range
    from airloop.lake import Lake
    from airloop.settings import PROJECT_ROOT, load_settings
    from airloop.sources import ReplaySource
    from airloop.training import TrainingWindow, build_datasets
    from airloop.usecases import load_use_case

    settings, use_case = load_settings(), load_use_case("flights")
    lake = Lake(settings.lake)
    days = day_range(date.fromisoformat(first), date.fromisoformat(holdout_end) - timedelta(days=1))
    source = ReplaySource(PROJECT_ROOT / "include" / "data" / "nycflights13")
    done = set(lake.validated_days())
    todo = [d for d in days if d.isoformat() not in done]
    for d in todo:
        ingest_day(use_case, source, lake, d)
    if todo or not (lake.root / "features").exists():
        compute_days(use_case, lake, days)
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


def run(folder: Path, devices: list[str], baseline: bool) -> dict:
    import pandas as pd
    import torch

    from airloop.model.metrics import scores
    from airloop.model.train import time_split, train

    spec = json.loads((folder / "spec.json").read_text())
    train_all = pd.read_parquet(folder / "train.parquet")
    holdout = pd.read_parquet(folder / "holdout.parquet")
    fit, valid = time_split(train_all, "event_timestamp", spec["validation_fraction"])
    y = holdout[spec["label"]].to_numpy()
    rows = {}
    for device in devices:
        if device == "cuda" and not torch.cuda.is_available():
            continue
        model = train(
            fit,
            valid,
            spec["label"],
            spec["categorical"],
            spec["numeric"],
            spec["monotone"],
            spec["hyperparameters"],
            device=device,
        )
        name = f"torch ({device}{', ' + torch.cuda.get_device_name() if device == 'cuda' else ''})"
        rows[name] = {
            "seconds": model.seconds,
            "samples_per_s": model.samples_per_second,
            "epochs": len(model.history),
            **scores(y, model.predict_proba(holdout)),
        }
    if baseline:
        from airloop.model.baseline import Baseline
        from airloop.model.preprocess import Preprocessor

        t0 = time.perf_counter()
        pre = Preprocessor(spec["categorical"], spec["numeric"], spec["monotone"]).fit(fit)
        base = Baseline(pre).fit(fit, spec["label"])
        seconds = time.perf_counter() - t0
        rows["baseline (HistGradientBoosting, cpu)"] = {
            "seconds": seconds,
            "samples_per_s": len(fit) / seconds,
            "epochs": 0,
            **scores(y, base.predict_proba(holdout)),
        }
    return {
        "train_rows": len(fit),
        "valid_rows": len(valid),
        "holdout_rows": len(holdout),
        "retrieval_s": spec.get("retrieval_s"),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--first-day", default="2013-01-01")
    parser.add_argument("--holdout-end", default="2013-07-01")
    parser.add_argument("--datasets-only", action="store_true")
    parser.add_argument("--from-datasets", type=Path)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (trains on cuda and cpu side by side)")
    args = parser.parse_args()
    folder = args.from_datasets or prepare(args.first_day, args.holdout_end)
    if args.datasets_only:
        print(folder)
        return
    devices = ["cuda", "cpu"] if args.device == "cuda" else ["cpu"]
    result = run(folder, devices, baseline=args.from_datasets is None)
    try:
        from _machine import machine

        where = machine()
    except ImportError:  # on the GPU machine only torch/pandas are there (PackageNotFoundError is one)
        import platform

        where = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(
        f"## Training: train {result['train_rows']:,} + validation {result['valid_rows']:,} rows "
        f"(Jan-May 2013), holdout {result['holdout_rows']:,} rows (June)\n"
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
    print("| model | train s | samples/s | epochs | ROC AUC | PR AUC | log loss | Brier |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in result["rows"].items():
        print(
            f"| {name} | {r['seconds']:.1f} | {r['samples_per_s']:,.0f} | {r['epochs']} "
            f"| {r['roc_auc']:.4f} | {r['pr_auc']:.4f} | {r['log_loss']:.4f} | {r['brier']:.4f} |"
        )
    torch_auc = [r["roc_auc"] for n, r in result["rows"].items() if n.startswith("torch (cpu")]
    base_auc = [r["roc_auc"] for n, r in result["rows"].items() if n.startswith("baseline")]
    if torch_auc and base_auc:
        gap = torch_auc[0] - base_auc[0]
        print(
            f"\ntorch - baseline ROC AUC = {gap:+.4f} "
            f"(target >= -0.01: {'met' if gap >= -0.01 else 'NOT met'})"
        )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "training.json").write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
