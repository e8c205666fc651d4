"""The model registry behind a small interface: MLflow registered models with aliases (never stages).

Every alias move is recorded twice: as tags of the version it now points to (who, why, when) and as an
entry of the registered model's audit trail (tags ``audit.000001``, ... holding JSON), which
``audit_trail()`` lists in order and ``rollback()`` reads to find the previous champion.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airloop.settings import Settings
    from airloop.usecase import UseCase

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
SHADOW = "shadow"
"""The version the service scores beside the champion on live traffic (logged, never answered)."""


@dataclass(frozen=True)
class AliasMove:
    alias: str
    version: str | None
    """``None``: the alias was removed."""
    previous: str | None
    who: str
    why: str
    at: str


def open_registry(settings: Settings, use_case: UseCase) -> ModelRegistry:
    """The use case's registered model in the configured tracking store: the one place the process's MLflow
    tracking URI is set (MLflow's fluent calls — ``log_model``, ``load_model``, ``download_artifacts`` — read
    that process-wide URI, so each entry point that may run in a fresh process or container opens MLflow
    through here, usually via ``airloop.resources.Resources.registry``)."""
    import mlflow

    uri = settings.mlflow_tracking_uri
    if uri is None:
        raise ValueError("no MLflow tracking store configured: set AIRLOOP_MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    return ModelRegistry(uri, use_case.model_name)


class ModelRegistry:
    """One registered model (e.g. ``flight_delay``) in an MLflow tracking server or SQLite store."""

    def __init__(self, tracking_uri: str, name: str) -> None:
        from mlflow import MlflowClient

        self.name = name
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def ensure_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.name)
        except MlflowException:
            self.client.create_registered_model(
                self.name, description="Airloop model; aliases: champion, challenger"
            )

    def register(self, model_uri: str, run_id: str, tags: dict[str, str], model_id: str | None = None) -> str:
        """A new version from a logged model. ``model_id`` (MLflow 3's LoggedModel id) is required by an
        MLflow tracking server for a ``models:/m-...`` source; the SQLite store accepts it too."""
        self.ensure_model()
        version = self.client.create_model_version(
            self.name, model_uri, run_id=run_id, tags=tags, model_id=model_id
        )
        return str(version.version)

    def version_of(self, alias: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.name, alias).version)
        except MlflowException:
            return None

    def version(self, version: str) -> Any:
        return self.client.get_model_version(self.name, version)

    def move_alias(self, alias: str, version: str, who: str, why: str, at: str) -> AliasMove:
        previous = self.version_of(alias)
        # who, why and when first: a reader that sees the alias on this version sees its reason too
        for key, value in (("set_by", who), ("reason", why), ("at", at)):
            self.client.set_model_version_tag(self.name, version, f"{alias}.{key}", value[:5000])
        self.client.set_registered_model_alias(self.name, alias, version)
        move = AliasMove(alias, version, previous, who, why, at)
        seq = len(self.audit_trail()) + 1
        self.client.set_registered_model_tag(self.name, f"audit.{seq:06d}", json.dumps(move.__dict__))
        logger.info("%s: %s -> v%s (was %s) by %s: %s", self.name, alias, version, previous, who, why)
        return move

    def clear_alias(self, alias: str, who: str, why: str, at: str) -> AliasMove | None:
        """Remove ``alias`` (recorded on the version it left and in the audit trail); ``None`` if unset."""
        previous = self.version_of(alias)
        if previous is None:
            return None
        self.client.delete_registered_model_alias(self.name, alias)
        for key, value in (("removed_by", who), ("removed_because", why), ("removed_at", at)):
            self.client.set_model_version_tag(self.name, previous, f"{alias}.{key}", value[:5000])
        move = AliasMove(alias, None, previous, who, why, at)
        seq = len(self.audit_trail()) + 1
        self.client.set_registered_model_tag(self.name, f"audit.{seq:06d}", json.dumps(move.__dict__))
        logger.info("%s: %s removed (was v%s) by %s: %s", self.name, alias, previous, who, why)
        return move

    def audit_trail(self) -> list[AliasMove]:
        tags = self.client.get_registered_model(self.name).tags
        return [AliasMove(**json.loads(tags[k])) for k in sorted(t for t in tags if t.startswith("audit."))]

    def rollback(self, who: str, why: str, at: str) -> AliasMove:
        """Point ``champion`` back at the version it held before its latest move."""
        moves = [m for m in self.audit_trail() if m.alias == CHAMPION]
        if not moves or moves[-1].previous is None:
            raise ValueError(f"{self.name}: no earlier champion to roll back to")
        move = self.move_alias(CHAMPION, moves[-1].previous, who, f"rollback: {why}", at)
        if self.version_of(SHADOW) == move.version:  # it was shadowing the version rolled back
            self.clear_alias(SHADOW, who, f"v{move.version} is the champion again (rollback)", at)
        return move
