"""The composition root: the typed resources one settings object and its use case stand for.

DAG task bodies, the CLI, the service and the demo get the lake, the source adapter, the feature store,
the model registry (and with it MLflow's tracking store) and the live-traffic store from here, so local vs
production is decided in one place (``Settings.env`` and the settings it makes required). Heavy clients
(Feast, MLflow) are built on first use only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from airloop.lake import Lake
from airloop.settings import PROJECT_ROOT, Settings, load_settings
from airloop.sources import DataSource, make_source
from airloop.usecase import UseCase
from airloop.usecases import load_use_case

if TYPE_CHECKING:
    from feast import FeatureStore

    from airloop.livelog import LiveStore
    from airloop.registry import ModelRegistry


def source_path(settings: Settings, use_case: UseCase) -> Path:
    """Where the source adapter reads: ``AIRLOOP_SOURCE__PATH``, else the use case's recorded data."""
    if settings.source.path is not None:
        return settings.source.path
    if use_case.replay_data is None:
        raise ValueError(f"use case {use_case.name} declares no replay_data: set AIRLOOP_SOURCE__PATH")
    return PROJECT_ROOT / use_case.replay_data


@dataclass(frozen=True)
class Resources:
    """Everything a step of the loop works with, for one settings object."""

    settings: Settings
    use_case: UseCase

    @cached_property
    def lake(self) -> Lake:
        return Lake(self.settings.lake)

    @cached_property
    def source(self) -> DataSource:
        return make_source(self.settings.source.kind, source_path(self.settings, self.use_case))

    def feature_store(self, apply: bool = False) -> FeatureStore:
        """The Feast store (``apply``: first bring the registry up to the declaration)."""
        from airloop.featurestore import open_store

        return open_store(self.settings, self.use_case, apply=apply)

    @cached_property
    def registry(self) -> ModelRegistry:
        from airloop.registry import open_registry

        return open_registry(self.settings, self.use_case)

    @cached_property
    def live_store(self) -> LiveStore:
        from airloop.livelog import live_store

        return live_store(self.settings)


def load_resources(settings: Settings | None = None, use_case: str | None = None) -> Resources:
    """Resources for ``settings`` (default: read from the environment now) and ``use_case`` (default:
    ``settings.use_case``), its drift policy with this deployment's ``drift_overrides``."""
    settings = settings or load_settings()
    declared = load_use_case(use_case or settings.use_case)
    return Resources(settings, declared.with_drift(settings.drift_overrides))
