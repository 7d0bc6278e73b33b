"""Changing an account's email address. Never commits: the request's session does, once.

The new address must prove it is reachable: it gets a single-use link (24 hours), and only
that link switches the account over. The old address is told at once, so an intruder with a
stolen session cannot quietly take the account's mail over. Switching re-checks that the
address is still free, marks it verified and ends every other session of the account.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import quote

from notefall.server.activity import ActivityKind
from notefall.server.kit.mail import Mailer, compose, send_after_commit
from notefall.server.kit.settings import Settings
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .device import Clock, Device, record_event
from .errors import EmailTakenError, InvalidTokenError
from .models import User
from .repository import AccountRepository
from .service import normalize_email
from .tokens import SingleUseTokens, TokenPurpose

EMAIL_CHANGE_TOKEN_LIFETIME = timedelta(hours=24)


class EmailChangeService:
    def __init__(self, session: Session, settings: Settings, outbox: Mailer, clock: Clock) -> None:
        self.session = session
        self.settings = settings
        self.outbox = outbox
        self.clock = clock
        self.accounts = AccountRepository(session)
        self.tokens = SingleUseTokens(session, settings.secret_key.get_secret_value())

    def request_change(self, user: User, new_email: str, device: Device) -> str:
        """Mail a confirmation link to ``new_email`` and a notice to the current address;
        returns the normalized new address. A newer request retires the older links."""
        new_email = normalize_email(new_email)
        if new_email == user.email:
            raise EmailTakenError("This is already your email address; nothing to change.")
        self._refuse_taken(new_email)
        now = self.clock()
        self.tokens.retire(user.id, TokenPurpose.EMAIL_CHANGE, now)
        token = self.tokens.issue(
            user.id, TokenPurpose.EMAIL_CHANGE, EMAIL_CHANGE_TOKEN_LIFETIME, now, payload=new_email
        )
        record_event(
            self.session,
            user.id,
            ActivityKind.EMAIL_CHANGE_REQUESTED,
            device,
            now,
            new_email=new_email,
        )
        self._send_confirmation(user, new_email, token)
        self._send_notice(user, new_email)
        return new_email

    def confirm_change(
        self, token: str, device: Device, *, keep_session: uuid.UUID | None = None
    ) -> User:
        """Switch the account to the address the token was mailed to; every session but
        ``keep_session`` (the confirming one, when it is the account's) ends."""
        now = self.clock()
        stored = self.tokens.find_valid(TokenPurpose.EMAIL_CHANGE, token, now)
        if stored is None or stored.payload is None:
            raise InvalidTokenError(
                "This email-change link is invalid, expired or already used; ask for a new one "
                "with POST /api/v1/me/email."
            )
        new_email = stored.payload
        self._refuse_taken(new_email)  # someone may have signed up with it since
        if not self.tokens.spend(stored, now):
            raise InvalidTokenError("This email-change link was just used; nothing more to do.")
        user = self.accounts.user_by_id(stored.user_id)
        assert user is not None  # the foreign key cascades deletes to tokens
        old_email = user.email
        try:
            # A savepoint: a concurrent sign-up or change to the same address wins cleanly.
            with self.session.begin_nested():
                user.email = new_email
                self.session.flush()
        except IntegrityError:
            raise self._taken() from None
        user.email_verified_at = now  # the link reached the new address
        self.accounts.revoke_sessions_of(user.id, now, keep=keep_session)
        # Links mailed to the old address must not act on the account any more.
        for purpose in (TokenPurpose.VERIFY_EMAIL, TokenPurpose.PASSWORD_RESET):
            self.tokens.retire(user.id, purpose, now)
        record_event(
            self.session,
            user.id,
            ActivityKind.EMAIL_CHANGED,
            device,
            now,
            old_email=old_email,
            new_email=new_email,
        )
        self.session.flush()
        return user

    def _refuse_taken(self, email: str) -> None:
        if self.accounts.email_is_taken(email):
            raise self._taken()

    @staticmethod
    def _taken() -> EmailTakenError:
        return EmailTakenError(
            "Another Notefall account uses this email address; choose a different one."
        )

    def _send_confirmation(self, user: User, new_email: str, token: str) -> None:
        link = f"{self.settings.public_url}/verify-email-change?token={quote(token)}"
        hours = int(EMAIL_CHANGE_TOKEN_LIFETIME.total_seconds() // 3600)
        body = (
            f"Hello {user.name},\n\n"
            f"Confirm that your Notefall account should use this address by opening this link "
            f"within {hours} hours:\n\n{link}\n\n"
            f"Or send this token to POST /api/v1/auth/verify-email-change:\n\n{token}\n\n"
            "If you did not ask for this, ignore this message; nothing changes.\n"
        )
        self._mail(new_email, "Confirm your new email address", body)

    def _send_notice(self, user: User, new_email: str) -> None:
        body = (
            f"Hello {user.name},\n\n"
            f"Someone signed in to your Notefall account asked to move it to {new_email}. "
            "Nothing changes until the link mailed there is opened.\n\n"
            "If it was not you, reset your password now at "
            f"{self.settings.public_url}/forgot-password (that also stops the change and signs "
            f"out every session), then check where you are signed in at {self.settings.public_url}/.\n"
        )
        self._mail(user.email, "Your email address is about to change", body)

    def _mail(self, to: str, subject: str, body: str) -> None:
        message = compose(to, subject, body)
        send_after_commit(self.session, self.outbox, message)
