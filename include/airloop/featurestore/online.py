"""Online side: features for request rows, through Feast (the reference path) and through ``OnlineLookup``
(the serving path: the same reads with the plan resolved once)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from importlib import import_module
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from airloop.features import TS, apply_defaults, key_string
from airloop.usecase import UseCase

if TYPE_CHECKING:
    from feast import FeatureStore

from airloop.featurestore.offline import ROW_ID, entity_frame

logger = logging.getLogger(__name__)


MISSING_KEY = "__missing__"


class StoreUnavailableError(RuntimeError):
    """The online store did not answer (refused, timed out, connection lost): a dependency outage, not a
    bad request; the service answers 503 with ``Retry-After`` and reports not ready until it answers."""


def _service(store: FeatureStore, name: str) -> Any:
    """The FeatureService object, kept on the store: rebuilding it from the registry proto on every
    request cost ~6 ms of typeguard checks, and a new object per call defeated Feast's request cache."""
    cache = store.__dict__.setdefault("_airloop_services", {})
    if name not in cache:
        cache[name] = store.get_feature_service(name, allow_cache=True)
    return cache[name]


def online_features(
    store: FeatureStore, use_case: UseCase, requests: pd.DataFrame, as_of: datetime
) -> pd.DataFrame:
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


def online_features_reference(
    store: FeatureStore, use_case: UseCase, requests: pd.DataFrame, as_of: datetime
) -> pd.DataFrame:
    """``online_features`` through Feast's ``get_online_features`` (entity rows, the on-demand view in
    pandas mode, ``apply_defaults``): ~10x slower per call, the oracle the fast path is tested against."""
    fs = use_case.features
    assert fs is not None
    entities = entity_frame(requests, use_case).drop(columns=[TS, ROW_ID])
    # A missing key (e.g. no tail number yet) is an unknown entity, not a crash in Feast's key sort.
    entities = (
        entities.astype(object).where(entities.notna(), MISSING_KEY)
        if entities.isna().any().any()
        else entities
    )
    response = store.get_online_features(
        features=_service(store, fs.service), entity_rows=entities.to_dict("records")
    )
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
            _OnlineView(
                name,
                entity,
                use_case.entity_key(entity),
                store.get_feature_view(name, allow_registry_cache=True).with_projection(projections[name]),
                features,
                fresh,
            )
            for name, entity, features, fresh in specs
        ]
        self.entities = [e for e in use_case.entities if any(v.entity == e for v in self.views)]
        # The stored features the request-time transform reads: its on-demand view's feature-view sources.
        stored = {v.name for v in self.views}
        odfvs = [
            store.get_on_demand_feature_view(p.name, allow_registry_cache=True)
            for p in service.feature_view_projections
            if p.name not in stored
        ]
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
        self.request_columns = list(
            dict.fromkeys(
                [c for e in self.entities for c in use_case.entities[e]] + list(self.request_fields)
            )
        )
        self._outages: tuple[type[BaseException], ...] = (OSError,)
        self._redis = None  # the Redis client, when the online store is Redis (``bound``, ``ping``)

    def bound(self, seconds: float) -> OnlineLookup:
        """Bound every online-store call to ``seconds`` and do not retry it (the service's setting): a
        store that is down costs a request ``seconds`` at most, not redis-py's default three retries
        with exponential back-off (4-9 s measured). Other stores are local files: nothing to bound."""
        from feast.infra.online_stores.redis import RedisOnlineStore

        if isinstance(self.online_store, RedisOnlineStore):
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            client = self.online_store._get_client(self.config.online_store)
            client.connection_pool.connection_kwargs.update(
                socket_timeout=seconds, socket_connect_timeout=seconds
            )
            client.set_retry(Retry(NoBackoff(), 0))
            self._redis = client
            self._outages = (OSError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        return self

    def ping(self) -> None:
        """Raise ``StoreUnavailableError`` unless the online store answers now."""
        if self._redis is not None:
            try:
                self._redis.ping()
            except self._outages as error:
                raise StoreUnavailableError(f"online store unreachable: {error}") from error

    def keys(self, columns: dict[str, Any]) -> dict[str, list[str]]:
        """Join-key values per entity (``features.entity_keys`` on lists; a key with any part missing ->
        ``MISSING_KEY``, as the reference path makes of the offline null)."""
        out = {}
        for entity in self.entities:
            parts = self.use_case.entities[entity]
            if len(parts) == 1:
                values = [MISSING_KEY if (k := key_string(v)) is None else k for v in columns[parts[0]]]
            else:
                joined = [
                    [key_string(v) for v in row] for row in zip(*(columns[p] for p in parts), strict=True)
                ]
                values = [MISSING_KEY if None in row else "-".join(row) for row in joined]  # type: ignore[arg-type]
            out[self.use_case.entity_key(entity)] = values
        return out

    def read(self, view: _OnlineView, keys: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """One view's values (float64, NaN = null) and event stamps (whole seconds, 0 = no row) per key."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value
        from google.protobuf.timestamp_pb2 import Timestamp

        unique = list(dict.fromkeys(keys))
        protos = [EntityKey(join_keys=[view.key], entity_values=[Value(string_val=k)]) for k in unique]
        try:
            rows = self.online_store.online_read(
                config=self.config, table=view.table, entity_keys=protos, requested_features=view.features
            )
        except self._outages as error:
            raise StoreUnavailableError(f"online store unreachable: {error}") from error
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
                flags[f"{view.name}__stale"] = (
                    (stamps > 0) & (now - stamps > view.fresh_hours * 3600)
                ).astype("int8")
        # The on-demand view's input: request fields as declared, and the stored features it reads.
        inputs = pd.DataFrame(
            {
                **{
                    name: np.asarray(columns[name], dtype=dtype if dtype != "string" else object)
                    for name, dtype in self.request_fields.items()
                },
                **{name: out[name] for name in self.transform_inputs},
            }
        )
        computed = self.transform(inputs)
        for name, dtype in self.request_schema.items():  # as the declared schema types them
            out[name] = computed[name].to_numpy(dtype=_NUMPY_TYPES.get(dtype, object))
        out.update(flags)
        return with_defaults(out, self.groups, self.defaults)


def with_defaults(
    columns: dict[str, np.ndarray], groups: dict[str, list[str]], defaults: dict[str, float]
) -> dict[str, np.ndarray]:
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
