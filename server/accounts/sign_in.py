"""Sign-in, token refresh with rotation, sessions and their revocation.

A session is one sign-in on one device. Its access tokens are short-lived and name the
session, which is checked on every request, so revoking it ends them at once. Its refresh
tokens rotate: each exchange returns a new one and marks the old one used; presenting a
used one again means two parties hold the family, so the whole session is revoked.
Never commits: the request's session does, once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from notefall.server.activity import ActivityKind
from notefall.server.kit.errors import NotFoundError
from notefall.server.kit.security import (
    hash_token,
    issue_access_token,
    issue_pending_sign_in,
    issue_token,
    pending_sign_in_matches,
    read_access_token,
    read_pending_sign_in,
    token_is_signed,
)
from notefall.server.kit.settings import Settings
from sqlalchemy.orm import Session

from .device import UNKNOWN_DEVICE, Clock, Device, record_event
from .errors import (
    EmailNotVerifiedError,
    InvalidAccessTokenError,
    InvalidGrantError,
    ReauthenticationRequiredError,
    ReauthRefusedError,
    RefreshTokenReusedError,
    SignInRefusedError,
)
from .models import AuthSession, RefreshToken, User
from .passwords import hash_password, password_needs_rehash, spend_verify_time, verify_password
from .repository import AccountRepository
from .service import normalize_email
from .two_factor import TwoFactorService

__all__ = ["Authenticated", "Clock", "Device", "IssuedTokens", "SignInService"]

ACCESS_TOKEN_LIFETIME = timedelta(minutes=15)
REFRESH_TOKEN_LIFETIME = timedelta(days=30)
# A session not refreshed (nor used) for this long lapses: no longer listed nor accepted.
SESSION_IDLE_LIFETIME = timedelta(days=30)
# How long a re-authentication unlocks sensitive changes (2FA, email address).
REAUTHENTICATION_WINDOW = timedelta(minutes=10)
# Between the password and the two-factor code on the sign-in page.
PENDING_SIGN_IN_LIFETIME = timedelta(minutes=10)
REFRESH_PURPOSE = "refresh-token"
# Writing last_seen_at on every request would turn every read into a write.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds until the access token expires


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
        self.second_factor = TwoFactorService(session, settings, clock)

    def sign_in_with_password(
        self, email: str, password: str, device: Device, otp: str | None = None
    ) -> IssuedTokens:
        user = self.check_credentials(email, password, otp, device)
        return self.open_session(user, device)

    def check_credentials(self, email: str, password: str, otp: str | None, device: Device) -> User:
        """The user these credentials prove, or the error that tells the client what to do.

        Refusals of an existing account are recorded in its activity log (the errors keep
        that change although the request fails).
        """
        refused = SignInRefusedError(
            "The email address or password is wrong; check both, or reset your password."
        )
        user = self.accounts.user_by_email(normalize_email(email))
        if user is None:
            spend_verify_time(password)  # no timing difference for unknown emails
            raise refused
        if not verify_password(user.password_hash, password):
            self._record(user, ActivityKind.SIGN_IN_FAILED, device, reason="wrong_password")
            raise refused
        if user.email_verified_at is None:
            raise EmailNotVerifiedError(
                "Confirm your email address with the link we mailed you, then sign in again; "
                "signing up again with the same address sends a new link."
            )
        self.second_factor.check(user, otp, device)
        if password_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        return user

    def pending_sign_in(self, email: str) -> str:
        """For the sign-in page's two-factor step, once ``check_credentials`` asked for a
        code: a short-lived proof of the password, so the page never holds the password."""
        user = self.accounts.user_by_email(normalize_email(email))
        assert user is not None  # the password of this account was just checked
        expires = self.clock() + PENDING_SIGN_IN_LIFETIME
        return issue_pending_sign_in(self._secret, user.id, user.password_hash, expires)

    def check_second_step(self, pending: str, otp: str | None, device: Device) -> User:
        """The user of a pending sign-in whose two-factor code is right."""
        found = read_pending_sign_in(self._secret, pending, self.clock())
        user = self.accounts.user_by_id(found[0]) if found is not None else None
        if (
            found is None
            or user is None
            or not pending_sign_in_matches(user.password_hash, found[1])
        ):
            raise InvalidGrantError(
                "This sign-in took too long or is no longer valid; enter your password again."
            )
        self.second_factor.check(user, otp, device)
        return user

    def open_session(self, user: User, device: Device, *, via: str = "password") -> IssuedTokens:
        """A new session for ``user``, whose credentials the caller has just checked."""
        now = self.clock()
        auth_session = AuthSession(
            user_id=user.id,
            refresh_family_id=uuid.uuid4(),
            created_at=now,
            last_seen_at=now,
            user_agent=device.user_agent[:500] if device.user_agent else None,
            ip=device.ip,
            # The password was proven in this very request: that is a re-authentication.
            reauthenticated_at=now if via == "password" else None,
        )
        self.accounts.add_session(auth_session)
        self._record(user, ActivityKind.SIGNED_IN, device, via=via, session_id=str(auth_session.id))
        return self._issue(auth_session, now)

    def refresh(self, refresh_token: str, device: Device = UNKNOWN_DEVICE) -> IssuedTokens:
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
        if auth_session.revoked_at is not None or self._lapsed(auth_session, now):
            raise refused
        if stored.used_at is not None or not self.accounts.use_refresh_token(stored.id, now):
            self.accounts.revoke_session(auth_session.id, now)
            record_event(
                self.session,
                auth_session.user_id,
                ActivityKind.REFRESH_TOKEN_REUSED,
                device,
                now,
                session_id=str(auth_session.id),
            )
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
        auth_session = (
            None
            if session_id is None
            else self.accounts.active_session(session_id, now - SESSION_IDLE_LIFETIME)
        )
        user = None if auth_session is None else self.accounts.user_by_id(auth_session.user_id)
        if auth_session is None or user is None:
            raise InvalidAccessTokenError(
                "Send a valid access token as 'Authorization: Bearer <token>'; get one from "
                "POST /api/v1/auth/token (with your refresh token when it has expired)."
            )
        if now - auth_session.last_seen_at >= LAST_SEEN_RESOLUTION:
            auth_session.last_seen_at = now
        return Authenticated(user=user, session=auth_session)

    def sign_out(self, auth_session: AuthSession, device: Device = UNKNOWN_DEVICE) -> None:
        now = self.clock()
        if self.accounts.revoke_session(auth_session.id, now):
            record_event(
                self.session,
                auth_session.user_id,
                ActivityKind.SIGNED_OUT,
                device,
                now,
                session_id=str(auth_session.id),
            )

    def sessions_of(self, user: User) -> list[AuthSession]:
        return self.accounts.active_sessions_of(user.id, self.clock() - SESSION_IDLE_LIFETIME)

    def end_session(
        self, user: User, session_id: uuid.UUID, device: Device = UNKNOWN_DEVICE
    ) -> None:
        """End one of the user's own sessions; someone else's is answered as not found."""
        now = self.clock()
        target = self.accounts.active_session(session_id, now - SESSION_IDLE_LIFETIME)
        if target is None or target.user_id != user.id:
            raise NotFoundError("You have no active session with this id; list them first.")
        self.accounts.revoke_session(target.id, now)
        record_event(
            self.session,
            user.id,
            ActivityKind.SESSION_ENDED,
            device,
            now,
            session_id=str(target.id),
        )

    def reauthenticate(
        self, current: Authenticated, password: str, otp: str | None, device: Device
    ) -> None:
        """Prove the password (and second factor) again; unlocks sensitive changes for
        REAUTHENTICATION_WINDOW in this session only."""
        user = current.user
        if not verify_password(user.password_hash, password):
            record_event(
                self.session,
                user.id,
                ActivityKind.SIGN_IN_FAILED,
                device,
                self.clock(),
                reason="wrong_password",
                during="reauth",
            )
            raise ReauthRefusedError(
                "The password is wrong; enter the password of this account to confirm it is you."
            )
        self.second_factor.check(user, otp, device)
        current.session.reauthenticated_at = self.clock()

    def require_recent_reauthentication(self, current: Authenticated) -> None:
        stamped = current.session.reauthenticated_at
        if stamped is None or self.clock() - stamped > REAUTHENTICATION_WINDOW:
            minutes = int(REAUTHENTICATION_WINDOW.total_seconds() // 60)
            raise ReauthenticationRequiredError(
                "This change needs your password again: send it (and a two-factor code if two-"
                f"factor sign-in is on) to POST /api/v1/auth/reauth, then repeat this request "
                f"within {minutes} minutes."
            )

    @staticmethod
    def _lapsed(auth_session: AuthSession, now: datetime) -> bool:
        return now - auth_session.last_seen_at >= SESSION_IDLE_LIFETIME

    def _record(self, user: User, kind: ActivityKind, device: Device, **detail: object) -> None:
        record_event(self.session, user.id, kind, device, self.clock(), **detail)

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
