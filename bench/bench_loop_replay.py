"""The year-long replay (issue 15): does the closed loop pay for itself?

2013 is replayed from July to December through the library calls the DAGs make, without Airflow: every
day's flights are served (scored) by the policy's champion of that day with their point-in-time features,
their outcomes land at the end of the day, and the policy may retrain before the next day is served.
Policies, all starting from the same champion trained January-May:

- ``static``: never retrained (a);
- ``4-weekly``: ``train_model`` every 28 days, judged by the promotion gate (b);
- ``closed-loop``: ``drift_monitor``'s decision (``DriftEngine`` against the champion's reference profile,
  the performance trigger, cooldown; windows of ``drift.new_rows`` served rows) triggers the retrain,
  the gate decides what serves (c);
- ``weekly``: a retrain every 7 days promoted unconditionally (d);

the gated policies keep the declared shadow evaluation (``shadow.decide_live`` on the pair's pooled live
outcomes, judged daily as ``live_feedback`` does). Each of (b)-(d) runs with a trailing window
(``--trailing-days``, 150: the platform default) and with all history since January (``--windows``;
``declared``: the use case's ``train_days``). A retrain at day D is
``training.plan_window`` (the holdout: the newer half of the labelled days the champion never saw) +
``fit_recipe`` (the declared network) for the judged model on the training days and the deployed one
through D-1, the gate ``model.gate.decide`` on the paired bootstrap + the behaviour tests - what
``train_model`` does.

Printed: live ROC AUC per month on the same served rows as the use case declares it
(``ModelSpec.live_measure``: flights ``daily``, each day's AUC - a day is served by one version - averaged
over the month, weighted by rows; grid_peak ``pooled``, the month's rows ranked together; the other
measure beside it), mean monthly ROC AUC, retrains, promotions and training seconds per policy; issue
15's targets for the closed loop; every gated retrain's verdict beside what it and the replaced champion then
scored on the next 28 days of outcomes (promotions should win, rejections should have lost), with the
95% interval of that difference over resampled days (an interval across 0: a tie); a PNG of
monthly AUC per policy; results JSON. Features come from one Feast historical retrieval of every 2013
flight; each training is cached by its days under ``.airloop/bench/replay`` (policies share them; a
re-run only trains what is missing). Simplifications, said: a retrain takes no served time (the day after
the decision is served by its result); the drift check runs at the start of a day on whole served days.

Another use case (``--use-case grid_peak``): its year (``start_date``..``end_date``), the static champion
on its demo history but the last month, live from the day after the demo's history (``Calendar``); its
state under ``.airloop/bench/<use case>``, its plot ``bench/loop_replay_<use case>.png``.

    python bench/bench_loop_replay.py                    # the full grid (hours on 2 cores: see --runs)
    python bench/bench_loop_replay.py --use-case grid_peak   # the full grid, ~3 min on 2 idle cores
    # what session 20 ran: single networks of the declared recipe (~1 min a fit on 2 cores)
    python bench/bench_loop_replay.py --hp '{"members": 1}' \
        --runs closed-loop:all,4-weekly:all,4-weekly:trailing
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_training import bench_home, build_lake

logger = logging.getLogger("bench.replay")
TIME = "event_timestamp"
FOLLOWING_DAYS = 28  # a retrain is judged afterwards on this many days of outcomes
MIN_FOLLOWING_DAYS = 7  # ... and not at all with fewer left in the replay (a retrain on December 31)
POLICIES = ("static", "4-weekly", "closed-loop", "weekly")


@dataclass(frozen=True)
class Calendar:
    """The replayed year of a use case, from its declaration: the history its demo trains on is followed
    by live days to the end of the data (flights: 2013, the static champion trains on January-May - the
    demo's v1 - and July-December is replayed)."""

    name: str
    year_start: date
    year_end: date
    """First day not in the data."""
    static_end: date
    """The static champion trains on ``[year_start, static_end)``: the demo's history but its last month."""
    live_start: date
    predict_from: date
    """Models are scored on every row from here (every holdout starts on or after ``static_end``)."""

    @classmethod
    def of(cls, use_case: Any) -> Calendar:
        demo = use_case.demo
        if demo is None or use_case.end_date is None:
            raise ValueError(f"{use_case.name} declares no demo span or end date: nothing to replay")
        live_start = demo.last_day + timedelta(days=1)
        static_end = date(demo.last_day.year, demo.last_day.month, 1)
        return cls(
            use_case.name,
            use_case.start_date,
            use_case.end_date + timedelta(days=1),
            static_end,
            live_start,
            max(use_case.start_date, static_end - timedelta(days=31)),
        )

    @property
    def home(self) -> Path:
        return bench_home(self.name) / "replay"


def served_rows(use_case: Any) -> pd.DataFrame:
    """Every event of the replayed year (flights: 2013) with its point-in-time features (Feast historical
    retrieval, as ``build_datasets`` builds a training set: what the service computes at request time),
    the label and the logged columns; sorted by event time, with the local ``day``. Cached."""
    calendar = Calendar.of(use_case)
    path = calendar.home / "rows.parquet"
    if path.exists():
        return pd.read_parquet(path)
    build_lake(
        calendar.year_start.isoformat(), (calendar.year_end - timedelta(days=1)).isoformat(), use_case.name
    )
    from airloop.featurestore import open_store, training_set
    from airloop.lake import Lake
    from airloop.settings import load_settings

    settings = load_settings()
    lake, store, spec = Lake(settings.lake), open_store(settings, use_case), use_case.model
    carry = list(dict.fromkeys([*use_case.logged_columns(), *spec.invariant_inputs, *use_case.slice_columns]))
    frames, started = [], time.perf_counter()
    first = calendar.year_start
    while first < calendar.year_end:
        last = min(calendar.year_end, date(first.year + first.month // 12, first.month % 12 + 1, 1))
        days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days)]
        events = lake.read_validated(use_case.primary_source, days)
        frames.append(training_set(store, use_case, events, carry=carry))
        logger.info("features of %s: %d rows", first.strftime("%Y-%m"), len(frames[-1]))
        first = last
    rows = pd.concat(frames, ignore_index=True)
    rows = rows[rows[use_case.label.name].notna()].sort_values(TIME, kind="stable").reset_index(drop=True)
    rows["day"] = pd.to_datetime(rows[TIME]).dt.tz_convert(use_case.timezone).dt.date
    path.parent.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(path, index=False)
    logger.info("%d events, one retrieval: %.0f s", len(rows), time.perf_counter() - started)
    return rows


@dataclass
class Fitted:
    """A ``fit_recipe`` network trained on the local days ``[start, end)``, scored on every row from
    the calendar's ``predict_from``; ``profile``: its drift reference profile (deployed models)."""

    start: date
    end: date
    p: np.ndarray
    seconds: float
    epochs: int
    rows: int
    behaviour: list[dict]
    profile: dict | None = None

    @property
    def label(self) -> str:
        return f"{self.start:%m-%d}..{self.end - timedelta(days=1):%m-%d}"


class Trainer:
    """Fits the declared recipe on a span of days once; every policy reuses it (memory + disk cache)."""

    def __init__(self, rows: pd.DataFrame, use_case: Any, hyperparameters: dict, device: str | None) -> None:
        self.rows, self.use_case, self.device = rows, use_case, device
        self.spec = use_case.model
        self.hp = {**self.spec.hyperparameters, **hyperparameters}
        self.days = rows["day"].to_numpy()
        self.calendar = Calendar.of(use_case)
        self.scored_from = int(np.searchsorted(self.days, self.calendar.predict_from))
        self.cache: dict[tuple[date, date], Fitted] = {}
        tag = "-".join(f"{k}{v}" for k, v in sorted(hyperparameters.items())) or "declared"
        self.folder = self.calendar.home / "models" / tag
        self.trained_seconds = 0.0

    def span(self, start: date, end: date) -> slice:
        return slice(int(np.searchsorted(self.days, start)), int(np.searchsorted(self.days, end)))

    def fit(self, start: date, end: date, profile: bool = False) -> Fitted:
        start = max(start, self.calendar.year_start)
        key = (start, end)
        found = self.cache.get(key)
        if found is not None and (found.profile is not None or not profile):
            return found
        path = self.folder / f"{start}_{end}.npz"
        if path.exists():
            data = np.load(path, allow_pickle=False)
            meta = json.loads(str(data["meta"]))
            if meta["profile"] is not None or not profile:
                self.cache[key] = Fitted(start, end, data["p"], **meta)
                return self.cache[key]
        self.cache[key] = fitted = self._train(start, end, profile)
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = {k: v for k, v in fitted.__dict__.items() if k not in ("start", "end", "p")}
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, p=fitted.p, meta=json.dumps(meta))
        tmp.replace(path)
        return fitted

    def _train(self, start: date, end: date, profile: bool) -> Fitted:
        from airloop.model.behaviour import run_all
        from airloop.model.profile import reference_profile
        from airloop.model.train import fit_recipe

        spec, use_case = self.spec, self.use_case
        frame = self.rows.iloc[self.span(start, end)].reset_index(drop=True)
        logger.info("training %s..%s (%d rows)", start, end, len(frame))
        model = fit_recipe(
            frame,
            TIME,
            use_case.label.name,
            spec.categorical,
            spec.numeric,
            spec.monotone_increasing,
            self.hp,
            spec.validation_fraction,
            spec.refit,
            self.device,
        )
        self.trained_seconds += model.seconds
        scored = self.rows.iloc[self.scored_from :]
        p = model.predict_proba(scored).astype(np.float32)
        after = self.rows.iloc[self.span(end, end + timedelta(days=30))]
        pool = after if len(after) else frame
        sample = pool.sample(min(500, len(pool)), random_state=0)
        behaviour = [b.__dict__ for b in run_all(model.predict_proba, sample.reset_index(drop=True), spec)]
        ref = None
        if profile:
            shared = {c: g.per for g in use_case.drift.shared for c in g.inputs}
            ref = reference_profile(frame, spec.categorical, spec.numeric, model.predict_proba(frame), shared)
        logger.info(
            "trained %s..%s: %.0f s, %d epochs, %d rows",
            start,
            end,
            model.seconds,
            model.best_epochs,
            len(frame),
        )
        return Fitted(start, end, p, model.seconds, model.best_epochs, model.rows, behaviour, ref)

    def scores(self, model: Fitted, where: slice) -> np.ndarray:
        """``model``'s probabilities of the rows ``where`` (absolute row positions)."""
        return model.p[where.start - self.scored_from : where.stop - self.scored_from]


