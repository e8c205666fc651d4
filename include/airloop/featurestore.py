"""The feature store behind a small interface: Feast definitions built from the use-case declaration,
repository configuration from the settings, materialization of exact intervals, and retrieval.

Embedded: local provider, file offline store over the lake's Parquet partitions, SQLite online store,
file registry. Production: Redis online store and a SQL registry on PostgreSQL (same definitions).
Feast is imported only inside functions: it costs ~4 s to import.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from airloop.features import TS, apply_defaults, entity_keys, event_times, key_string
from airloop.settings import Settings
from airloop.usecase import UseCase

if TYPE_CHECKING:
    from feast import FeatureStore

logger = logging.getLogger(__name__)

ROW_ID = "row_id"
MISSING_KEY = "__missing__"


def features_dir(settings: Settings, view: str) -> Path:
    """Where a feature view's interval partitions live (the Feast FileSource path)."""
    return settings.lake / "features" / view


def project_name(settings: Settings, use_case: UseCase) -> str:
    return settings.feast_project or f"airloop_{use_case.name}"


def repo_config(settings: Settings, use_case: UseCase) -> Any:
    """Feast ``RepoConfig`` for the configured environment (nothing is written to disk)."""
    from feast import RepoConfig
    from feast.repo_config import RegistryConfig

    state = settings.home / "feast"
    state.mkdir(parents=True, exist_ok=True)
    from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig

    # DuckDB (through ibis) does the point-in-time join as a range join bounded by each view's TTL; the
    # default dask file store merges every feature row of a key with every entity row, which does not fit
    # in memory for a year of training data.
    common = {"project": project_name(settings, use_case), "provider": "local", "offline_store": DuckDBOfflineStoreConfig(),
              "entity_key_serialization_version": 3, "repo_path": str(settings.feast_repo)}
    if settings.env == "production" or settings.feast_online == "redis":
        from feast.infra.online_stores.redis import RedisOnlineStoreConfig

        redis = _redis_connection_string(settings)
        from feast.infra.registry.sql import SqlRegistryConfig

        registry = SqlRegistryConfig(registry_type="sql", path=_sqlalchemy_url(settings), cache_ttl_seconds=60,
                                     sqlalchemy_config_kwargs={"pool_pre_ping": True})
        return RepoConfig(**common, registry=registry, online_store=RedisOnlineStoreConfig(connection_string=redis))
    from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig

    return RepoConfig(**common, registry=RegistryConfig(path=str(state / "registry.db"), cache_ttl_seconds=60),
                      online_store=SqliteOnlineStoreConfig(path=str(state / "online_store.db")))


def _redis_connection_string(settings: Settings) -> str:
    """``redis://host:port/db`` -> Feast's ``host:port,db=N`` form."""
    if settings.redis_url is None:
        raise ValueError("the Redis online store needs AIRLOOP_REDIS_URL")
    from urllib.parse import urlparse

    url = urlparse(settings.redis_url.get_secret_value())
    db = (url.path or "/0").lstrip("/") or "0"
    auth = f",password={url.password}" if url.password else ""
    return f"{url.hostname}:{url.port or 6379},db={db}{auth}"


def _sqlalchemy_url(settings: Settings) -> str:
    if settings.postgres_dsn is None:
        raise ValueError("the SQL registry needs AIRLOOP_POSTGRES_DSN")
    dsn = settings.postgres_dsn.get_secret_value()
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1) if dsn.startswith("postgresql://") else dsn


def write_cli_repo(settings: Settings, use_case: UseCase) -> Path:
    """A folder the Feast CLI can use (``feast -c <folder> plan|apply``): the generated
    ``feature_store.yaml`` for these settings beside the tracked definitions module."""
    import yaml

    config = repo_config(settings, use_case)
    folder = settings.home / "feature_repo"
    folder.mkdir(parents=True, exist_ok=True)
    payload = config.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_unset=True)
    payload.pop("repo_path", None)
    for key in ("registry", "online_store"):
        section = getattr(config, key if key != "registry" else "registry_config", None) or payload.get(key)
        if hasattr(section, "model_dump"):
            payload[key] = section.model_dump(mode="json", exclude_none=True)
    (folder / "feature_store.yaml").write_text(yaml.safe_dump(payload, sort_keys=False))
    # The Feast CLI imports every .py under the folder: a copy of the tracked definitions module (which
    # builds the objects from the declaration) keeps a single source of truth.
    (folder / "feature_definitions.py").write_text((settings.feast_repo / "feature_definitions.py").read_text())
    return folder


