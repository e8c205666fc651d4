"""Recency weighting (issue 15): does weighting newer days more lift a retrain on the weeks after it?

For each retrain day D, the declared recipe (``fit_recipe``) is trained on all history before D with the
rows weighted ``0.5 ** (age / half-life)`` (``recency_half_life_days``; 0: every row alike, the declared
default) and scored on the next ``--following`` days of outcomes: pooled ROC AUC and ROC AUC day by day
(``metrics.daily_roc_auc``, as ``live_feedback`` measures it). The rows and fits are the year-long
replay's (``bench_loop_replay.Trainer``: its point-in-time features, its fit cache - a half-life of 0
shares the replay's fits).

    python bench/bench_recency.py --hp '{"members": 1}' --half-lives 0,90 \
        --days 2013-06-01,2013-07-29,2013-08-26,2013-09-23,2013-10-21,2013-11-18
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

logger = logging.getLogger("bench.recency")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--use-case", default="flights")
    parser.add_argument("--hp", default="{}", help="JSON overrides of the declared hyperparameters")
    parser.add_argument("--half-lives", default="0,90", help="days; 0 = rows alike")
    parser.add_argument(
        "--days",
        default="2013-06-01,2013-07-29,2013-08-26,2013-09-23,2013-10-21,2013-11-18",
        help="retrain days (each model trains on all history before it)",
    )
    parser.add_argument("--following", type=int, default=28, help="days of outcomes each model is scored on")
    parser.add_argument("--out", default=None, help="results JSON (default: under the bench state)")
    args = parser.parse_args()
    from _machine import machine as describe
    from bench_loop_replay import Calendar, Trainer, prepare, served_rows

    from airloop.model.metrics import daily_roc_auc, scores

    use_case = prepare(args.use_case)
    calendar = Calendar.of(use_case)
    rows = served_rows(use_case)
    y = rows[use_case.label.name].to_numpy(dtype=np.int64)
    days = rows["day"].to_numpy()
    base_hp = json.loads(args.hp)
    half_lives = [float(h) for h in args.half_lives.split(",")]
    retrain_days = [date.fromisoformat(d) for d in args.days.split(",")]
    table: dict[float, list[dict]] = {}
    for half_life in half_lives:
        hp = {**base_hp, "recency_half_life_days": half_life} if half_life else base_hp
        trainer = Trainer(rows, use_case, hp, None)
        for day in retrain_days:
            model = trainer.fit(calendar.year_start, day)
            after = trainer.span(day, day + timedelta(days=args.following))
            p = trainer.scores(model, after)
            row = {
                "day": str(day),
                "pooled_roc_auc": round(scores(y[after], p)["roc_auc"], 4),
                "daily_roc_auc": round(daily_roc_auc(y[after], p, days[after]) or float("nan"), 4),
                "epochs": model.epochs,
                "seconds": round(model.seconds, 1),
            }
            table.setdefault(half_life, []).append(row)
            logger.info("half-life %g, %s: %s", half_life, day, row)
    print(f"\n{describe()}\n")
    print("| half-life (days) | " + " | ".join(f"{d:%m-%d}" for d in retrain_days) + " | mean | vs alike |")
    print("|---|" + "---:|" * (len(retrain_days) + 2))
    measures = ("daily_roc_auc", "pooled_roc_auc")
    alike = {m: float(np.mean([r[m] for r in table[0.0]])) for m in measures} if 0.0 in table else None
    for half_life, results in table.items():
        for measure in measures:
            values = [r[measure] for r in results]
            mean = float(np.mean(values))
            delta = f"{mean - alike[measure]:+.4f}" if alike else "-"
            name = f"{f'{half_life:g}' if half_life else 'alike'} ({measure.split('_')[0]})"
            print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in values) + f" | {mean:.4f} | {delta} |")
    out = Path(args.out) if args.out else calendar.home / "recency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": describe(),
                "hp": base_hp,
                "following": args.following,
                "table": {str(k): v for k, v in table.items()},
            },
            indent=1,
        )
    )
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