class _Behaviour:
    """A cached behaviour-test result in the shape ``gate.decide`` reads."""

    def __init__(self, name: str, passed: bool, detail: str) -> None:
        self.name, self.passed, self.detail = name, passed, detail


@dataclass
class Retrain:
    day: date
    trigger: str
    window: dict[str, str]
    version: str
    replaced: str
    verdict: str
    reason: str
    promoted: bool
    next_auc_new: float | None = None
    next_auc_old: float | None = None
    next_ci: tuple[float, float] | None = None
    """95% interval of the next days' AUC(new) - AUC(old), whole days resampled (as the gate's): a
    difference whose interval spans 0 is a tie the following weeks cannot call."""


@dataclass
class Outcome:
    policy: str
    window: str
    served: np.ndarray
    """The probability served for every live row."""
    retrains: list[Retrain] = field(default_factory=list)
    train_seconds: float = 0.0
    shadow_events: list[dict] = field(default_factory=list)
    drift_checks: int = 0

    @property
    def name(self) -> str:
        return self.policy if self.policy == "static" else f"{self.policy} / {self.window}"


@dataclass
class Serving:
    """What serves: the champion (its holdout AUC: the performance trigger's reference) and the shadow."""

    champion: Fitted
    champion_auc: float | None
    shadow: Fitted | None = None
    shadow_since: date | None = None
    shadow_auc: float | None = None
    served_by: list[tuple[slice, Fitted]] = field(default_factory=list)


