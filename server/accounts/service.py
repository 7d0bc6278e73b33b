"""Sign-up and email verification. Never commits: the request's session does, once."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from notefall.server.activity import ActivityKind
from notefall.server.kit.mail import Mailer, compose, send_after_commit
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import Settings
from sqlalchemy.orm import Session

from .device import UNKNOWN_DEVICE, Clock, Device, record_event
from .errors import InvalidTokenError
from .models import User
from .passwords import check_password_strength, hash_password
from .repository import AccountRepository
from .schemas import SignupAccepted
from .tokens import SingleUseTokens, TokenPurpose

VERIFICATION_TOKEN_LIFETIME = timedelta(hours=48)
SIGNUP_ACCEPTED_DETAIL = "Check your inbox: we sent a link to confirm this email address."


def normalize_email(email: str) -> str:
    return email.strip().lower()


class AccountService:
    def __init__(
        self, session: Session, settings: Settings, outbox: Mailer, clock: Clock = utcnow
    ) -> None:
        self.session = session
        self.settings = settings
        self.outbox = outbox
        self.clock = clock
        self.accounts = AccountRepository(session)
        self.tokens = SingleUseTokens(session, settings.secret_key.get_secret_value())

    def sign_up(
        self, email: str, password: str, name: str, device: Device = UNKNOWN_DEVICE
    ) -> SignupAccepted:
        """Create an unverified account and mail a verification link.

        An address that already has an account gets the same answer (no user enumeration)
        and its owner is told by mail that someone tried; nothing is created.
        """
        email = normalize_email(email)
        check_password_strength(password, email=email)
        # Hashed before the lookup on both paths, so timing does not tell them apart.
        password_hash = hash_password(password)
        accepted = SignupAccepted(email=email, detail=SIGNUP_ACCEPTED_DETAIL)
        existing = self.accounts.user_by_email(email)
        if existing is None:
            user = User(email=email, name=name, password_hash=password_hash)
            if self.accounts.add_user(user):
                record_event(self.session, user.id, ActivityKind.SIGNED_UP, device, self.clock())
                self._send_verification(user)
                return accepted
            existing = self.accounts.user_by_email(email)  # lost a race with the same email
            assert existing is not None
        self._send_signup_attempt_notice(existing)
        return accepted

    def verify_email(self, token: str, device: Device = UNKNOWN_DEVICE) -> User:
        invalid = InvalidTokenError(
            "This verification link is invalid, expired or already used; sign up again with "
            "the same address to get a new one."
        )
        now = self.clock()
        stored = self.tokens.find_valid(TokenPurpose.VERIFY_EMAIL, token, now)
        if stored is None or not self.tokens.spend(stored, now):
            raise invalid
        user = self.accounts.user_by_id(stored.user_id)
        assert user is not None  # the foreign key cascades deletes to tokens
        if user.email_verified_at is None:
            user.email_verified_at = now
            record_event(self.session, user.id, ActivityKind.EMAIL_VERIFIED, device, now)
        self.session.flush()
        return user

    def _verification_link(self, user: User) -> tuple[str, str]:
        token = self.tokens.issue(
            user.id, TokenPurpose.VERIFY_EMAIL, VERIFICATION_TOKEN_LIFETIME, self.clock()
        )
        link = f"{self.settings.public_url}/verify-email?token={quote(token)}"
        return token, link

    def _send_verification(self, user: User) -> None:
        token, link = self._verification_link(user)
        hours = int(VERIFICATION_TOKEN_LIFETIME.total_seconds() // 3600)
        body = (
            f"Hello {user.name},\n\n"
            f"Confirm your email address for Notefall by opening this link within {hours} hours:\n\n"
            f"{link}\n\n"
            f"Or send this token to POST /api/v1/auth/verify-email:\n\n{token}\n\n"
            "If you did not sign up, ignore this message.\n"
        )
        self._mail(user.email, "Confirm your email address", body)

    def _send_signup_attempt_notice(self, user: User) -> None:
        body = (
            f"Hello {user.name},\n\n"
            "Someone tried to create a Notefall account with this email address, which already "
            "has one. No new account was created.\n\n"
            "If it was you, sign in with your existing password instead. If it was not, you do "
            "not need to do anything.\n"
        )
        if user.email_verified_at is None:
            # The owner may have lost the first mail; an unverified account needs a fresh link.
            token, link = self._verification_link(user)
            body += f"\nYour address is not confirmed yet; confirm it here:\n\n{link}\n\n{token}\n"
        self._mail(user.email, "Someone tried to sign up with your email address", body)

    def _mail(self, to: str, subject: str, body: str) -> None:
        message = compose(to, subject, body)
        send_after_commit(self.session, self.outbox, message)