_FEAST_TYPES = {"int64": "Int64", "float64": "Float64", "string": "String", "timestamp": "UnixTimestamp"}


def build_definitions(use_case: UseCase, settings: Settings) -> list[Any]:
    """All Feast objects of the use case, from its declaration (see include/feature_repo)."""
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, RequestSource, ValueType
    from feast import types as ftypes
    from feast.data_format import ParquetFormat
    from feast.on_demand_feature_view import on_demand_feature_view

    fs = use_case.features
    if fs is None:
        raise ValueError(f"use case {use_case.name} declares no features")
    entities = {
        # One Entity per declared business key; composite keys (route = origin-dest) get one join key.
        name: Entity(name=name, join_keys=[use_case.entity_key(name)], value_type=ValueType.STRING,
                     description=f"{use_case.name}: {' + '.join(cols)}")
        for name, cols in use_case.entities.items()
    }

    def view(name: str, entity: str, columns: list[str], ttl: timedelta, description: str) -> Any:
        # Each view reads its own interval partitions (lake/features/<view>/ds=YYYY-MM-DD) from the lake.
        source = FileSource(name=f"{name}_source", path=str(features_dir(settings, name) / "ds=*" / "*.parquet"),
                            file_format=ParquetFormat(), timestamp_field=TS)
        schema = [Field(name=c, dtype=ftypes.Float64) for c in columns]
        return FeatureView(name=name, entities=[entities[entity]], ttl=ttl, schema=schema, source=source,
                           online=True, description=description, tags={"use_case": use_case.name})

    views = []
    for obs in fs.observations:
        # Latest observation within its TTL: a weather gap falls back to the last reading, never a future one.
        views.append(view(obs.name, obs.entity, obs.columns, timedelta(hours=obs.ttl_hours),
                          f"latest {obs.source} observation per {obs.entity}"))
    for hist in fs.histories:
        # Daily snapshots of trailing statistics; a snapshot is valid until the next (TTL 2 days covers a gap).
        views.append(view(hist.name, hist.entity, hist.feature_names(), timedelta(days=2),
                          f"trailing {hist.windows_days}-day {hist.measure} statistics per {hist.entity}"))
    attribute_views = []
    for attr in fs.attributes:
        # Slowly changing attributes: valid until replaced (ten years stands for "no expiry"; TTL 0 does
        # not survive the SQL registry's round trip in Feast 0.67).
        v = view(attr.name, attr.entity, [attr.rename.get(c, c) for c in attr.columns], timedelta(days=3650),
                 f"{attr.source} attributes per {attr.entity}")
        views.append(v)
        attribute_views.append(v)
    # Request data + the declared transform: computed identically for training rows and live requests.
    request = RequestSource(name="request", schema=[Field(name=n, dtype=getattr(ftypes, _FEAST_TYPES[t]))
                                                     for n, t in fs.request_fields.items()])
    module, func = fs.request_transform.split(":")
    transform = on_demand_feature_view(
        sources=[request, *attribute_views],
        schema=[Field(name=n, dtype=getattr(ftypes, _FEAST_TYPES[t])) for n, t in fs.request_schema.items()],
        mode="pandas",
    )(_fresh_copy(getattr(import_module(module), func)))
    # One FeatureService per model version: the exact feature list a model was trained on.
    service = FeatureService(name=fs.service, features=[*views, transform],
                             description=f"features of {use_case.model_name} ({fs.service})")
    return [*entities.values(), *views, transform, service]


def _fresh_copy(func: Any) -> Any:
    """A new function object with the same code: Feast's decorator rewrites ``__module__`` of the
    function it is given (so dill pickles it by value), which would break the next build."""
    import types

    copy = types.FunctionType(func.__code__, func.__globals__, func.__name__, func.__defaults__, func.__closure__)
    copy.__doc__, copy.__qualname__ = func.__doc__, func.__qualname__
    return copy


@dataclass
class ApplyResult:
    changed: bool
    plan: str


