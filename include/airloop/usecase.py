"""The shape of a use-case declaration.

A use case is data, not code: its sources and their columns, the event timestamp, entity keys, the label,
which columns are known before the event and which must never reach a model, and the validation rules.
The generic platform (ingestion, validation, later features/training/drift) reads only this declaration,
so onboarding a second use case means writing a new declaration module, not new DAG code.

This module imports pydantic only: DAG files may read a declaration while they are parsed.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

DType = Literal["int64", "float64", "string", "timestamp"]
Severity = Literal["critical", "warning"]


class Column(BaseModel):
    """One column of a source and the rules its values obey.

    ``max_null_share`` is the tolerated share of nulls (0 = required). ``mostly`` relaxes the value rules
    (range, set, regex) for real data with a few known bad records; it never relaxes dtype or nulls.
    """

    name: str
    dtype: DType
    description: str = ""
    max_null_share: float = Field(0.0, ge=0.0, le=1.0)
    min_value: float | None = None
    max_value: float | None = None
    allowed: list[str] | None = None
    regex: str | None = None
    clock_time: bool = False
    """An ``HHMM`` integer clock time (0..2359, minutes < 60); ``allow_2400`` for end-of-day times."""
    allow_2400: bool = False
    timezone: str | None = None
    """For ``timestamp`` columns: the zone of values written without an offset (local wall-clock time);
    ``None``: such values are UTC. Values with an offset are read by their own offset."""
    mostly: float = Field(1.0, gt=0.0, le=1.0)
    repair: Literal["keep", "null"] = "keep"
    """``null``: a reading outside ``[min_value, max_value]`` is an implausible measurement, set to null
    before validation and reported (how many, examples) in the day's manifest, so two bad sensor readings
    do not quarantine a day of valid events; the null-share rule still quarantines wholesale breakage.
    ``keep``: such a value fails the range rule (within ``mostly``: tolerated and reported)."""


class Reference(BaseModel):
    """Values of ``column`` must appear in ``to_source.to_column`` of the same interval's snapshot."""

    column: str
    to_source: str
    to_column: str
    extra_values: list[str] = []
    """Codes known to be valid though absent from the referenced table (documented per use case)."""
    mostly: float = Field(1.0, gt=0.0, le=1.0)


class RowCountRule(BaseModel):
    """Rows per interval: absolute bounds and, where history exists, bounds relative to it.

    The relative rule compares with the median row count of up to ``history_days`` earlier validated
    intervals; it is evaluated only when at least ``min_history`` of them exist.
    """

    min_rows: int = 1
    max_rows: int | None = None
    severity: Severity = "critical"
    history_days: int = 14
    min_history: int = 3
    history_low: float | None = None
    history_high: float | None = None


TimePart = Literal["year", "month", "day", "hour", "minute"]


class TimeParts(BaseModel):
    """Columns that restate an event time must agree with it (a cross-field rule): ``timestamp`` read in
    ``timezone`` has the local ``parts`` (column -> year, month, day, hour or minute) the row holds, so
    a row whose date fields name another day than its event time (or 02-30) is refused. Applied by the
    validation suite and by the request contract; rows with a null in the rule's columns are left to
    the null rules."""

    kind: Literal["time_parts"] = "time_parts"
    timestamp: str
    timezone: str = "UTC"
    parts: dict[str, TimePart] = Field(min_length=1)

    def describe(self) -> str:
        named = ", ".join(f"{c} = {p}" for c, p in self.parts.items())
        return f"{named} of {self.timestamp} in {self.timezone}"


class ClockParts(BaseModel):
    """An ``HHMM`` clock column equal to 100 x ``hour`` + ``minute`` of the same row (a cross-field rule)."""

    kind: Literal["clock_parts"] = "clock_parts"
    clock: str
    hour: str
    minute: str

    def describe(self) -> str:
        return f"{self.clock} = 100 x {self.hour} + {self.minute}"


CrossCheck = Annotated[TimeParts | ClockParts, Field(discriminator="kind")]


