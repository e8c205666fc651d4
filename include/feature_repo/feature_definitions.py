"""Feast definitions of the configured use case, for the Feast CLI (`feast plan`, `feast apply`).

The objects are built from the use-case declaration by ``airloop.featurestore.build_definitions`` (which
explains each one), so this repository, the materialize_features DAG and the serving code share one
source of truth. `make feast-plan` / `make feast-apply` run the CLI against the configuration generated
from the settings (embedded SQLite + file registry, or production Redis + PostgreSQL registry).
"""

from airloop.featurestore import build_definitions
from airloop.settings import load_settings
from airloop.usecases import load_use_case

_settings = load_settings()
for _obj in build_definitions(load_use_case(_settings.use_case), _settings):
    globals()[_obj.name.replace("-", "_")] = _obj