def apply_if_changed(store: FeatureStore, objects: list[Any]) -> ApplyResult:
    """Plan the definitions against the registry; apply (and log the plan) only when something changed."""
    from feast import Entity, FeatureService, FeatureView, Project
    from feast.repo_contents import RepoContents
    from feast.on_demand_feature_view import OnDemandFeatureView

    from feast.feature_view import DUMMY_ENTITY

    views = [o for o in objects if isinstance(o, FeatureView)]
    odfvs = [o for o in objects if isinstance(o, OnDemandFeatureView)]
    contents = RepoContents(
        projects=[Project(name=store.project)],
        data_sources=[v.batch_source for v in views] + [r for o in odfvs for r in o.source_request_sources.values()],
        entities=[o for o in objects if isinstance(o, Entity)] + [DUMMY_ENTITY],  # Feast's own, always present
        feature_views=views, on_demand_feature_views=odfvs, stream_feature_views=[], label_views=[],
        feature_services=[o for o in objects if isinstance(o, FeatureService)], permissions=[],
    )
    registry_diff, infra_diff, _ = store.plan(contents)
    plan = registry_diff.to_string()
    changed = any(_material(d) for d in registry_diff.feast_object_diffs)
    logger.debug("plan transitions: %s", [(d.name, d.transition_type.name) for d in registry_diff.feast_object_diffs])
    if changed:
        logger.info("feature store plan:\n%s", plan)
        store.apply(objects)
    else:
        logger.info("feature definitions unchanged: nothing to apply")
    return ApplyResult(changed, plan)


def _material(diff: Any) -> bool:
    """A diff that changes something: not only the bookkeeping timestamps Feast keeps in data sources."""
    kind = diff.transition_type.name
    if kind in ("UNCHANGED", "UNKNOWN"):
        return False
    if kind != "UPDATE":
        return True
    for prop in diff.feast_object_property_diffs:
        if prop.property_name != "batch_source":
            return True
        old, new = type(prop.val_existing)(), type(prop.val_declared)()
        old.CopyFrom(prop.val_existing)
        new.CopyFrom(prop.val_declared)
        for proto in (old, new):
            proto.meta.Clear()
        if old != new:
            return True
    return False


def open_store(settings: Settings, use_case: UseCase, apply: bool = True) -> FeatureStore:
    """A FeatureStore for the settings; with ``apply`` the definitions are brought up to date first."""
    from feast import FeatureStore

    store = FeatureStore(config=repo_config(settings, use_case))
    if apply:
        apply_if_changed(store, build_definitions(use_case, settings))
    return store


def materialize_days(store: FeatureStore, use_case: UseCase, days: list[date]) -> None:
    """Materialize exactly the given days' intervals (contiguous runs of days in one call each)."""
    from airloop.intervals import DayInterval

    for first, last in _runs(sorted(days)):
        start = DayInterval(first, use_case.timezone).start
        end = DayInterval(last, use_case.timezone).end
        logger.info("materializing %s .. %s", start, end)
        store.materialize(start_date=start, end_date=end)


def _runs(days: list[date]) -> list[tuple[date, date]]:
    runs: list[tuple[date, date]] = []
    for d in days:
        if runs and (d - runs[-1][1]).days == 1:
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


def entity_frame(events: pd.DataFrame, use_case: UseCase) -> pd.DataFrame:
    """Feast entity rows for events: join keys, prediction instant, request fields, and a row id."""
    fs = use_case.features
    assert fs is not None
    out = pd.DataFrame(index=events.index)
    for entity in use_case.entities:
        out[use_case.entity_key(entity)] = entity_keys(events, use_case, entity).astype("object")
    for name, dtype in fs.request_fields.items():
        out[name] = events[name].astype(dtype if dtype != "string" else "object")
    out[TS] = event_times(events, use_case)
    out[ROW_ID] = range(len(out))
    return out.reset_index(drop=True)