class Source(BaseModel):
    """One table the use case reads.

    ``event`` sources are sliced by ``event_timestamp`` into data intervals; ``dimension`` sources are
    reference tables taken as a whole snapshot per interval.
    """

    name: str
    kind: Literal["event", "dimension"]
    description: str = ""
    event_timestamp: str | None = None
    key: list[str]
    columns: list[Column]
    references: list[Reference] = []
    row_count: RowCountRule = RowCountRule()
    cross_checks: list[CrossCheck] = []
    """Fields that must agree with each other (``TimeParts``, ``ClockParts``)."""

    @model_validator(mode="after")
    def _check(self) -> Source:
        names = {c.name for c in self.columns}
        if self.kind == "event" and self.event_timestamp not in names:
            raise ValueError(f"source {self.name}: event_timestamp must be one of its columns")
        if missing := [k for k in self.key if k not in names]:
            raise ValueError(f"source {self.name}: key columns {missing} are not declared columns")
        for rule in self.cross_checks:
            used = (
                [rule.timestamp, *rule.parts]
                if isinstance(rule, TimeParts)
                else [rule.clock, rule.hour, rule.minute]
            )
            if missing := [c for c in used if c not in names]:
                raise ValueError(f"source {self.name}: cross check on undeclared columns {missing}")
        return self

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


class NullOutcome(BaseModel):
    """The status of an event whose ``column`` is null (e.g. a flight that never departed: ``cancelled``)."""

    status: str
    column: str
    positive: bool


class Label(BaseModel):
    """The prediction target: a binary rule on one outcome column, stated in words and applied by the library.

    ``rule``: ``above`` (value > ``threshold``), ``below`` (value < ``threshold``), ``true`` (a boolean
    column, or 0/1), ``in`` (value in ``categories``). A positive row gets ``positive_status``, a negative one
    ``negative_status``. Before the rule, ``when_null`` is checked in order: the first listed column that is
    null gives its status and polarity (a cancelled flight counts as delayed). A row whose outcome is null and
    not covered there is ``unknown``: left out of training and of live metrics (and counted in the log).
    """

    name: str
    source: str
    definition: str
    column: str
    rule: Literal["above", "below", "true", "in"]
    threshold: float | None = None
    categories: list[str] | None = None
    positive_status: str = "positive"
    negative_status: str = "negative"
    when_null: list[NullOutcome] = []

    @model_validator(mode="after")
    def _check(self) -> Label:
        if self.rule in ("above", "below") and self.threshold is None:
            raise ValueError(f"label {self.name}: rule {self.rule!r} needs a threshold")
        if self.rule == "in" and not self.categories:
            raise ValueError(f"label {self.name}: rule 'in' needs categories")
        return self

    @property
    def outcome_columns(self) -> list[str]:
        """Columns the rule reads (all must be forbidden inputs: they are known only after the event)."""
        return list(dict.fromkeys([self.column, *(n.column for n in self.when_null)]))


class ObservationFeatures(BaseModel):
    """Latest observation of an event source at or before the prediction time (e.g. hourly weather).

    Point-in-time join: an observation stamped later than the event is never used; one older than
    ``ttl_hours`` is treated as missing (offline) and, online, as stale past ``freshness_hours``.
    """

    name: str
    source: str
    entity: str
    columns: list[str]
    ttl_hours: float = 3
    freshness_hours: float = 3


class HistoryFeatures(BaseModel):
    """Trailing-window statistics of an outcome (or any measure) of the primary source per entity.

    One snapshot per data interval, stamped at the interval's start, computed only from events whose
    outcome was *known* strictly before that instant. An event's outcome is known at its event time plus
    ``known_after_minutes``, plus the measure itself in minutes when ``measure_is_minutes_late`` (a
    departure delay: the flight left that much later). Per window in days: the share of events whose
    ``measure`` is above ``above``, its mean, and the event count, named
    ``<entity>_<share_name>_<w>d``, ``<entity>_<mean_name>_<w>d``, ``<entity>_<count_name>_<w>d``.
    Events without a measure (null) are left out.
    """

    name: str
    entity: str
    windows_days: list[int] = [7, 28]
    measure: str
    above: float
    known_after_minutes: float = 0
    measure_is_minutes_late: bool = False
    share_name: str = "share_above"
    mean_name: str = "mean"
    count_name: str = "events"
    freshness_hours: float = 48

    def feature_names(self) -> list[str]:
        names = []
        for w in self.windows_days:
            names += [
                f"{self.entity}_{stat}_{w}d" for stat in (self.share_name, self.mean_name, self.count_name)
            ]
        return names


