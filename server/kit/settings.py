"""Server settings from the environment (prefix ``NOTEFALL_``), validated once at start-up."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from urllib.parse import unquote, urlparse

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

# Public on purpose: anyone may run a laptop stack with it, so production must refuse it.
DEFAULT_SECRET_KEY = "notefall-development-secret-do-not-use-in-production"
MIN_SECRET_KEY_LENGTH = 32


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class SettingsError(Exception):
    """The environment describes a server that must not start; the message says what to fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOTEFALL_", extra="ignore", frozen=True)

    data_dir: Path = Path.home() / ".notefall"
    # Unset: SQLite at DATA_DIR/notefall.db.
    database_url: str = ""
    redis_url: str | None = None
    # Unset: local files under DATA_DIR/storage.
    storage_url: str = ""
    # Unset: mail is written as .eml files to DATA_DIR/outbox.
    smtp_url: str | None = None
    # Largest MIDI file a project takes (the tier table will refine it).
    max_midi_bytes: int = Field(16 * 1024 * 1024, gt=0)
    public_url: str = "http://127.0.0.1:8000"
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)
    environment: Environment = Environment.DEVELOPMENT

    @model_validator(mode="after")
    def _fill_defaults_and_check(self) -> Settings:
        data_dir = self.data_dir.expanduser().resolve()
        # frozen=True protects callers; the validator may still settle derived defaults.
        object.__setattr__(self, "data_dir", data_dir)
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{data_dir / 'notefall.db'}")
        if not self.storage_url:
            object.__setattr__(self, "storage_url", (data_dir / "storage").as_uri())
        if urlparse(self.storage_url).scheme != "file":
            # Refused rather than ignored: files would land somewhere nobody expects.
            raise ValueError(
                "only file:// storage is built yet (S3 is not); unset NOTEFALL_STORAGE_URL "
                "to keep files in DATA_DIR/storage"
            )
        object.__setattr__(self, "public_url", self.public_url.rstrip("/"))
        if self.environment is Environment.PRODUCTION:
            secret = self.secret_key.get_secret_value()
            if secret == DEFAULT_SECRET_KEY or len(secret) < MIN_SECRET_KEY_LENGTH:
                raise ValueError(
                    "NOTEFALL_SECRET_KEY must be set to a random value of at least "
                    f"{MIN_SECRET_KEY_LENGTH} characters in production (for example the output "
                    "of `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
                )
        if self.smtp_url:
            # Refused rather than ignored: silently dropping mail would lock users out.
            raise ValueError(
                "NOTEFALL_SMTP_URL is set, but SMTP delivery is not built yet; unset it to "
                "write mail to DATA_DIR/outbox"
            )
        return self

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def storage_dir(self) -> Path:
        """The directory of a ``file://`` storage URL."""
        return Path(unquote(urlparse(self.storage_url).path))


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (and ``overrides``), or a SettingsError saying what is wrong."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise SettingsError(f"Invalid server settings: {problems}") from None


def _describe(error: ErrorDetails) -> str:
    where = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    return f"NOTEFALL_{where.upper()}: {message}" if where else message
