"""Feast repository configuration from the settings (embedded: SQLite online store and file registry;
production: Redis and a SQL registry on PostgreSQL), the Feast CLI folder, and opening a store."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airloop.settings import Settings
from airloop.usecase import UseCase

if TYPE_CHECKING:
    from feast import FeatureStore


logger = logging.getLogger(__name__)


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
    common = {
        "project": project_name(settings, use_case),
        "provider": "local",
        "offline_store": DuckDBOfflineStoreConfig(),
        "entity_key_serialization_version": 3,
        "repo_path": str(settings.feast_repo),
    }
    if settings.online_store == "redis":
        from feast.infra.online_stores.redis import RedisOnlineStoreConfig

        redis = _redis_connection_string(settings)
        from feast.infra.registry.sql import SqlRegistryConfig

        registry = SqlRegistryConfig(
            registry_type="sql",
            path=_sqlalchemy_url(settings),
            cache_ttl_seconds=60,
            sqlalchemy_config_kwargs={"pool_pre_ping": True},
        )
        return RepoConfig(
            **common, registry=registry, online_store=RedisOnlineStoreConfig(connection_string=redis)
        )
    from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig

    return RepoConfig(
        **common,
        registry=RegistryConfig(path=str(state / "registry.db"), cache_ttl_seconds=60),
        online_store=SqliteOnlineStoreConfig(path=str(state / "online_store.db")),
    )


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
    return (
        dsn.replace("postgresql://", "postgresql+psycopg://", 1) if dsn.startswith("postgresql://") else dsn
    )


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
    (folder / "feature_definitions.py").write_text(
        (settings.feast_repo / "feature_definitions.py").read_text()
    )
    return folder


def open_store(settings: Settings, use_case: UseCase, apply: bool = True) -> FeatureStore:
    """A FeatureStore for the settings; with ``apply`` the definitions are brought up to date first."""
    from feast import FeatureStore

    from airloop.featurestore.definitions import apply_if_changed, build_definitions

    store = FeatureStore(config=repo_config(settings, use_case))
    if apply:
        apply_if_changed(store, build_definitions(use_case, settings))
    return store