class AttributeFeatures(BaseModel):
    """Attributes from a dimension snapshot for the entities that occur in the interval (e.g. planes)."""

    name: str
    source: str
    entity: str
    columns: list[str]
    rename: dict[str, str] = {}


class FeatureSet(BaseModel):
    """Everything the feature store serves for one model version of the use case."""

    service: str
    """FeatureService name, one per model version (e.g. ``flight_delay_v1``)."""
    event_time_column: str
    """Timestamp of the prediction moment: this column plus ``event_time_minutes_column`` minutes."""
    event_time_minutes_column: str | None = None
    observations: list[ObservationFeatures] = []
    histories: list[HistoryFeatures] = []
    attributes: list[AttributeFeatures] = []
    request_fields: dict[str, DType]
    """Fields a request carries (and the historical entity frame) for the request-time transform."""
    request_transform: str
    """Dotted path of ``f(frame) -> frame``: request-time features, identical online and offline."""
    request_schema: dict[str, DType]
    defaults: dict[str, float]
    """Value served for a feature of an unknown entity or a missing observation (with a flag)."""

    @property
    def groups(self) -> list[ObservationFeatures | HistoryFeatures | AttributeFeatures]:
        """Every feature group (one Feast feature view each): observations, histories, attributes."""
        return [*self.observations, *self.histories, *self.attributes]


class ShadowPolicy(BaseModel):
    """Live comparison of two registered versions on the same requests.

    When the gate promotes a challenger, the replaced champion gets the ``shadow`` alias; when it keeps the
    champion, the rejected challenger gets it. The service answers with the champion and scores every
    request with the shadow too (logged, never answered); ``live_feedback`` joins both to the outcomes and
    ``judge_shadow`` decides on that paired live evidence: the shadow becomes champion when it is better
    (bootstrap lower bound of AUC(shadow) - AUC(champion) above ``margin``), the shadow is retired when
    the champion is confirmed (upper bound below ``margin``) or after ``max_days`` without a verdict."""

    enabled: bool = True
    min_rows: int = Field(default=2000, ge=100)
    """Labelled live rows scored by both versions before the evidence is judged."""
    min_days: int = Field(default=7, ge=1)
    """Days of outcomes (distinct event days) before the evidence is judged: the bootstrap resamples whole
    days, and a week covers the weekday cycle (in the year-long replay, 2-3 days of evidence judged by a
    row bootstrap flip-flopped between versions: bench/bench_loop_replay.py)."""
    max_days: int = Field(default=14, ge=1)
    """Days of outcomes after which an undecided comparison ends: the champion stays, the shadow retires."""
    margin: float = 0.0
    """AUC(shadow) - AUC(champion) the shadow must beat with confidence to be promoted."""
    promote: bool = True
    """False: report the live verdict (tags, audit trail) but never move ``champion`` on it."""
    bootstrap_samples: int = Field(default=400, ge=50)

    @model_validator(mode="after")
    def _days(self) -> ShadowPolicy:
        if self.max_days < self.min_days:
            raise ValueError(f"shadow.max_days ({self.max_days}) < shadow.min_days ({self.min_days})")
        return self


