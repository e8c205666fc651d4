from pathlib import Path

import pytest
from pydantic import ValidationError

from airloop.resources import source_path
from airloop.settings import PROJECT_ROOT, load_settings
from airloop.usecases import load_use_case


def test_embedded_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRLOOP_HOME", str(tmp_path))
    settings = load_settings()
    assert settings.env == "local"
    assert settings.lake == tmp_path / "lake"
    assert settings.mlflow_tracking_uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert settings.source.kind == "replay"
    assert settings.source.path is None  # the use case's recorded data
    assert (
        source_path(settings, load_use_case("flights")) == PROJECT_ROOT / "include" / "data" / "nycflights13"
    )


def test_nested_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRLOOP_SOURCE__KIND", "folder")
    monkeypatch.setenv("AIRLOOP_SOURCE__PATH", str(tmp_path))
    monkeypatch.setenv("AIRLOOP_LAKE_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("AIRLOOP_INGEST__CHUNK_DAYS", "7")
    settings = load_settings()
    assert settings.source.kind == "folder" and settings.source.path == Path(tmp_path)
    assert settings.lake == tmp_path / "elsewhere"
    assert settings.ingest.chunk_days == 7


def test_a_deployment_overrides_the_drift_policy(monkeypatch, tmp_path):
    """``AIRLOOP_DRIFT_OVERRIDES``: JSON fields of the use case's drift policy, validated as the declaration
    (the drift check and the sensor read the result through ``load_resources`` / ``drift_policy``)."""
    from airloop.orchestration import drift_policy
    from airloop.resources import load_resources

    monkeypatch.setenv("AIRLOOP_HOME", str(tmp_path))
    declared = load_use_case("flights").drift
    monkeypatch.setenv("AIRLOOP_DRIFT_OVERRIDES", '{"min_new_share": 0, "cooldown_hours": 1}')
    drift = load_resources().use_case.drift
    assert (drift.min_new_share, drift.cooldown_hours) == (0, 1)
    assert drift.shared == declared.shared and drift_policy()[0] == drift
    assert load_use_case("flights").drift == declared  # the declaration itself is untouched
    monkeypatch.setenv("AIRLOOP_DRIFT_OVERRIDES", '{"report_only": ["not_an_input"]}')
    with pytest.raises(ValidationError, match="not_an_input"):
        load_resources()


def test_bad_value_is_an_error(monkeypatch):
    monkeypatch.setenv("AIRLOOP_SOURCE__KIND", "ftp")
    with pytest.raises(ValidationError):
        load_settings()


def test_production_requires_its_secrets(monkeypatch):
    monkeypatch.setenv("AIRLOOP_ENV", "production")
    monkeypatch.setenv("AIRLOOP_POSTGRES_DSN", "")
    with pytest.raises(
        ValidationError, match="AIRLOOP_POSTGRES_DSN.*AIRLOOP_REDIS_URL.*AIRLOOP_MLFLOW_TRACKING_URI"
    ):
        load_settings()


def test_production_profile(monkeypatch):
    monkeypatch.setenv("AIRLOOP_ENV", "production")
    monkeypatch.setenv("AIRLOOP_POSTGRES_DSN", "postgresql://airloop@127.0.0.1:5432/airloop")
    monkeypatch.setenv("AIRLOOP_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("AIRLOOP_MLFLOW_TRACKING_URI", "postgresql://airloop@127.0.0.1:5432/mlflow")
    settings = load_settings()
    assert settings.env == "production"
    assert settings.postgres_dsn.get_secret_value().startswith("postgresql://")
    assert "5432/airloop" not in repr(settings)  # the DSN (which may carry a password) is not printed