class Replay:
    def __init__(
        self, rows: pd.DataFrame, use_case: Any, trainer: Trainer, live_end: date, trailing_days: int = 150
    ) -> None:
        self.rows, self.use_case, self.trainer = rows, use_case, trainer
        self.trailing_days = trailing_days
        self.spec = use_case.model
        self.measure = use_case.model.live_measure  # how live ROC AUC is measured (daily or pooled)
        self.y = rows[use_case.label.name].to_numpy(dtype=np.int64)
        self.calendar = calendar = trainer.calendar
        self.live = trainer.span(calendar.live_start, live_end)
        self.days = [
            calendar.live_start + timedelta(days=i) for i in range((live_end - calendar.live_start).days)
        ]

    def auc(self, model: Fitted, where: slice) -> float | None:
        from airloop.model.metrics import roc_auc_or_none

        return roc_auc_or_none(self.y[where], self.trainer.scores(model, where))

    def live_auc(self, model: Fitted, where: slice) -> float | None:
        """ROC AUC as the use case measures live AUC (``metrics.live_roc_auc``): the performance trigger's
        reference."""
        from airloop.model.metrics import live_roc_auc

        return live_roc_auc(
            self.y[where],
            self.trainer.scores(model, where),
            self.rows["day"].to_numpy()[where],
            self.measure,
        )

    def static(self) -> tuple[Fitted, float | None]:
        """The static champion (flights: January-May) and its reference AUC (the 30 days after its data,
        measured as declared)."""
        start, end = self.calendar.year_start, self.calendar.static_end
        model = self.trainer.fit(start, end, profile=True)
        return model, self.live_auc(model, self.trainer.span(end, end + timedelta(days=30)))

    def run(self, policy: str, window: str) -> Outcome:
        closed = policy == "closed-loop"
        static, static_auc = self.static()
        state = Serving(static, static_auc)
        outcome = Outcome(policy, window, np.zeros(self.live.stop - self.live.start, dtype=np.float32))
        paid = {(static.start, static.end)}
        drift = DriftLoop(self) if closed else None
        for day in self.days:
            # the start of ``day``: yesterday's outcomes have landed (live_feedback, judge_shadow)
            self.judge_shadow(state, day, outcome)
            trigger = None
            if policy == "4-weekly" and (day - self.calendar.live_start).days % 28 == 0:
                trigger = "every 28 days"
            elif policy == "weekly" and (day - self.calendar.live_start).days % 7 == 0:
                trigger = "every 7 days"
            elif drift is not None:
                trigger = drift.check(day, state)
            if trigger:
                for model in self.retrain(state, policy, window, day, trigger, outcome):
                    if (model.start, model.end) not in paid:
                        paid.add((model.start, model.end))
                        outcome.train_seconds += model.seconds
            where = self.trainer.span(day, day + timedelta(days=1))
            offset = slice(where.start - self.live.start, where.stop - self.live.start)
            outcome.served[offset] = self.trainer.scores(state.champion, where)
            state.served_by.append((where, state.champion))
        outcome.drift_checks = drift.checks if drift is not None else 0
        return outcome

    def judge_shadow(self, state: Serving, day: date, outcome: Outcome) -> None:
        """``shadow.judge_shadow`` on the pair's pooled outcomes so far (served since the pair formed)."""
        from airloop.shadow import decide_live

        if state.shadow is None or state.shadow_since is None or day <= state.shadow_since:
            return
        pair = self.trainer.span(state.shadow_since, day)
        action, reason, _ = decide_live(
            self.y[pair],
            self.trainer.scores(state.champion, pair),
            self.trainer.scores(state.shadow, pair),
            (day - state.shadow_since).days,
            self.spec.shadow,
            self.rows["day"].to_numpy()[pair],
        )
        if action == "wait":
            return
        outcome.shadow_events.append(
            {
                "day": day.isoformat(),
                "champion": state.champion.label,
                "shadow": state.shadow.label,
                "action": action,
                "reason": reason,
            }
        )
        if action == "promote":
            state.champion, state.champion_auc = state.shadow, state.shadow_auc
        state.shadow = state.shadow_since = state.shadow_auc = None

    def retrain(
        self, state: Serving, policy: str, window: str, day: date, trigger: str, outcome: Outcome
    ) -> list[Fitted]:
        """``train_model`` at the start of ``day``: plan, judged + deployed fits, gate, promote (or, for the
        weekly policy, promote the deployed fit unconditionally). Returns the fits it used."""
        from airloop.model.gate import SHADOW_WHEN_KEPT, decide
        from airloop.model.metrics import bootstrap_auc_difference, scores
        from airloop.training import plan_window

        spec, trainer = self.spec, self.trainer
        train_days = {
            "trailing": self.trailing_days,
            "declared": spec.train_days,
            "all": (day - self.calendar.year_start).days,
        }[window]
        plan = plan_window(self.use_case, day, state.champion.end, train_days)
        deployed = trainer.fit(plan.train_start, day, profile=True)  # (every policy's: fits are shared)
        old = state.champion
        event = Retrain(day, trigger, plan.as_dict(), deployed.label, old.label, "unconditional", "", True)
        used = [deployed]
        if policy == "weekly":
            state.champion, state.champion_auc = deployed, None
        else:
            judged = trainer.fit(plan.train_start, plan.holdout_start)
            used.append(judged)
            holdout = trainer.span(plan.holdout_start, day)
            y = self.y[holdout]
            p_new, p_old = trainer.scores(judged, holdout), trainer.scores(old, holdout)
            new_auc, old_auc = scores(y, p_new)["roc_auc"], scores(y, p_old)["roc_auc"]
            days = self.rows["day"].to_numpy()[holdout]  # whole days resampled, as the gate does
            ci = bootstrap_auc_difference(y, p_new, p_old, spec.bootstrap_samples, groups=days)
            behaviour = [_Behaviour(**b) for b in deployed.behaviour]
            decision = decide(new_auc, old_auc, ci, behaviour, spec)  # type: ignore[arg-type]
            event.verdict, event.reason, event.promoted = decision.verdict, decision.reason, decision.promote
            reference = self.live_auc(judged, holdout)  # the performance trigger's, once it serves
            if decision.promote:
                if spec.shadow.enabled:
                    state.shadow, state.shadow_since, state.shadow_auc = old, day, state.champion_auc
                state.champion, state.champion_auc = deployed, reference
            elif spec.shadow.enabled and decision.verdict in SHADOW_WHEN_KEPT:
                state.shadow, state.shadow_since, state.shadow_auc = deployed, day, reference
        if day + timedelta(days=MIN_FOLLOWING_DAYS) <= self.days[-1] + timedelta(days=1):
            following = trainer.span(day, day + timedelta(days=FOLLOWING_DAYS))
            event.next_auc_new, event.next_auc_old = self.auc(deployed, following), self.auc(old, following)
            _, low, high = bootstrap_auc_difference(
                self.y[following],
                trainer.scores(deployed, following),
                trainer.scores(old, following),
                spec.bootstrap_samples,
                groups=self.rows["day"].to_numpy()[following],
            )
            event.next_ci = (round(low, 4), round(high, 4))
        outcome.retrains.append(event)
        logger.info(
            "%s/%s %s (%s): %s vs %s -> %s",
            policy,
            window,
            day,
            trigger,
            deployed.label,
            old.label,
            event.verdict,
        )
        return used