def historical_features(store: FeatureStore, use_case: UseCase, events: pd.DataFrame,
                        at: pd.Timestamp | None = None) -> pd.DataFrame:
    """Point-in-time-correct features for ``events`` (rows of the primary source), in their order.

    Each row's features are those known at its own prediction instant, or at ``at`` for all rows
    (batch scoring ahead of time: only what was known when the batch ran).
    """
    fs = use_case.features
    assert fs is not None
    entities = entity_frame(events, use_case)
    if at is not None:
        entities[TS] = at
    # Feast's offline stores identify entity rows by their join keys and timestamp (dask:
    # _drop_duplicates; duckdb/ibis: _entity_row_id), silently merging e.g. two flights of one origin in
    # the same minute. Each row's timestamp is made unique by adding its row number in
    # microseconds - far below the resolution of any feature stamp (whole minutes) - and restored after.
    exact = entities[TS].copy()
    entities[TS] = entities[TS] + pd.to_timedelta(entities[ROW_ID], unit="us")
    job = store.get_historical_features(entity_df=entities, features=store.get_feature_service(fs.service, allow_cache=True))
    frame = job.to_df().sort_values(ROW_ID).reset_index(drop=True)
    if len(frame) != len(entities):
        raise RuntimeError(f"historical retrieval returned {len(frame)} rows for {len(entities)} events")
    frame[TS] = exact.to_numpy()
    return frame


def training_set(store: FeatureStore, use_case: UseCase, events: pd.DataFrame,
                 carry: Sequence[str] = ()) -> pd.DataFrame:
    """Features (defaults applied, missing flags) + label for the ``events`` whose outcome is known: what a
    model trains on; ``carry``: event columns kept beside them (context, slices)."""
    from airloop.labels import make_label

    labelled = make_label(events.reset_index(drop=True), use_case.label).reset_index(drop=True)
    features = apply_defaults(historical_features(store, use_case, labelled), use_case)
    for column in (use_case.label.name, f"{use_case.label.name}_status", *carry):
        if column not in features.columns:
            features[column] = labelled[column].to_numpy()
    return features


def _service(store: FeatureStore, name: str) -> Any:
    """The FeatureService object, kept on the store: rebuilding it from the registry proto on every
    request cost ~6 ms of typeguard checks, and a new object per call defeated Feast's request cache."""
    cache = store.__dict__.setdefault("_airloop_services", {})
    if name not in cache:
        cache[name] = store.get_feature_service(name, allow_cache=True)
    return cache[name]


def online_features(store: FeatureStore, use_case: UseCase, requests: pd.DataFrame,
                    as_of: datetime) -> pd.DataFrame:
    """Online features for request rows, with defaults and per-view flags.

    ``<view>__unknown`` = 1 when the store has no row for the entity (a new route, carrier or plane):
    the declared defaults are served. ``<view>__stale`` = 1 when the stored value is older than the
    view's freshness limit at ``as_of`` (the request's time; passed in, never read from the clock).
    Read straight from the online store (``OnlineLookup``); ``online_features_reference`` is the same
    through Feast's ``get_online_features``, and the serving tests assert that both agree exactly.
    """
    lookup = online_lookup(store, use_case)
    columns = {name: requests[name].to_numpy() for name in lookup.request_columns}
    return pd.DataFrame(lookup.features(columns, as_of), index=pd.RangeIndex(len(requests)))


def online_features_reference(store: FeatureStore, use_case: UseCase, requests: pd.DataFrame,
                              as_of: datetime) -> pd.DataFrame:
    """``online_features`` through Feast's ``get_online_features`` (entity rows, the on-demand view in
    pandas mode, ``apply_defaults``): ~10x slower per call, the oracle the fast path is tested against."""
    fs = use_case.features
    assert fs is not None
    entities = entity_frame(requests, use_case).drop(columns=[TS, ROW_ID])
    # A missing key (e.g. no tail number yet) is an unknown entity, not a crash in Feast's key sort.
    entities = entities.astype(object).where(entities.notna(), MISSING_KEY) if entities.isna().any().any() else entities
    response = store.get_online_features(features=_service(store, fs.service),
                                         entity_rows=entities.to_dict("records"))
    raw = response.to_dict(include_event_timestamps=True)
    out = pd.DataFrame({k: v for k, v in raw.items() if not k.endswith("__ts")})
    now = pd.Timestamp(as_of).tz_convert("UTC").timestamp()
    limits = {o.name: (o.columns, o.freshness_hours) for o in fs.observations}
    limits |= {h.name: (h.feature_names(), h.freshness_hours) for h in fs.histories}
    limits |= {a.name: ([a.rename.get(c, c) for c in a.columns], None) for a in fs.attributes}
    for name, (columns, fresh_hours) in limits.items():
        stamps = pd.Series(raw[f"{columns[0]}__ts"], dtype="float64").fillna(0)
        out[f"{name}__unknown"] = (stamps <= 0).astype("int8").to_numpy()
        if fresh_hours is not None:
            stale = (stamps > 0) & (now - stamps > fresh_hours * 3600)
            out[f"{name}__stale"] = stale.astype("int8").to_numpy()
    return apply_defaults(out, use_case)