class ModelSpec(BaseModel):
    """What the model sees and the promotion policy its versions are judged by."""

    categorical: list[str]
    """Embedded inputs (strings or small integers), e.g. carrier, origin, route, hour."""
    numeric: list[str]
    """Scaled inputs; missing-value flags may be listed too."""
    monotone_increasing: list[str] = []
    """Numeric inputs whose increase may never lower the predicted risk (a positive linear path)."""
    train_days: int = 150
    holdout_days: int = 30
    validation_fraction: float = Field(0.15, gt=0, lt=0.5)
    """The most recent share of the training rows (in event time) that early stopping watches."""
    deploy_through_newest: bool = True
    """The gate judges the recipe (the network trained before the holdout, against the champion on the
    holdout); the version registered and served is the same recipe trained again on training + holdout
    rows, so a retrain ships with every labelled day. False registers the judged network."""
    min_holdout_days: int = Field(7, ge=1)
    """The holdout is the newest labelled days the champion never trained on (its ``data_end`` onwards;
    see ``judged_new_share``), at most ``holdout_days``, at least this many."""
    judged_new_share: float = Field(0.5, ge=0, lt=1)
    """Of the labelled days the champion never trained on, the share (the oldest) the judged network
    trains on; the rest, the newest, are the holdout. At 0 a retrain that comes within ``holdout_days`` of
    the champion's data end judges a network trained on exactly the champion's days: the gate compares the
    champion with a second draw of itself, blind to what the newer days bring (the year-long replay,
    4-weekly: every verdict "+0.0000"). At 0.5 the judged network, like the deployed one, has days the
    champion never saw, and the gate measures what newer days are worth on the days after them - once
    the gap exceeds ``min_holdout_days``: within it the holdout is every unseen day (and more), and the
    judged network has none (rounded down: the judged network's share of a gap never exceeds it)."""
    refit: bool = True
    """After early stopping chose the epoch count (and the decision threshold), train again on ALL
    training rows, validation tail included, for that many epochs; the baseline is fit on all rows too.
    False registers the early-stopped network, whose data ends ``validation_fraction`` before the holdout."""
    hyperparameters: dict[str, float | int] = {}
    live_measure: Literal["daily", "pooled"] = "daily"
    """How live ROC AUC is measured (the performance trigger and its holdout reference, the demo summary,
    the replay bench; ``live_feedback`` records what both need): ``daily`` ranks each day's events among
    themselves and averages the days (weighted by their rows) - for a label relative to its day, whose
    traffic never asks to rank one day's events against another's (a stormy day's flights against a calm
    day's); ``pooled`` ranks all of a window's events together - for an absolute label, where which days
    are positive is most of the question (peak demand: a cold snap's half-hours against a mild day's).
    Two versions compared on the same rows (the gate, the shadow judge) are compared pooled either way."""
    min_auc: float = 0.6
    """A challenger below this holdout ROC AUC is never promoted."""
    tolerance: float = 0.01
    """Promote when the lower bound of the bootstrap CI of AUC(challenger) - AUC(champion) is at least
    ``-tolerance``: not worse than the champion beyond the tolerance, with confidence (``model.gate``)."""
    promote_inconclusive: bool = False
    """When the interval of AUC(challenger) - AUC(champion) reaches both below ``-tolerance`` and above 0
    (neither non-inferior nor worse with confidence): True promotes the challenger - it has the newer days
    - and, with shadow evaluation, the replaced champion is compared on live traffic; False keeps the
    champion and the challenger goes to shadow."""
    bootstrap_samples: int = 200
    invariant_inputs: list[str] = []
    """Raw request columns that must not change a prediction (e.g. the flight number)."""
    directional: dict[str, float] = {}
    """Input -> increase that must never lower the predicted risk (behaviour test)."""
    obvious_low_risk: dict[str, float] = {}
    obvious_high_risk: dict[str, float] = {}
    """Minimum functionality: rows set to the high-risk values must score above the same rows set to
    the low-risk values."""
    shadow: ShadowPolicy = ShadowPolicy()
    """Shadow evaluation of the replaced champion or the rejected challenger on live traffic."""


class Thresholds(BaseModel):
    """Effect-size floors of one feature: a significant change is a ``warn`` above the first, an ``alert``
    (which may trigger retraining) above the second, for the KS statistic (numeric), PSI (any kind) and the
    absolute change of the null share."""

    ks_warn: float = 0.1
    ks_alert: float = 0.25
    psi_warn: float = 0.1
    psi_alert: float = 0.25
    null_share_warn: float = 0.05
    null_share_alert: float = 0.2


class SharedInputs(BaseModel):
    """Inputs copied to every event that shares one observation (a weather reading is joined to every
    flight of its airport and hour): the drift check tests them on their distinct observations, both in
    the reference profile and in the live window, not on the rows they were copied to (thousands of
    flights share a few hundred readings; counting each copy as an independent observation makes p-values
    meaningless, and busier hours weigh more)."""

    per: list[str] = Field(min_length=1)
    """Logged columns that identify one observation (e.g. ``origin``, ``time_hour``)."""
    inputs: list[str] = Field(min_length=1)


