"""The shape of a use-case declaration.

A use case is data, not code: its sources and their columns, the event timestamp, entity keys, the label,
which columns are known before the event and which must never reach a model, and the validation rules.
The generic platform (ingestion, validation, later features/training/drift) reads only this declaration,
so onboarding a second use case means writing a new declaration module, not new DAG code.

This module imports pydantic only: DAG files may read a declaration while they are parsed.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

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
    mostly: float = Field(1.0, gt=0.0, le=1.0)


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

    @model_validator(mode="after")
    def _check(self) -> Source:
        names = {c.name for c in self.columns}
        if self.kind == "event" and self.event_timestamp not in names:
            raise ValueError(f"source {self.name}: event_timestamp must be one of its columns")
        if missing := [k for k in self.key if k not in names]:
            raise ValueError(f"source {self.name}: key columns {missing} are not declared columns")
        return self

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


class Label(BaseModel):
    """The prediction target, stated in words and as a rule the library applies."""

    name: str
    source: str
    definition: str
    delay_column: str
    threshold_minutes: float
    cancelled_when_null: str
    """Column whose null marks a cancelled event (e.g. ``dep_time``)."""
    positive_statuses: list[Literal["delayed", "cancelled", "diverted"]]


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
    """Trailing-window outcome statistics of the primary source per entity (e.g. per carrier).

    One snapshot per data interval, stamped at the interval's start, computed only from events whose
    *actual* time (event time + ``delay_column`` minutes) is strictly before that instant: share of
    events delayed more than ``delayed_minutes``, mean delay, and count, for each window in days.
    """

    name: str
    entity: str
    windows_days: list[int] = [7, 28]
    delay_column: str
    delayed_minutes: float = 15
    freshness_hours: float = 48

    def feature_names(self) -> list[str]:
        names = []
        for w in self.windows_days:
            names += [f"{self.entity}_delayed_share_{w}d", f"{self.entity}_mean_delay_{w}d", f"{self.entity}_events_{w}d"]
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
    hyperparameters: dict[str, float | int] = {}
    min_auc: float = 0.6
    """A challenger below this holdout ROC AUC is never promoted."""
    tolerance: float = 0.01
    """Promote only if the lower bound of the bootstrap CI of AUC(challenger) - AUC(champion) is at
    least ``-tolerance``: not worse than the champion beyond the tolerance, with confidence."""
    bootstrap_samples: int = 200
    invariant_inputs: list[str] = []
    """Raw request columns that must not change a prediction (e.g. the flight number)."""
    directional: dict[str, float] = {}
    """Input -> increase that must never lower the predicted risk (behaviour test)."""
    obvious_low_risk: dict[str, float] = {}
    obvious_high_risk: dict[str, float] = {}
    """Minimum functionality: rows set to the high-risk values must score above the same rows set to
    the low-risk values."""


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


class DriftPolicy(BaseModel):
    """When live data counts as drifted enough to retrain: declared per use case, tunable per feature.

    A feature is *significant* when its multiple-testing adjusted p-value is below ``alpha``; it is a
    ``warn``/``alert`` only when it is significant AND its effect size reaches the floor (large windows make
    trivial shifts significant; the floors keep them from alarming). Retraining is triggered by an alert on
    any monitored feature or on the prediction score, or by a live ROC AUC more than
    ``performance_drop`` below the champion's holdout AUC - once the window has ``min_rows`` rows and
    ``cooldown_hours`` have passed since the last drift-triggered retrain.
    """

    alpha: float = Field(0.01, gt=0, lt=1)
    correction: Literal["bh", "bonferroni"] = "bh"
    default: Thresholds = Thresholds()
    overrides: dict[str, Thresholds] = {}
    """Feature -> its own floors (e.g. a seasonal feature that may move a lot before it matters)."""
    features: list[str] | None = None
    """Monitored features; ``None``: every model input with a reference profile."""
    ignore: list[str] = []
    """Inputs not monitored (e.g. missing-value flags)."""
    prediction: bool = True
    """Also test the score distribution (prediction drift) with the ``score`` floors."""
    min_rows: int = Field(1000, ge=1)
    """A window smaller than this is reported but never triggers."""
    new_rows: int = Field(2000, ge=1)
    """The sensor waits for this many new live rows since the last checked window ..."""
    max_wait_minutes: float = 24 * 60
    """... or at most this long, then checks whatever arrived."""
    cooldown_hours: float = 24
    performance_drop: float = Field(0.05, ge=0)
    min_labelled_rows: int = Field(500, ge=1)

    def thresholds(self, feature: str) -> Thresholds:
        return self.overrides.get(feature, self.default)


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
    features: FeatureSet | None = None
    model: ModelSpec | None = None
    drift: DriftPolicy = DriftPolicy()

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
            for group in [*fs.observations, *fs.histories, *fs.attributes]:
                if group.entity not in self.entities:
                    raise ValueError(f"feature group {group.name}: unknown entity {group.entity!r}")
            leaked = set(fs.request_fields) & set(self.forbidden_inputs)
            if leaked:
                raise ValueError(f"request fields include forbidden inputs: {sorted(leaked)}")
        if self.model is not None:
            inputs = set(self.model.categorical) | set(self.model.numeric) | set(self.model.monotone_increasing)
            if inputs & set(self.forbidden_inputs):
                raise ValueError(f"model inputs include forbidden columns: {sorted(inputs & set(self.forbidden_inputs))}")
            if not set(self.model.monotone_increasing) <= set(self.model.numeric):
                raise ValueError("monotone_increasing inputs must be numeric inputs")
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
        """The single join-key column of an entity (several key columns are joined into one, with '-')."""
        columns = self.entities[entity]
        return columns[0] if len(columns) == 1 else entity

    def ordered_sources(self) -> list[Source]:
        """Sources in validation order: referenced (dimension) sources before those that reference them."""
        return sorted(self.sources, key=lambda s: (bool(s.references), s.kind == "event", s.name))