@dataclass(frozen=True)
class _OnlineView:
    name: str
    entity: str
    key: str
    """join-key column"""
    table: Any
    """the FeatureView with the FeatureService's projection, as Feast reads it"""
    features: list[str]
    """in declared order"""
    fresh_hours: float | None


_NUMPY_TYPES = {"int64": "int64", "float64": "float64"}


def online_lookup(store: FeatureStore, use_case: UseCase) -> OnlineLookup:
    """The ``OnlineLookup`` of the use case's FeatureService, built once per store object (like
    ``_service``: definitions applied later are seen by a new store object, e.g. after a restart)."""
    cache = store.__dict__.setdefault("_airloop_lookups", {})
    if use_case.name not in cache:
        cache[use_case.name] = OnlineLookup(store, use_case)
    return cache[use_case.name]


class OnlineLookup:
    """Online features of one FeatureService read straight from the online store.

    Feast's ``get_online_features`` spends ~10 ms of Python per call on one row (feature-reference
    parsing, protobuf responses, an Arrow round trip for the on-demand view): that was most of a
    single-row prediction. Here the plan (views, projections, join keys) is resolved once; a call
    reads each view with the online store's own ``online_read`` (the same SQL or Redis reads Feast
    issues), computes the request-time features with the use case's transform (the function the
    on-demand view wraps) and applies the declared defaults on arrays, with the semantics of
    ``features.apply_defaults``. Values and flags equal ``online_features_reference`` exactly.
    """

    def __init__(self, store: FeatureStore, use_case: UseCase) -> None:
        fs = use_case.features
        assert fs is not None
        self.use_case = use_case
        service = _service(store, fs.service)
        projections = {p.name: p for p in service.feature_view_projections}
        specs: list[tuple[str, str, list[str], float | None]] = [
            *[(o.name, o.entity, list(o.columns), o.freshness_hours) for o in fs.observations],
            *[(h.name, h.entity, h.feature_names(), h.freshness_hours) for h in fs.histories],
            *[(a.name, a.entity, [a.rename.get(c, c) for c in a.columns], None) for a in fs.attributes],
        ]
        self.views = [
            _OnlineView(name, entity, use_case.entity_key(entity),
                        store.get_feature_view(name, allow_registry_cache=True).with_projection(projections[name]),
                        features, fresh)
            for name, entity, features, fresh in specs
        ]
        self.entities = [e for e in use_case.entities if any(v.entity == e for v in self.views)]
        # The stored features the request-time transform reads: its on-demand view's feature-view sources.
        stored = {v.name for v in self.views}
        odfvs = [store.get_on_demand_feature_view(p.name, allow_registry_cache=True)
                 for p in service.feature_view_projections if p.name not in stored]
        sources = {name for odfv in odfvs for name in odfv.source_feature_view_projections}
        self.transform_inputs = [f for v in self.views if v.name in sources for f in v.features]
        self.request_fields = dict(fs.request_fields)
        self.request_schema = dict(fs.request_schema)
        module, func = fs.request_transform.split(":")
        self.transform = getattr(import_module(module), func)
        # (FeatureStore has no public accessor for its provider's online store.)
        self.online_store = store._get_provider().online_store
        self.config = store.config
        self.groups = {v.name: v.features for v in self.views} | {"request": list(fs.request_schema)}
        self.defaults = dict(fs.defaults)
        self.request_columns = list(dict.fromkeys(
            [c for e in self.entities for c in use_case.entities[e]] + list(self.request_fields)))

    def keys(self, columns: dict[str, Any]) -> dict[str, list[str]]:
        """Join-key values per entity (``features.entity_keys`` on lists; a missing key -> ``MISSING_KEY``)."""
        out = {}
        for entity in self.entities:
            parts = self.use_case.entities[entity]
            if len(parts) == 1:
                values = [MISSING_KEY if (k := key_string(v)) is None else k for v in columns[parts[0]]]
            else:
                values = ["-".join(MISSING_KEY if (k := key_string(v)) is None else k for v in row)
                          for row in zip(*(columns[p] for p in parts), strict=True)]
            out[self.use_case.entity_key(entity)] = values
        return out

    def read(self, view: _OnlineView, keys: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """One view's values (float64, NaN = null) and event stamps (whole seconds, 0 = no row) per key."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value
        from google.protobuf.timestamp_pb2 import Timestamp

        unique = list(dict.fromkeys(keys))
        protos = [EntityKey(join_keys=[view.key], entity_values=[Value(string_val=k)]) for k in unique]
        rows = self.online_store.online_read(config=self.config, table=view.table, entity_keys=protos,
                                             requested_features=view.features)
        position = {k: i for i, k in enumerate(unique)}
        where = [position[k] for k in keys]
        values = np.full((len(unique), len(view.features)), np.nan)
        stamps = np.zeros(len(unique))
        for i, (stamp, data) in enumerate(rows):
            if data is None:
                continue
            if stamp is not None:  # whole seconds, as Feast's response carries them
                ts = Timestamp()
                ts.FromDatetime(stamp)
                stamps[i] = ts.seconds
            for j, name in enumerate(view.features):
                value = data.get(name)
                kind = value.WhichOneof("val") if value is not None else None
                if kind is not None and kind != "null_val":
                    values[i, j] = float(getattr(value, kind))
        return {name: values[where, j] for j, name in enumerate(view.features)}, stamps[where]

    def features(self, columns: dict[str, Any], as_of: datetime | list[datetime]) -> dict[str, np.ndarray]:
        """Feature columns for request rows given column-wise (``request_columns``), in a fixed order:
        join keys, each view's features, the request-time features, ``__unknown``/``__stale`` flags,
        ``__missing`` flags. ``as_of``: one instant for all rows, or one per row."""
        keys = self.keys(columns)
        out: dict[str, np.ndarray] = {k: np.array(v, dtype=object) for k, v in keys.items()}
        flags: dict[str, np.ndarray] = {}
        if isinstance(as_of, list):
            seconds = {t: pd.Timestamp(t).tz_convert("UTC").timestamp() for t in set(as_of)}
            now: float | np.ndarray = np.array([seconds[t] for t in as_of])
        else:
            now = pd.Timestamp(as_of).tz_convert("UTC").timestamp()
        for view in self.views:
            values, stamps = self.read(view, keys[view.key])
            out.update(values)
            flags[f"{view.name}__unknown"] = (stamps <= 0).astype("int8")
            if view.fresh_hours is not None:
                flags[f"{view.name}__stale"] = ((stamps > 0) & (now - stamps > view.fresh_hours * 3600)).astype("int8")
        # The on-demand view's input: request fields as declared, and the stored features it reads.
        inputs = pd.DataFrame({**{name: np.asarray(columns[name], dtype=dtype if dtype != "string" else object)
                                  for name, dtype in self.request_fields.items()},
                               **{name: out[name] for name in self.transform_inputs}})
        computed = self.transform(inputs)
        for name, dtype in self.request_schema.items():  # as the declared schema types them
            out[name] = computed[name].to_numpy(dtype=_NUMPY_TYPES.get(dtype, object))
        out.update(flags)
        return with_defaults(out, self.groups, self.defaults)


def with_defaults(columns: dict[str, np.ndarray], groups: dict[str, list[str]],
                  defaults: dict[str, float]) -> dict[str, np.ndarray]:
    """``features.apply_defaults`` on arrays: ``<group>__missing`` = 1 where any of the group's values
    is missing (before filling), then missing values -> the declared defaults; flags appended last."""
    def missing(values: np.ndarray) -> np.ndarray:
        return np.isnan(values) if values.dtype.kind == "f" else pd.isna(values)

    flags = {}
    for name, group in groups.items():
        present = [missing(columns[c]) for c in group if c in columns]
        if present:
            flags[f"{name}__missing"] = np.logical_or.reduce(present).astype("int8")
    out = {}
    for name, values in columns.items():
        if name in flags:
            continue
        if name in defaults and (gaps := missing(values)).any():
            values = np.where(gaps, defaults[name], values.astype("float64"))
        out[name] = values
    return out | flags
