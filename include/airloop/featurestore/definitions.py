"""The Feast objects of a use case, built from its declaration, and applying them only when they changed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module
from typing import TYPE_CHECKING, Any

from airloop.features import TS
from airloop.settings import Settings
from airloop.usecase import UseCase

if TYPE_CHECKING:
    from feast import FeatureStore

from airloop.featurestore.config import features_dir

logger = logging.getLogger(__name__)


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
        name: Entity(
            name=name,
            join_keys=[use_case.entity_key(name)],
            value_type=ValueType.STRING,
            description=f"{use_case.name}: {' + '.join(cols)}",
        )
        for name, cols in use_case.entities.items()
    }

    def view(name: str, entity: str, columns: list[str], ttl: timedelta, description: str) -> Any:
        # Each view reads its own interval partitions (lake/features/<view>/ds=YYYY-MM-DD) from the lake.
        source = FileSource(
            name=f"{name}_source",
            path=str(features_dir(settings, name) / "ds=*" / "*.parquet"),
            file_format=ParquetFormat(),
            timestamp_field=TS,
        )
        schema = [Field(name=c, dtype=ftypes.Float64) for c in columns]
        return FeatureView(
            name=name,
            entities=[entities[entity]],
            ttl=ttl,
            schema=schema,
            source=source,
            online=True,
            description=description,
            tags={"use_case": use_case.name},
        )

    views = []
    for obs in fs.observations:
        # Latest observation within its TTL: a weather gap falls back to the last reading, never a future one.
        views.append(
            view(
                obs.name,
                obs.entity,
                obs.columns,
                timedelta(hours=obs.ttl_hours),
                f"latest {obs.source} observation per {obs.entity}",
            )
        )
    for hist in fs.histories:
        # Daily snapshots of trailing statistics; a snapshot is valid until the next
        # (TTL 2 days covers a gap).
        views.append(
            view(
                hist.name,
                hist.entity,
                hist.feature_names(),
                timedelta(days=2),
                f"trailing {hist.windows_days}-day {hist.measure} statistics per {hist.entity}",
            )
        )
    attribute_views = []
    for attr in fs.attributes:
        # Slowly changing attributes: valid until replaced (ten years stands for "no expiry"; TTL 0 does
        # not survive the SQL registry's round trip in Feast 0.67).
        v = view(
            attr.name,
            attr.entity,
            [attr.rename.get(c, c) for c in attr.columns],
            timedelta(days=3650),
            f"{attr.source} attributes per {attr.entity}",
        )
        views.append(v)
        attribute_views.append(v)
    # Request data + the declared transform: computed identically for training rows and live requests.
    request = RequestSource(
        name="request",
        schema=[Field(name=n, dtype=getattr(ftypes, _FEAST_TYPES[t])) for n, t in fs.request_fields.items()],
    )
    module, func = fs.request_transform.split(":")
    transform = on_demand_feature_view(
        sources=[request, *attribute_views],
        schema=[Field(name=n, dtype=getattr(ftypes, _FEAST_TYPES[t])) for n, t in fs.request_schema.items()],
        mode="pandas",
    )(_fresh_copy(getattr(import_module(module), func)))
    # One FeatureService per model version: the exact feature list a model was trained on.
    service = FeatureService(
        name=fs.service,
        features=[*views, transform],
        description=f"features of {use_case.model_name} ({fs.service})",
    )
    return [*entities.values(), *views, transform, service]


def _fresh_copy(func: Any) -> Any:
    """A new function object with the same code: Feast's decorator rewrites ``__module__`` of the
    function it is given (so dill pickles it by value), which would break the next build."""
    import types

    copy = types.FunctionType(
        func.__code__, func.__globals__, func.__name__, func.__defaults__, func.__closure__
    )
    copy.__doc__, copy.__qualname__ = func.__doc__, func.__qualname__
    return copy


@dataclass
class ApplyResult:
    changed: bool
    plan: str


def apply_if_changed(store: FeatureStore, objects: list[Any]) -> ApplyResult:
    """Plan the definitions against the registry; apply (and log the plan) only when something changed."""
    from feast import Entity, FeatureService, FeatureView, Project
    from feast.feature_view import DUMMY_ENTITY
    from feast.on_demand_feature_view import OnDemandFeatureView
    from feast.repo_contents import RepoContents

    views = [o for o in objects if isinstance(o, FeatureView)]
    odfvs = [o for o in objects if isinstance(o, OnDemandFeatureView)]
    contents = RepoContents(
        projects=[Project(name=store.project)],
        data_sources=[v.batch_source for v in views]
        + [r for o in odfvs for r in o.source_request_sources.values()],
        entities=[o for o in objects if isinstance(o, Entity)]
        + [DUMMY_ENTITY],  # Feast's own, always present
        feature_views=views,
        on_demand_feature_views=odfvs,
        stream_feature_views=[],
        label_views=[],
        feature_services=[o for o in objects if isinstance(o, FeatureService)],
        permissions=[],
    )
    registry_diff, infra_diff, _ = store.plan(contents)
    plan = registry_diff.to_string()
    changed = any(_material(d) for d in registry_diff.feast_object_diffs)
    logger.debug(
        "plan transitions: %s", [(d.name, d.transition_type.name) for d in registry_diff.feast_object_diffs]
    )
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
