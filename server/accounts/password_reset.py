"""Password reset by mail and password change. Never commits: the request's session does, once.

A reset request answers the same whether or not the address has an account; only an
existing account gets a link. Reset tokens are signed, single-use, expire after an hour and
are stored only as their SHA-256; a newer request retires the older unused ones. A reset
ends every session of the account, a change every session but the one making it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

from notefall.server.activity import ActivityKind
from notefall.server.kit.mail import Mailer, compose, send_after_commit
from notefall.server.kit.security import issue_token
from notefall.server.kit.settings import Settings
from sqlalchemy.orm import Session

from .device import UNKNOWN_DEVICE, Clock, Device, record_event
from .errors import InvalidTokenError, WrongPasswordError
from .models import AuthSession, User
from .passwords import check_password_strength, hash_password, verify_password
from .repository import AccountRepository
from .schemas import PasswordResetAccepted
from .service import normalize_email
from .tokens import SingleUseTokens, TokenPurpose

RESET_TOKEN_LIFETIME = timedelta(hours=1)
RESET_ACCEPTED_DETAIL = (
    "If this address has a Notefall account, we sent it a link to choose a new password; "
    "the link works once, within an hour."
)


class PasswordService:
    def __init__(self, session: Session, settings: Settings, outbox: Mailer, clock: Clock) -> None:
        self.session = session
        self.settings = settings
        self.outbox = outbox
        self.clock = clock
        self.accounts = AccountRepository(session)
        self.tokens = SingleUseTokens(session, settings.secret_key.get_secret_value())

    def request_reset(self, email: str) -> PasswordResetAccepted:
        """Mail a reset link to an existing account; the answer is the same for any address."""
        # Issued on both paths, so the work before the lookup does not differ.
        issued = issue_token(self._secret, TokenPurpose.PASSWORD_RESET)
        user = self.accounts.user_by_email(normalize_email(email))
        if user is not None:
            now = self.clock()
            purpose = TokenPurpose.PASSWORD_RESET
            self.tokens.retire(user.id, purpose, now)
            self.tokens.store(user.id, purpose, issued, RESET_TOKEN_LIFETIME, now)
            self._send_reset_link(user, issued.token)
        return PasswordResetAccepted(detail=RESET_ACCEPTED_DETAIL)

    def confirm_reset(self, token: str, password: str, device: Device = UNKNOWN_DEVICE) -> User:
        """Set a new password with a reset token; ends every session of the account."""
        invalid = InvalidTokenError(
            "This password-reset link is invalid, expired or already used; ask for a new one "
            "with POST /api/v1/auth/password-reset/request."
        )
        now = self.clock()
        stored = self.tokens.find_valid(TokenPurpose.PASSWORD_RESET, token, now)
        if stored is None:
            raise invalid
        user = self.accounts.user_by_id(stored.user_id)
        assert user is not None  # the foreign key cascades deletes to tokens
        # Checked before the token is spent, so a weak choice leaves the link usable.
        check_password_strength(password, email=user.email)
        if not self.tokens.spend(stored, now):
            raise invalid
        self._retire_pending_links(user, now)
        user.password_hash = hash_password(password)
        if user.email_verified_at is None:
            user.email_verified_at = now  # opening the mailed link proves the address
        self.accounts.revoke_sessions_of(user.id, now)
        record_event(self.session, user.id, ActivityKind.PASSWORD_RESET, device, now)
        self.session.flush()
        self._send_changed_notice(user)
        return user

    def change_password(
        self,
        user: User,
        current: AuthSession,
        current_password: str,
        new_password: str,
        device: Device = UNKNOWN_DEVICE,
    ) -> None:
        """Change the password; every other session of the account ends, this one stays."""
        if not verify_password(user.password_hash, current_password):
            raise WrongPasswordError(
                "The current password is wrong; if you forgot it, reset it by mail instead."
            )
        check_password_strength(new_password, email=user.email)
        now = self.clock()
        user.password_hash = hash_password(new_password)
        self._retire_pending_links(user, now)
        self.accounts.revoke_sessions_of(user.id, now, keep=current.id)
        record_event(self.session, user.id, ActivityKind.PASSWORD_CHANGED, device, now)
        self.session.flush()
        self._send_changed_notice(user)

    def _retire_pending_links(self, user: User, now: datetime) -> None:
        # A pending email change may be an intruder's: a new password stops it too.
        for purpose in (TokenPurpose.PASSWORD_RESET, TokenPurpose.EMAIL_CHANGE):
            self.tokens.retire(user.id, purpose, now)

    @property
    def _secret(self) -> str:
        return self.settings.secret_key.get_secret_value()

    def _send_reset_link(self, user: User, token: str) -> None:
        link = f"{self.settings.public_url}/reset-password?token={quote(token)}"
        minutes = int(RESET_TOKEN_LIFETIME.total_seconds() // 60)
        body = (
            f"Hello {user.name},\n\n"
            f"Choose a new password for Notefall by opening this link within {minutes} minutes:\n\n"
            f"{link}\n\n"
            f"Or send this token with the new password to "
            f"POST /api/v1/auth/password-reset/confirm:\n\n{token}\n\n"
            "If you did not ask for this, ignore this message; your password stays as it is.\n"
        )
        self._mail(user.email, "Reset your password", body)

    def _send_changed_notice(self, user: User) -> None:
        body = (
            f"Hello {user.name},\n\n"
            "The password of your Notefall account was just changed, and your other sessions "
            "were signed out.\n\n"
            "If it was not you, reset your password now at "
            f"{self.settings.public_url}/forgot-password and check where you are signed in at "
            f"{self.settings.public_url}/.\n"
        )
        self._mail(user.email, "Your password was changed", body)

    def _mail(self, to: str, subject: str, body: str) -> None:
        message = compose(to, subject, body)
        send_after_commit(self.session, self.outbox, message)