class DriftPolicy(BaseModel):
    """When live data counts as drifted enough to retrain: declared per use case, tunable per feature.

    A feature is *significant* when its multiple-testing adjusted p-value is below ``alpha``; it is a
    ``warn``/``alert`` only when it is significant AND its effect size reaches the floor (large windows make
    trivial shifts significant; the floors keep them from alarming). Retraining is triggered by an alert on
    any monitored feature not declared ``report_only`` or on the prediction score, or by a live ROC AUC
    more than ``performance_drop`` below the champion's holdout AUC (both measured as
    ``ModelSpec.live_measure`` declares) - once the window has ``min_rows`` rows and ``cooldown_hours``
    have passed since the last drift-triggered retrain, and the events since the champion's data end reach
    ``min_new_share`` of the rows it was fit on.
    """

    alpha: float = Field(default=0.01, gt=0, lt=1)
    correction: Literal["bh", "bonferroni"] = "bh"
    default: Thresholds = Thresholds()
    overrides: dict[str, Thresholds] = {}
    """Feature -> its own floors (e.g. a seasonal feature that may move a lot before it matters)."""
    features: list[str] | None = None
    """Monitored features; ``None``: every model input with a reference profile."""
    ignore: list[str] = []
    """Inputs not monitored (e.g. missing-value flags)."""
    report_only: list[str] = []
    """Inputs tested and reported (their alerts are in the check, its report and the UI) that do not
    trigger a retrain on their own: inputs that move with the season in every window (weather against a
    reference of other months) would otherwise retrain at every cooldown's end. The other inputs, the
    prediction score and the performance trigger still retrain."""
    cycles: dict[str, float] = {}
    """Input -> the length of its cycle in hours (weekday: 168, hour of day: 24). Such an input is judged
    only in a window whose events span a whole cycle: three weekdays against a reference of all seven
    differ by construction, not by drift (status ``partial_cycle``, left out of the tests' family)."""
    shared: list[SharedInputs] = []
    """Groups of inputs tested on their distinct observations (see ``SharedInputs``)."""
    cycle_coverage: float = Field(default=0.9, gt=0, le=1)
    """The share of a cycle the window's first-to-last event time must span to count as whole (a week of
    flights runs Monday 05:00 to Sunday 23:59: 162 of 168 h)."""
    prediction: bool = True
    """Also test the score distribution (prediction drift) with the ``score`` floors."""
    min_rows: int = Field(default=1000, ge=1)
    """A window smaller than this is reported but never triggers."""
    new_rows: int = Field(default=2000, ge=1)
    """The sensor waits for this many new live rows since the last checked window ..."""
    max_wait_minutes: float = 24 * 60
    """... or at most this long, then checks whatever arrived."""
    cooldown_hours: float = 24
    min_new_share: float = Field(default=0, ge=0)
    """A retrain is triggered only once the validated events since the champion's data end number at least
    this share of the rows it was fit on (0: off). A model trained on all of its history changes little
    from a week more of it: in the year-long replay weekly drift-triggered retrains scored no better than
    one every 4 weeks, with 3x the training. Drift evidence then waits (status ``too_little_new_data``)
    for enough new data to act on; it is still checked and reported."""
    performance_drop: float = Field(default=0.05, ge=0)
    min_labelled_rows: int = Field(default=500, ge=1)

    def thresholds(self, feature: str) -> Thresholds:
        return self.overrides.get(feature, self.default)


class DemoSpan(BaseModel):
    """What ``make demo`` replays for this use case: the history ``first_day..last_day`` (the first model
    trains on it), then ``live_days`` of live traffic, the drift-triggered retrain, ``after_days`` more."""

    first_day: date
    last_day: date
    live_days: int = 7
    after_days: int = 3


