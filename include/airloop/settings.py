"""One typed settings object for the whole platform.

Every value comes from an ``AIRLOOP_*`` environment variable (nested with ``__``, e.g.
``AIRLOOP_SOURCE__KIND=folder``) or falls back to an embedded default that runs on one laptop:
SQLite, local folders, local processes. ``AIRLOOP_ENV=production`` selects the production resource set
(PostgreSQL, Redis, Celery); there a missing secret is an error, never an empty string.

Settings are read when a task runs (``load_settings()``), never when a DAG file is parsed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""The repository root (``include/airloop/settings.py`` -> two levels up)."""


class SourceSettings(BaseModel):
    """Where raw records come from.

    ``replay`` presents the vendored demo data set as an operational system that yields one data interval at
    a time; ``folder`` reads a folder of Parquet/CSV files ("bring your own data").
    """

    kind: Literal["replay", "folder"] = "replay"
    path: Path | None = None
    """Default: the use case's recorded data (its ``replay_data`` folder)."""


class IngestSettings(BaseModel):
    """Knobs of the ingestion DAG."""

    chunk_days: int = Field(
        default=31, ge=1, description="Days per mapped task when a date range is ingested."
    )
    max_parallel_chunks: int = Field(
        default=2, ge=1, description="Mapped chunks that run at once (2 cores here)."
    )
    catchup: bool = Field(
        default=False,
        description="Let the scheduler create a run for every past day once the DAG is unpaused.",
    )


class DockerRunnerSettings(BaseModel):
    """Where ``AIRLOOP_TASK_RUNNER=docker`` runs the heavy task bodies: containers of the runtime image,
    started by the worker through DockerOperator with the worker's own ``AIRLOOP_*`` settings."""

    image: str = Field(default="airloop-runtime:0.1.0", description="task image (the runtime image)")
    url: str = Field(default="unix:///var/run/docker.sock", description="Docker engine the worker talks to")
    network: str = Field(
        default="airloop", description="network of task containers (`host` on a host-network stack)"
    )
    lake_volume: str = Field(
        default="airloop-lake",
        description="volume (or absolute host path) mounted at the lake; "
        "empty: the lake is not a mount (object storage)",
    )
    auto_remove: Literal["never", "success", "force"] = "force"
    mem_limit: str | None = Field(default=None, description="e.g. 4g; none: no limit")
    api_timeout_seconds: int = Field(
        default=3600, ge=10, description="Docker API read timeout (log stream, wait)"
    )


class Settings(BaseSettings):
    """Airloop's configuration. See README "Configuration" for the table of variables."""

    model_config = SettingsConfigDict(env_prefix="AIRLOOP_", env_nested_delimiter="__", extra="ignore")

    env: Literal["local", "production"] = "local"
    use_case: str = "flights"
    home: Path = PROJECT_ROOT / ".airloop"
    """State folder (git-ignored): lake, MLflow store, Feast registry, Airflow home."""

    lake_dir: Path | None = None
    """Data lake root; defaults to ``<home>/lake``."""

    task_runner: Literal["local", "docker"] = "local"
    """Where training, batch scoring and the drift check run: the worker's process, or a container."""
    docker: DockerRunnerSettings = DockerRunnerSettings()

    source: SourceSettings = SourceSettings()
    ingest: IngestSettings = IngestSettings()

    mlflow_tracking_uri: str | None = None
    """Defaults to SQLite under ``home`` locally; must be set in production."""
    feast_repo: Path = PROJECT_ROOT / "include" / "feature_repo"
    feast_project: str | None = None
    """Feast project name; defaults to ``airloop_<use case>``."""
    feast_online: Literal["sqlite", "redis"] = "sqlite"
    """Online store when local; production always uses Redis."""
    serving_url: str = "http://127.0.0.1:3000"
    serving_watch_seconds: float = Field(
        default=10.0, gt=0, description="how often the service checks the champion alias"
    )
    serving_max_rows: int = Field(default=500, ge=1, description="most rows one /predict request may carry")
    serving_max_body_bytes: int = Field(
        default=1 << 20,
        ge=1024,
        description="largest request body the prediction routes read (413 beyond; 500 rows are ~180 KB)",
    )
    serving_store_timeout_seconds: float = Field(
        default=0.5, gt=0, description="longest an online-store call may take in the service (no retry)"
    )
    serving_journal: bool = True
    """Answered rows are written to a local journal before their answers leave (a killed service loses
    none); off: they wait up to ~3 s in memory for the live log (the bench's baseline)."""
    serving_journal_dir: Path | None = None
    """Defaults to ``<home>/serving/journal``; in a container, a volume that outlives it."""
    serving_journal_fsync: bool = False
    """Also flush each journal append to the disk (survives a power loss; costs a disk flush a batch)."""
    drift_poll_seconds: float = Field(
        default=30.0, gt=0, description="how often the drift sensor counts new live rows"
    )
    drift_overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON: fields of the use case's drift policy replaced in this deployment, e.g. "
        "'{\"min_new_share\": 0}' (make demo: a week of traffic stands for the month a retrain waits for)",
    )
    allow_pickled_models: bool = Field(
        default=False,
        description="load model versions logged as pickled Python objects (before models from code): "
        "unpickling runs code from the registry; for the upgrade only, until a version logged as code is "
        "champion",
    )

    postgres_dsn: SecretStr | None = None
    redis_url: SecretStr | None = None
    serving_token: SecretStr | None = None
    """Bearer token the prediction routes require when set (health and metrics stay open)."""

    @model_validator(mode="after")
    def _resolve(self) -> Settings:
        if self.lake_dir is None:
            self.lake_dir = self.home / "lake"
        if self.serving_journal_dir is None:
            self.serving_journal_dir = self.home / "serving" / "journal"
        if self.env == "production":
            missing = [
                name
                for name, value in (
                    ("AIRLOOP_POSTGRES_DSN", self.postgres_dsn),
                    ("AIRLOOP_REDIS_URL", self.redis_url),
                    ("AIRLOOP_MLFLOW_TRACKING_URI", self.mlflow_tracking_uri),
                )
                if value is None or (isinstance(value, SecretStr) and not value.get_secret_value())
            ]
            if missing:
                raise ValueError(f"AIRLOOP_ENV=production needs {', '.join(missing)} to be set")
        elif self.mlflow_tracking_uri is None:
            self.mlflow_tracking_uri = f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"
        return self

    # -- the resource set AIRLOOP_ENV selects: decided here, nowhere else ------------------------------
    @property
    def online_store(self) -> Literal["sqlite", "redis"]:
        """Feast's online store: Redis in production (or when asked for locally), else SQLite."""
        return "redis" if self.env == "production" or self.feast_online == "redis" else "sqlite"

    @property
    def live_log_store(self) -> Literal["parquet", "postgres"]:
        """The live-traffic log: the PostgreSQL table in production, Parquet in the lake locally."""
        return "postgres" if self.env == "production" else "parquet"

    @property
    def artifact_root(self) -> str | None:
        """Where a new MLflow experiment keeps artifacts: the state folder locally; in production the
        tracking server's own default (it proxies them)."""
        return (self.home / "mlflow" / "artifacts").as_uri() if self.env == "local" else None

    @property
    def lake(self) -> Path:
        assert self.lake_dir is not None  # set by the validator
        return self.lake_dir


def load_settings() -> Settings:
    """Read the settings from the environment now (cheap; never cached, so tests can change them)."""
    return Settings()
