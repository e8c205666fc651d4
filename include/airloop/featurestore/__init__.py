"""The feature store behind a small interface: Feast definitions built from the use-case declaration,
repository configuration from the settings, materialization of exact intervals, and retrieval - one module
per job (``config``, ``definitions``, ``offline``, ``online``); this package re-exports their public names.

Embedded: local provider, file offline store over the lake's Parquet partitions, SQLite online store,
file registry. Production: Redis online store and a SQL registry on PostgreSQL (same definitions).
Feast is imported only inside functions: it costs ~4 s to import.
"""

from airloop.featurestore.config import features_dir, open_store, project_name, repo_config, write_cli_repo
from airloop.featurestore.definitions import ApplyResult, apply_if_changed, build_definitions
from airloop.featurestore.offline import entity_frame, historical_features, materialize_days, training_set
from airloop.featurestore.online import (
    MISSING_KEY,
    OnlineLookup,
    StoreUnavailableError,
    online_features,
    online_features_reference,
    online_lookup,
    with_defaults,
)

__all__ = [
    "MISSING_KEY",
    "ApplyResult",
    "OnlineLookup",
    "StoreUnavailableError",
    "apply_if_changed",
    "build_definitions",
    "entity_frame",
    "features_dir",
    "historical_features",
    "materialize_days",
    "online_features",
    "online_features_reference",
    "online_lookup",
    "open_store",
    "project_name",
    "repo_config",
    "training_set",
    "with_defaults",
    "write_cli_repo",
]