class UseCase(BaseModel):
    """A whole use case: what arrives, how it is checked, and what the model may see."""

    name: str
    description: str
    timezone: str
    """Data intervals are calendar days in this timezone (Hive partitions ``ds=YYYY-MM-DD``)."""
    start_date: date
    end_date: date | None = None
    """Last day the source can hold (a replayed history); ``None`` for a live operational source."""
    schedule: str = "@daily"
    sources: list[Source]
    primary_source: str
    entities: dict[str, list[str]]
    """Entity name -> key columns (e.g. ``route: [origin, dest]``)."""
    label: Label
    known_before_event: list[str]
    forbidden_inputs: list[str]
    """Columns that leak the outcome and must never be model inputs."""
    model_name: str
    """Registered model name in MLflow (also names the prediction partitions and the drift experiment)."""
    context_columns: list[str] = []
    """Primary-source columns known before the event that travel beside the key into training sets,
    batch predictions and the live-traffic log (e.g. the destination of a flight), for later analysis."""
    slice_columns: list[str] = []
    """Categorical columns whose holdout metrics are reported per value
    (``evaluation/slices_<column>.csv``)."""
    replay_data: str | None = None
    """Folder (relative to the project root) of the recorded data the ``replay`` source presents."""
    features: FeatureSet | None = None
    model: ModelSpec | None = None
    drift: DriftPolicy = DriftPolicy()
    demo: DemoSpan | None = None

    @model_validator(mode="after")
    def _check(self) -> UseCase:
        names = [s.name for s in self.sources]
        if self.primary_source not in names:
            raise ValueError(f"primary_source {self.primary_source!r} is not a declared source")
        for source in self.sources:
            for ref in source.references:
                if ref.to_source not in names:
                    raise ValueError(f"{source.name}.{ref.column} references unknown source {ref.to_source}")
        if self.features is not None:
            fs = self.features
            for group in fs.groups:
                if group.entity not in self.entities:
                    raise ValueError(f"feature group {group.name}: unknown entity {group.entity!r}")
            leaked = set(fs.request_fields) & set(self.forbidden_inputs)
            if leaked:
                raise ValueError(f"request fields include forbidden inputs: {sorted(leaked)}")
        if self.model is not None:
            inputs = (
                set(self.model.categorical) | set(self.model.numeric) | set(self.model.monotone_increasing)
            )
            if inputs & set(self.forbidden_inputs):
                raise ValueError(
                    f"model inputs include forbidden columns: {sorted(inputs & set(self.forbidden_inputs))}"
                )
            if not set(self.model.monotone_increasing) <= set(self.model.numeric):
                raise ValueError("monotone_increasing inputs must be numeric inputs")
            if unknown := sorted(set(self.drift.cycles) - inputs):
                raise ValueError(f"drift.cycles: {unknown} are not model inputs")
            if unknown := sorted(set(self.drift.report_only) - inputs):
                raise ValueError(f"drift.report_only: {unknown} are not model inputs")
            shared = [c for group in self.drift.shared for c in group.inputs]
            if unknown := sorted(set(shared) - inputs):
                raise ValueError(f"drift.shared: {unknown} are not model inputs")
            if twice := sorted({c for c in shared if shared.count(c) > 1}):
                raise ValueError(f"drift.shared: {twice} are in more than one group")
            logged = set(self.logged_columns())
            if unlogged := sorted({c for g in self.drift.shared for c in g.per} - logged):
                raise ValueError(f"drift.shared: per columns {unlogged} are not logged columns")
        primary = {c.name for c in self.source(self.primary_source).columns}
        for field, columns in (
            ("known_before_event", self.known_before_event),
            ("context_columns", self.context_columns),
            ("slice_columns", self.slice_columns),
            ("label.column/when_null", self.label.outcome_columns),
        ):
            if unknown := [c for c in columns if c not in primary]:
                raise ValueError(
                    f"{field}: {unknown} are not columns of the primary source {self.primary_source!r}"
                )
        for field, columns in (
            ("context_columns", self.context_columns),
            ("slice_columns", self.slice_columns),
        ):
            if late := [c for c in columns if c not in self.known_before_event]:
                raise ValueError(f"{field}: {late} are not known before the event (known_before_event)")
        if self.label.source != self.primary_source:
            raise ValueError(f"label.source must be the primary source {self.primary_source!r}")
        carried = [*self.source(self.primary_source).key]
        if self.features is not None:
            carried += [self.features.event_time_column, self.features.event_time_minutes_column or ""]
        if late := [c for c in carried if c and c not in self.known_before_event]:
            raise ValueError(
                f"the key and event time {late} must be known before the event (known_before_event): "
                "requests carry them and live feedback joins outcomes by them"
            )
        request = set(self.features.request_fields) if self.features else set()
        for entity, key_columns in self.entities.items():
            if unknown := [c for c in key_columns if self._dtype(c) is None]:
                raise ValueError(f"entities.{entity}: {unknown} are not declared columns")
            own_column = len(key_columns) == 1 and self._dtype(key_columns[0]) == "string"
            if not own_column and (self._dtype(entity) is not None or entity in request):
                raise ValueError(
                    f"entities.{entity}: its join key is named after the entity ({entity!r}, a string), "
                    f"which clashes with a column of that name; name the entity differently"
                )
        if self.features is not None:
            for hist in self.features.histories:
                if hist.measure not in primary:
                    raise ValueError(
                        f"histories[{hist.name}].measure {hist.measure!r} is not a primary-source column"
                    )
        if self.model is not None and self.features is not None:
            fs = self.features
            served = {*fs.request_schema, *(self.entity_key(e) for e in self.entities), "request__missing"}
            for group in fs.groups:
                served |= {group.name + "__missing"}
                served |= set(
                    group.feature_names()
                    if isinstance(group, HistoryFeatures)
                    else [getattr(group, "rename", {}).get(c, c) for c in group.columns]
                )
            for field in ("categorical", "numeric"):
                if unserved := [c for c in getattr(self.model, field) if c not in served]:
                    raise ValueError(
                        f"model.{field}: {unserved} are not served by the feature set (a feature "
                        "view, request_schema, an entity key or a __missing flag)"
                    )
        leaking = set(self.known_before_event) & set(self.forbidden_inputs)
        if leaking:
            raise ValueError(f"columns both known-before-event and forbidden: {sorted(leaking)}")
        return self

    def source(self, name: str) -> Source:
        try:
            return next(s for s in self.sources if s.name == name)
        except StopIteration:
            raise KeyError(f"use case {self.name} has no source {name!r}") from None

    def entity_key(self, entity: str) -> str:
        """The entity's join-key column in the feature store, whose values are strings: the key column itself
        for a single string column (``carrier``); else the entity's name, holding the key as a string
        (``route`` = 'EWR-IAH', an integer ``half_hour`` = '17', a composite (1, 17) = '1-17')."""
        columns = self.entities[entity]
        if len(columns) == 1 and self._dtype(columns[0]) == "string":
            return columns[0]
        return entity

    def _dtype(self, column: str) -> str | None:
        return next((c.dtype for s in self.sources for c in s.columns if c.name == column), None)

    @property
    def key(self) -> list[str]:
        """The primary source's key: what identifies one event (live feedback joins outcomes by it)."""
        return self.source(self.primary_source).key

    def with_drift(self, overrides: dict[str, Any]) -> UseCase:
        """This use case with some of its drift policy's fields replaced (``AIRLOOP_DRIFT_OVERRIDES``, the
        replay bench's ``--drift``), validated as the declaration is."""
        return self.with_section("drift", overrides)

    def with_section(self, section: str, overrides: dict[str, Any]) -> UseCase:
        """This use case with some fields of one section (``drift``, ``model``) replaced, validated as the
        declaration is; a field the section does not have is an error (a typo must not pass silently)."""
        if not overrides:
            return self
        current = getattr(self, section)
        if current is None:
            raise ValueError(f"use case {self.name!r} declares no {section} to override")
        unknown = sorted(set(overrides) - set(type(current).model_fields))
        if unknown:
            raise ValueError(f"{section} has no field(s) {', '.join(unknown)}")
        changed = self.model_dump()
        changed[section] = {**changed[section], **overrides}
        return type(self).model_validate(changed)

    def logged_columns(self) -> list[str]:
        """Request fields kept beside the features in the live-traffic log and in batch predictions: the
        key, the event time (and its minutes column) and the declared context columns."""
        fs = self.features
        time = [fs.event_time_column, fs.event_time_minutes_column] if fs else []
        return [c for c in dict.fromkeys([*self.key, *time, *self.context_columns]) if c]

    def ordered_sources(self) -> list[Source]:
        """Sources in validation order: referenced (dimension) sources before those that reference them."""
        return sorted(self.sources, key=lambda s: (bool(s.references), s.kind == "event", s.name))
