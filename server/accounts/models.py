"""Account rows. Emails are stored lower-cased, which makes their uniqueness case-insensitive."""

from __future__ import annotations

import uuid
from datetime import datetime

from notefall.server.kit.models import Base, Timestamped, utcnow
from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, String, Uuid
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column


class User(Timestamped, Base):
    __tablename__ = "users"
    __table_args__ = (
        # The database itself guarantees what the service normalizes.
        CheckConstraint("email = lower(email)", name="email_lower_case"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    email_verified_at: Mapped[datetime | None] = mapped_column()
    # A name from notefall.common.tiers.Tier; only billing changes it.
    tier: Mapped[str] = mapped_column(String(20), default="free", server_default="free")
    # Operators: may use /api/v1/admin/... (granted by `notefall admin set-admin`).
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())


class AuthSession(Base):
    """One sign-in on one device: what access and refresh tokens belong to and what revokes them."""

    __tablename__ = "sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # Every refresh token of this sign-in shares it; reuse of one revokes them all.
    refresh_family_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    user_agent: Mapped[str | None] = mapped_column(String(500))
    ip: Mapped[str | None] = mapped_column(String(45))
    revoked_at: Mapped[datetime | None] = mapped_column()
    # When the password (and second factor) was last proven in this session; sensitive
    # changes need it to be recent.
    reauthenticated_at: Mapped[datetime | None] = mapped_column()


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    family_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sessions.refresh_family_id", ondelete="CASCADE"), index=True
    )
    # SHA-256 of the token: a leaked table cannot refresh anyone's session.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column()
    # Set when the token is exchanged; a second exchange is a theft signal.
    used_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SingleUseToken(Base):
    """A mailed token (email verification, password reset, email change): signed, expiring,
    spent once. Only its SHA-256 is stored, so a leaked table cannot act for anyone."""

    __tablename__ = "single_use_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # Also the token's signing purpose, so a token of one purpose never serves another.
    purpose: Mapped[str] = mapped_column(String(40))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column()
    # Set when the token is spent, or when a newer one of the same purpose supersedes it.
    used_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What the token carries besides its user, e.g. the new address of an email change.
    payload: Mapped[str | None] = mapped_column(String(320))


class TwoFactor(Base):
    """An account's TOTP authenticator: pending until a first code proves it, then enabled."""

    __tablename__ = "two_factor"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # The base32 secret, AES-GCM encrypted with a key derived from NOTEFALL_SECRET_KEY.
    secret_ciphertext: Mapped[str] = mapped_column(String(200))
    enabled_at: Mapped[datetime | None] = mapped_column()
    # The newest 30-second step whose code was accepted; no code of it or before works again.
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # HMAC-SHA256 under a key derived from NOTEFALL_SECRET_KEY: a leaked table alone
    # cannot be brute-forced back into codes.
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