class DriftLoop:
    """``drift_monitor`` over whole served days: a window is checked once it holds ``drift.new_rows`` rows
    (the sensor's row trigger); the engine, the performance trigger and the decision are the library's."""

    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self.policy = replay.use_case.drift
        self.after = replay.calendar.live_start
        self.last_trigger: datetime | None = None
        self.last_trigger_day: date | None = None
        self.checks = 0

    def check(self, day: date, state: Serving) -> str | None:
        from airloop.drift.engine import SCORE_COLUMN, DriftEngine
        from airloop.drift.monitor import NewData, Window, decide, live_performance
        from airloop.feedback import live_entry

        replay, policy, champion = self.replay, self.policy, state.champion
        window = replay.trainer.span(self.after, day)
        rows = window.stop - window.start
        if rows < policy.new_rows:
            return None
        assert champion.profile is not None
        engine = DriftEngine.from_profile(champion.profile, policy.features, policy.ignore, policy.prediction)
        frame = replay.rows.iloc[window]
        served = np.full(rows, np.nan)
        for where, model in state.served_by:
            if model is champion and where.start >= window.start and where.stop <= window.stop:
                served[where.start - window.start : where.stop - window.start] = replay.trainer.scores(
                    model, where
                )
        chunk = frame[[c for c in engine.columns if c != SCORE_COLUMN]].assign(**{SCORE_COLUMN: served})
        engine.update(chunk)
        stamps = pd.to_datetime(frame[TIME], utc=True)
        span = (stamps.max() - stamps.min()).total_seconds() / 3600
        results = engine.evaluate(policy, span_hours=span)
        # the champion's live metrics per served day (live_feedback's), measured as declared
        days = [
            (
                str(replay.rows["day"].iloc[where.start]),
                live_entry(replay.y[where], replay.trainer.scores(model, where)),
            )
            for where, model in state.served_by
            if model is champion and where.stop > where.start
        ]
        performance = live_performance(days, state.champion_auc, policy, replay.measure)
        until = stamps.max().to_pydatetime()
        # the events a retrain now would add: since the champion's data end or the last triggered
        # retrain's, whichever is later (``monitor.new_data``)
        first = max(champion.end, self.last_trigger_day or champion.end)
        since = replay.trainer.span(first, day)
        fresh = NewData(since.stop - since.start, champion.rows, first.isoformat())
        decision = decide(results, performance, Window(None, until, rows), policy, self.last_trigger, fresh)
        self.after, self.checks = day, self.checks + 1
        logger.info(
            "drift %s..%s (%d rows) vs %s: %s - %s",
            window.start,
            day,
            rows,
            champion.label,
            decision.status,
            decision.reason[:160],
        )
        if not decision.retrain:
            return None
        self.last_trigger, self.last_trigger_day = until, day  # that retrain trains through day - 1
        return f"drift: {decision.reason}"


