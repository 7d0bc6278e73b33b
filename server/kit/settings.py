"""Server settings from the environment (prefix ``NOTEFALL_``), validated once at start-up."""

from __future__ import annotations

import re
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
    # Unset: `notefall stack` (and `serve` in development) start an embedded Redis;
    # production refuses to start without one.
    redis_url: str | None = None
    # Unset: local files under DATA_DIR/storage. s3://bucket[/prefix]: an S3-compatible
    # bucket (credentials from boto3's standard chain: AWS_* variables, profile or role).
    storage_url: str = ""
    # Unset: AWS itself; set for MinIO, R2 and other S3-compatible services.
    s3_endpoint_url: str | None = None
    # Unset: boto3's own (AWS_DEFAULT_REGION, the profile's region).
    s3_region: str | None = None
    # Unset: file links go straight to the storage (/files or the bucket). Set: they go to
    # this CDN origin instead, which forwards them unchanged to the storage, where the
    # signature is checked (docs/operations.md, "Video delivery through a CDN").
    cdn_base_url: str | None = None
    # Unset: mail is written as .eml files to DATA_DIR/outbox. smtp:// (STARTTLS when
    # offered) or smtps:// (implicit TLS), optionally with user:password@.
    smtp_url: str | None = None
    # Multiplies every rate limit (sign-in, sign-up, password reset, API requests per minute).
    rate_limit_scale: float = Field(1.0, gt=0)
    # Largest MIDI file a project takes (the tier table will refine it).
    max_midi_bytes: int = Field(16 * 1024 * 1024, gt=0)
    public_url: str = "http://127.0.0.1:8000"
    # The render farm (docs/server.md, "Renders"). Seconds of video one segment task draws:
    # small enough that any task ends far inside the queue's visibility timeout.
    render_segment_seconds: float = Field(10.0, ge=1.0, le=300.0)
    # Transient failures retry after base * 2^n seconds (with jitter), at most cap seconds.
    render_retry_base_seconds: float = Field(2.0, gt=0)
    render_retry_cap_seconds: float = Field(300.0, gt=0)
    # Deliveries of one step before the render goes to the dead-letter queue.
    render_max_deliveries: int = Field(5, ge=1, le=100)
    # A running step writes a heartbeat this often and polls for cancel twice as often.
    render_heartbeat_seconds: float = Field(2.0, gt=0, le=60)
    # A running step without a heartbeat this long is taken back and queued again.
    render_stale_seconds: float = Field(60.0, gt=0)
    # A pending step missing from the broker this long after it was published is published
    # again (a message lost by Redis, or never sent).
    render_requeue_grace_seconds: float = Field(30.0, gt=0)
    # How often beat runs the reconciler.
    reconcile_every_seconds: float = Field(30.0, gt=0)
    # /readyz fails when no worker has finished a task for this long.
    worker_stale_seconds: float = Field(180.0, gt=0)
    # Billing (docs/billing.md). Unset secret key: the billing routes answer 503
    # billing_not_configured. The API base is Stripe's own unless tests point it elsewhere.
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None
    # The monthly prices `notefall billing sync-catalog` prints, one per paid tier.
    stripe_price_pro: str | None = None
    stripe_price_enterprise: str | None = None
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
        _check_storage_url(self.storage_url, self.s3_endpoint_url)
        if self.cdn_base_url is not None:
            object.__setattr__(
                self, "cdn_base_url", _check_cdn_base_url(self.cdn_base_url, self.environment)
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
            parsed = urlparse(self.smtp_url)
            if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
                raise ValueError(
                    "NOTEFALL_SMTP_URL must look like smtp://[user:password@]host:port "
                    "(STARTTLS when offered) or smtps://... (implicit TLS)"
                )
            try:
                parsed.port  # noqa: B018 - parsing the port validates it
            except ValueError:
                raise ValueError("NOTEFALL_SMTP_URL has an invalid port") from None
        if self.redis_url and urlparse(self.redis_url).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("NOTEFALL_REDIS_URL must look like redis://host:port/db")
        return self

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def storage_dir(self) -> Path:
        """The directory of a ``file://`` storage URL."""
        return Path(unquote(urlparse(self.storage_url).path))

    @property
    def storage_s3_location(self) -> tuple[str, str] | None:
        """(bucket, prefix) of an ``s3://`` storage URL; None for local storage."""
        parsed = urlparse(self.storage_url)
        if parsed.scheme != "s3":
            return None
        return parsed.netloc, parsed.path.strip("/")


# S3's rules for bucket names (3-63 characters; no upper case or underscores).
_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _check_storage_url(url: str, s3_endpoint_url: str | None) -> None:
    # Refused rather than ignored: files would land somewhere nobody expects.
    if s3_endpoint_url is not None:
        endpoint = urlparse(s3_endpoint_url)
        if endpoint.scheme not in ("http", "https") or not endpoint.netloc:
            raise ValueError(
                "NOTEFALL_S3_ENDPOINT_URL must be the service's address, such as "
                "http://minio:9000 or https://<account>.r2.cloudflarestorage.com"
            )
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return
    if parsed.scheme != "s3":
        raise ValueError(
            "NOTEFALL_STORAGE_URL must be file:///a/directory or s3://bucket[/prefix]; "
            "unset it to keep files in DATA_DIR/storage"
        )
    if not _S3_BUCKET.fullmatch(parsed.netloc) or parsed.query or parsed.fragment:
        raise ValueError(
            "NOTEFALL_STORAGE_URL must name an S3 bucket as s3://bucket[/prefix] (a bucket "
            "name is 3-63 lower-case letters, digits, dots and dashes); credentials come "
            "from the standard AWS variables, profile or role, never from this URL"
        )


def _check_cdn_base_url(url: str, environment: Environment) -> str:
    # Only an origin: links keep their own path (/files/<key> or the bucket's object path),
    # which the CDN forwards as it is, so a path here would be one the origin never serves.
    parsed = urlparse(url.rstrip("/"))
    if (
        parsed.scheme not in ("http", "https")
        or not parsed.hostname
        or parsed.path
        or parsed.query
        or parsed.fragment
        or parsed.username
        or not _has_valid_port(parsed.netloc)
    ):
        raise ValueError(
            "NOTEFALL_CDN_BASE_URL must be the CDN's origin only, such as "
            "https://videos.example.com (no path: links keep their own)"
        )
    if environment is Environment.PRODUCTION and parsed.scheme != "https":
        raise ValueError("NOTEFALL_CDN_BASE_URL must use https in production")
    return f"{parsed.scheme}://{parsed.netloc}"


def _has_valid_port(netloc: str) -> bool:
    try:
        urlparse(f"//{netloc}").port  # noqa: B018 - parsing the port validates it
    except ValueError:
        return False
    return True


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
