"""Sign-in, token refresh with rotation, sessions and their revocation.

A session is one sign-in on one device. Its access tokens are short-lived and name the
session, which is checked on every request, so revoking it ends them at once. Its refresh
tokens rotate: each exchange returns a new one and marks the old one used; presenting a
used one again means two parties hold the family, so the whole session is revoked.
Never commits: the request's session does, once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from notefall.server.kit.errors import NotFoundError
from notefall.server.kit.security import (
    hash_token,
    issue_access_token,
    issue_token,
    read_access_token,
    token_is_signed,
)
from notefall.server.kit.settings import Settings
from sqlalchemy.orm import Session

from .errors import (
    EmailNotVerifiedError,
    InvalidAccessTokenError,
    InvalidGrantError,
    RefreshTokenReusedError,
)
from .models import AuthSession, RefreshToken, User
from .passwords import hash_password, password_needs_rehash, spend_verify_time, verify_password
from .repository import AccountRepository
from .service import normalize_email

Clock = Callable[[], datetime]

ACCESS_TOKEN_LIFETIME = timedelta(minutes=15)
REFRESH_TOKEN_LIFETIME = timedelta(days=30)
REFRESH_PURPOSE = "refresh-token"
# Writing last_seen_at on every request would turn every read into a write.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds until the access token expires


@dataclass(frozen=True)
class Device:
    """Where a sign-in comes from, shown in the session list."""

    user_agent: str | None
    ip: str | None


@dataclass(frozen=True)
class Authenticated:
    user: User
    session: AuthSession


class SignInService:
    def __init__(self, session: Session, settings: Settings, clock: Clock) -> None:
        self.session = session
        self.settings = settings
        self.clock = clock
        self.accounts = AccountRepository(session)

    def sign_in_with_password(self, email: str, password: str, device: Device) -> IssuedTokens:
        refused = InvalidGrantError(
            "The email address or password is wrong; check both, or reset your password."
        )
        user = self.accounts.user_by_email(normalize_email(email))
        if user is None:
            spend_verify_time(password)  # no timing difference for unknown emails
            raise refused
        if not verify_password(user.password_hash, password):
            raise refused
        if user.email_verified_at is None:
            raise EmailNotVerifiedError(
                "Confirm your email address with the link we mailed you, then sign in again; "
                "signing up again with the same address sends a new link."
            )
        if password_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        now = self.clock()
        auth_session = AuthSession(
            user_id=user.id,
            refresh_family_id=uuid.uuid4(),
            created_at=now,
            last_seen_at=now,
            user_agent=device.user_agent[:500] if device.user_agent else None,
            ip=device.ip,
        )
        self.accounts.add_session(auth_session)
        return self._issue(auth_session, now)

    def refresh(self, refresh_token: str) -> IssuedTokens:
        refused = InvalidGrantError(
            "This refresh token is invalid, expired or its session has ended; sign in again."
        )
        if not token_is_signed(self._secret, REFRESH_PURPOSE, refresh_token):
            raise refused
        found = self.accounts.refresh_token_by_hash(hash_token(refresh_token))
        if found is None:
            raise refused
        stored, auth_session = found
        now = self.clock()
        if auth_session.revoked_at is not None:
            raise refused
        if stored.used_at is not None or not self.accounts.use_refresh_token(stored.id, now):
            self.accounts.revoke_session(auth_session.id, now)
            raise RefreshTokenReusedError(
                "This refresh token was already used, so it may have been copied; the session "
                "is ended for safety. Sign in again."
            )
        if stored.expires_at <= now:
            raise refused
        auth_session.last_seen_at = now
        return self._issue(auth_session, now)

    def authenticate(self, access_token: str | None) -> Authenticated:
        """The user and session of a bearer access token, or InvalidAccessTokenError."""
        now = self.clock()
        session_id = read_access_token(self._secret, access_token or "", now)
        auth_session = None if session_id is None else self.accounts.active_session(session_id)
        user = None if auth_session is None else self.accounts.user_by_id(auth_session.user_id)
        if auth_session is None or user is None:
            raise InvalidAccessTokenError(
                "Send a valid access token as 'Authorization: Bearer <token>'; get one from "
                "POST /api/v1/auth/token (with your refresh token when it has expired)."
            )
        if now - auth_session.last_seen_at >= LAST_SEEN_RESOLUTION:
            auth_session.last_seen_at = now
        return Authenticated(user=user, session=auth_session)

    def sign_out(self, auth_session: AuthSession) -> None:
        self.accounts.revoke_session(auth_session.id, self.clock())

    def sessions_of(self, user: User) -> list[AuthSession]:
        return self.accounts.active_sessions_of(user.id)

    def end_session(self, user: User, session_id: uuid.UUID) -> None:
        """End one of the user's own sessions; someone else's is answered as not found."""
        target = self.accounts.active_session(session_id)
        if target is None or target.user_id != user.id:
            raise NotFoundError("You have no active session with this id; list them first.")
        self.accounts.revoke_session(target.id, self.clock())

    @property
    def _secret(self) -> str:
        return self.settings.secret_key.get_secret_value()

    def _issue(self, auth_session: AuthSession, now: datetime) -> IssuedTokens:
        refresh = issue_token(self._secret, REFRESH_PURPOSE)
        self.accounts.add_refresh_token(
            RefreshToken(
                family_id=auth_session.refresh_family_id,
                token_hash=refresh.token_hash,
                expires_at=now + REFRESH_TOKEN_LIFETIME,
                created_at=now,
            )
        )
        expires_at = now + ACCESS_TOKEN_LIFETIME
        return IssuedTokens(
            access_token=issue_access_token(self._secret, auth_session.id, expires_at),
            refresh_token=refresh.token,
            expires_in=int(ACCESS_TOKEN_LIFETIME.total_seconds()),
        )