MEASURES = {"daily": "day by day", "pooled": "each month pooled"}


def monthly(replay: Replay, served: np.ndarray, measure: str) -> dict[str, float]:
    """Live ROC AUC per month of the served rows (``metrics.live_roc_auc``): ``daily`` as ``live_feedback``
    measures it for flights (each day's AUC - a day is served by one version - averaged over the month's
    days, weighted by their rows) or ``pooled`` (the month's rows ranked together: rows of different days,
    possibly scored by different versions, so a switch of model also shows its new score scale)."""
    from airloop.model.metrics import live_roc_auc

    days = replay.rows["day"].to_numpy()[replay.live]
    y = replay.y[replay.live]
    months = np.array([d.strftime("%Y-%m") for d in days])
    out = {}
    for month in sorted(set(months)):
        here = months == month
        auc = live_roc_auc(y[here], served[here], days[here], measure)
        assert auc is not None  # a month has days with both outcomes
        out[month] = auc
    return out


def report(replay: Replay, outcomes: list[Outcome], machine: str) -> dict[str, Any]:
    table = []
    for o in outcomes:
        both = {measure: monthly(replay, o.served, measure) for measure in MEASURES}
        gated = [r for r in o.retrains if r.verdict != "unconditional"]
        table.append(
            {
                "policy": o.name,
                # the declared measure (ModelSpec.live_measure): what the targets on months are judged on
                # (a retrain's next days are compared pooled, paired on the same rows, as the gate and the
                # shadow judge compare two versions)
                "measure": replay.measure,
                "months": both[replay.measure],
                "mean_monthly_auc": float(np.mean(list(both[replay.measure].values()))),
                **{f"{m}_months": both[m] for m in MEASURES},
                **{f"mean_{m}_auc": float(np.mean(list(both[m].values()))) for m in MEASURES},
                "retrains": len(o.retrains),
                "promoted": sum(r.promoted for r in o.retrains),
                "shadow": o.shadow_events,
                "train_seconds": round(o.train_seconds, 1),
                "drift_checks": o.drift_checks,
                "retrain_log": [
                    {
                        **{k: (v.isoformat() if isinstance(v, date) else v) for k, v in r.__dict__.items()},
                        "won_after": None
                        if r.next_auc_new is None or r.next_auc_old is None
                        else r.next_auc_new > r.next_auc_old,
                        # -1 lost, 0 tied, +1 won with confidence on the next days (None: not judged)
                        "next_verdict": None
                        if r.next_ci is None
                        else (r.next_ci[0] > 0) - (r.next_ci[1] < 0),
                    }
                    for r in o.retrains
                ],
                "gated": len(gated),
            }
        )
    months = list(table[0]["months"]) if table else []
    other = next(m for m in MEASURES if m != replay.measure)
    print(
        f"\nLive ROC AUC per month on the same served rows, {MEASURES[replay.measure]} as the use case "
        f"declares (live_measure {replay.measure}; {machine})"
    )
    head = (
        f"{'policy':<26}"
        + "".join(f"{m[5:]:>7}" for m in months)
        + f"{'mean':>8}{'retrains':>9}{'promoted':>9}{'train s':>9}"
    )
    print(head)
    for row in table:
        print(
            f"{row['policy']:<26}"
            + "".join(f"{row['months'][m]:>7.4f}" for m in months)
            + f"{row['mean_monthly_auc']:>8.4f}{row['retrains']:>9}{row['promoted']:>9}"
            + f"{row['train_seconds']:>9.0f}"
        )
    print(f"\nThe same, {MEASURES[other]} (live_measure {other}, not declared):")
    for row in table:
        print(
            f"{row['policy']:<26}"
            + "".join(f"{row[f'{other}_months'][m]:>7.4f}" for m in months)
            + f"{row[f'mean_{other}_auc']:>8.4f}"
        )
    base = next((r for r in table if r["policy"] == "static"), None)
    if base:
        print("\nDifference to the static champion (mean monthly; worst month):")
        for row in table:
            if row is base:
                continue
            diffs = [row["months"][m] - base["months"][m] for m in months]
            print(f"  {row['policy']:<26} {np.mean(diffs):+.4f}; worst {min(diffs):+.4f}")
    for row in table:
        if not row["retrain_log"]:
            continue
        print(f"\n{row['policy']}: retrains (the next {FOLLOWING_DAYS} days' ROC AUC: new vs replaced)")
        for r in row["retrain_log"]:
            new, old = r["next_auc_new"], r["next_auc_old"]
            after = ""
            if new is not None and old is not None:
                ci = r["next_ci"]
                interval = f", CI {ci[0]:+.4f}..{ci[1]:+.4f}" if ci else ""
                after = f" next: {new:.4f} vs {old:.4f} ({new - old:+.4f}{interval})"
            trigger = r["trigger"][:70]
            print(f"  {r['day']} {r['verdict']:<16} {r['version']} vs {r['replaced']}{after} [{trigger}]")
        for s in row["shadow"]:
            print(
                f"  shadow {s['day']} {s['action']}: {s['shadow']} vs {s['champion']} - {s['reason'][:110]}"
            )
    targets = issue_targets(table)
    if targets:
        print("\nIssue 15's targets for the closed loop (c):")
        for line in targets:
            print(f"  {line}")
    return {
        "machine": machine,
        "measure": replay.measure,
        "months": months,
        "policies": table,
        "targets": targets,
    }


