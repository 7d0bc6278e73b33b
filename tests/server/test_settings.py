"""Server settings: NOTEFALL_* variables, embedded defaults, and production refusals."""

from pathlib import Path

import pytest
from notefall.server.kit.settings import (
    DEFAULT_SECRET_KEY,
    Environment,
    SettingsError,
    load_settings,
)


def test_defaults_put_database_storage_and_outbox_in_the_data_dir(tmp_path: Path):
    settings = load_settings(data_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'notefall.db'}"
    assert settings.storage_url == (tmp_path / "storage").as_uri()
    assert settings.outbox_dir == tmp_path / "outbox"
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.smtp_url is None and settings.redis_url is None


def test_settings_come_from_notefall_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NOTEFALL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NOTEFALL_DATABASE_URL", "postgresql://db.example/notefall")
    monkeypatch.setenv("NOTEFALL_REDIS_URL", "redis://cache.example:6379/0")
    monkeypatch.setenv("NOTEFALL_PUBLIC_URL", "https://notefall.example/")
    monkeypatch.setenv("NOTEFALL_ENVIRONMENT", "test")
    settings = load_settings()
    assert settings.data_dir == tmp_path
    assert settings.database_url == "postgresql://db.example/notefall"
    assert settings.redis_url == "redis://cache.example:6379/0"
    assert settings.public_url == "https://notefall.example"
    assert settings.environment is Environment.TEST


def test_production_refuses_the_default_secret(tmp_path: Path):
    with pytest.raises(SettingsError, match="NOTEFALL_SECRET_KEY must be set"):
        load_settings(data_dir=tmp_path, environment="production")


def test_production_refuses_a_short_secret(tmp_path: Path):
    with pytest.raises(SettingsError, match="at least 32 characters"):
        load_settings(data_dir=tmp_path, environment="production", secret_key="hunter2-hunter2")


def test_production_starts_with_a_long_random_secret(tmp_path: Path):
    secret = "k" * 20 + "7Qz0-random-enough-for-a-test"
    settings = load_settings(data_dir=tmp_path, environment="production", secret_key=secret)
    assert settings.secret_key.get_secret_value() == secret != DEFAULT_SECRET_KEY


def test_development_runs_with_the_default_secret(tmp_path: Path):
    assert load_settings(data_dir=tmp_path).secret_key.get_secret_value() == DEFAULT_SECRET_KEY


def test_an_unknown_environment_names_the_variable(tmp_path: Path):
    with pytest.raises(SettingsError, match="NOTEFALL_ENVIRONMENT"):
        load_settings(data_dir=tmp_path, environment="staging")


def test_an_smtp_url_of_another_scheme_is_refused(tmp_path: Path):
    assert load_settings(data_dir=tmp_path, smtp_url="smtp://mail.example:587").smtp_url
    with pytest.raises(SettingsError, match="NOTEFALL_SMTP_URL must look like smtp://"):
        load_settings(data_dir=tmp_path, smtp_url="http://mail.example:587")


def test_the_rate_limit_scale_must_be_positive(tmp_path: Path):
    with pytest.raises(SettingsError, match="NOTEFALL_RATE_LIMIT_SCALE"):
        load_settings(data_dir=tmp_path, rate_limit_scale=0)