def issue_targets(table: list[dict[str, Any]]) -> list[str]:
    """(c) vs (a): >= +0.015 mean monthly, no month below by more than 0.005; (c) vs (b) of the same
    window: within 0.003 with fewer retrains, or better; promotions won the following weeks, rejections
    would have lost."""
    rows = {r["policy"]: r for r in table}
    static = rows.get("static")
    lines = []
    for name, row in rows.items():
        if not name.startswith("closed-loop") or static is None:
            continue
        months = list(static["months"])
        diffs = [row["months"][m] - static["months"][m] for m in months]
        ok = np.mean(diffs) >= 0.015 and min(diffs) >= -0.005
        lines.append(
            f"{name} vs static: {np.mean(diffs):+.4f} mean, worst month {min(diffs):+.4f} -> "
            f"{'met' if ok else 'NOT met'}"
        )
        scheduled = rows.get(name.replace("closed-loop", "4-weekly"))
        if scheduled is not None:
            gap = row["mean_monthly_auc"] - scheduled["mean_monthly_auc"]
            ok = gap >= 0 or (gap >= -0.003 and row["retrains"] < scheduled["retrains"])
            lines.append(
                f"{name} vs {scheduled['policy']}: {gap:+.4f}, {row['retrains']} vs "
                f"{scheduled['retrains']} retrains -> {'met' if ok else 'NOT met'}"
            )
        judged = [r for r in row["retrain_log"] if r["won_after"] is not None]
        promoted = [r for r in judged if r["promoted"]]
        rejected = [r for r in judged if not r["promoted"]]
        won = sum(r["won_after"] for r in promoted)
        lines.append(
            f"{name}: promotions that won the next {FOLLOWING_DAYS} days {won}"
            f"/{len(promoted)}; rejections that would have lost {sum(not r['won_after'] for r in rejected)}"
            f"/{len(rejected)}"
        )
        # the same with the next days' day-bootstrap interval: a difference it spans 0 for is a tie
        lost = sum(r.get("next_verdict") == -1 for r in promoted)
        would_win = sum(r.get("next_verdict") == 1 for r in rejected)
        lines.append(
            f"{name}: promotions that lost the next {FOLLOWING_DAYS} days with confidence {lost}"
            f"/{len(promoted)} (won {sum(r.get('next_verdict') == 1 for r in promoted)}, the rest ties); "
            f"rejections that would have won with confidence {would_win}/{len(rejected)}"
        )
    return lines


def plot(result: dict[str, Any], path: Path) -> None:
    """Monthly live ROC AUC per policy: day by day and each month pooled (which also ranks one day's
    events against another's); the declared measure's panel says so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    months = [m[5:] for m in result["months"]]
    for ax, (measure, words) in zip(axes, MEASURES.items(), strict=True):
        for row in result["policies"]:
            style = "k--" if row["policy"] == "static" else "-o"
            values = [row[f"{measure}_months"][m] for m in result["months"]]
            ax.plot(months, values, style, label=f"{row['policy']} ({row[f'mean_{measure}_auc']:.4f})", ms=3)
        ax.set_xlabel(f"{result['months'][0][:4]} month" if result["months"] else "month")
        ax.set_ylabel(f"live ROC AUC, {words}")
        ax.set_title(f"{words} (declared)" if measure == result["measure"] else words)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(f"Year-long replay ({result.get('use_case', 'flights')}): monthly live ROC AUC per policy")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def prepare(use_case_name: str) -> Any:
    """A bench process's set-up: logging (the library's chatty loggers quieted), the use case's bench
    state as ``AIRLOOP_HOME``, torch on every core; returns the declared use case."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("airloop.model.train", "feast", "great_expectations", "mlflow", "alembic", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ["AIRLOOP_HOME"] = str(bench_home(use_case_name))
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    from airloop.usecases import load_use_case

    torch.set_num_threads(os.cpu_count() or 1)
    return load_use_case(use_case_name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policies", default=",".join(POLICIES), help="in the order to run them")
    parser.add_argument(
        "--windows", default="trailing,all", help="training windows of the retraining policies"
    )
    parser.add_argument(
        "--runs", default="", help="policy:window pairs in the order to run them (instead of the grid)"
    )
    parser.add_argument("--use-case", default="flights", help="a declared use case with a demo span")
    parser.add_argument("--live-end", default=None, help="first day not replayed (default: the data's end)")
    parser.add_argument(
        "--trailing-days",
        type=int,
        default=150,
        help="the trailing window (windows: trailing, all, declared)",
    )
    parser.add_argument("--hp", default="{}", help="JSON overrides of the declared hyperparameters")
    parser.add_argument(
        "--drift",
        default="{}",
        help='JSON overrides of the declared drift policy, e.g. \'{"report_only": ["temp"]}\'',
    )
    parser.add_argument(
        "--model",
        default="{}",
        help="JSON overrides of the declared promotion policy, e.g. '{\"judged_new_share\": 0.5}'",
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default=None, help="results JSON (default: under the bench state)")
    parser.add_argument("--png", default=None, help="the plot (default: bench/loop_replay[_<use case>].png)")
    args = parser.parse_args()
    from _machine import machine as describe

    use_case = prepare(args.use_case)
    calendar = Calendar.of(use_case)
    out = Path(args.out) if args.out else calendar.home / "results.json"
    suffix = "" if use_case.name == "flights" else f"_{use_case.name}"
    png = Path(args.png) if args.png else Path(__file__).resolve().parent / f"loop_replay{suffix}.png"
    drift_overrides = json.loads(args.drift)
    model_overrides = json.loads(args.model)
    # validated as the declaration would be
    use_case = use_case.with_drift(drift_overrides).with_section("model", model_overrides)
    rows = served_rows(use_case)
    trainer = Trainer(rows, use_case, json.loads(args.hp), args.device)
    live_end = date.fromisoformat(args.live_end) if args.live_end else calendar.year_end
    replay = Replay(rows, use_case, trainer, live_end, args.trailing_days)
    windows = args.windows.split(",")
    outcomes = []
    runs = [(p, w) for p in args.policies.split(",") for w in (["declared"] if p == "static" else windows)]
    if args.runs:
        runs = [("static", "declared"), *(tuple(r.split(":", 1)) for r in args.runs.split(","))]
    runs = sorted(runs, key=lambda r: r[0] != "static")  # the static champion first: the others' baseline
    for policy, window in runs:
        started = time.perf_counter()
        outcomes.append(replay.run(policy, window))
        logger.info("%s done in %.0f s", outcomes[-1].name, time.perf_counter() - started)
        # the table so far after every policy (a long run can be stopped and still report)
        result = report(replay, outcomes, describe())
        result["use_case"] = use_case.name
        result["hyperparameters"] = trainer.hp
        result["drift_overrides"] = drift_overrides
        result["model_overrides"] = model_overrides
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1, default=str))
        plot(result, png)
    print(f"\nresults: {out}\nplot: {png}")


if __name__ == "__main__":
    main()
