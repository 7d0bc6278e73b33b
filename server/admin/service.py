"""What the operator commands do to accounts. Never commits: the command's transaction does.

Every refusal is an ``InputError``: the CLI prints it as one line and exits 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from notefall.common.errors import InputError
from notefall.common.tiers import Tier
from notefall.server.accounts.errors import WeakPasswordError
from notefall.server.accounts.models import User
from notefall.server.accounts.passwords import check_password_strength, hash_password
from notefall.server.accounts.repository import AccountRepository
from notefall.server.accounts.schemas import SignupRequest
from notefall.server.accounts.service import normalize_email
from notefall.server.accounts.sign_in import SESSION_IDLE_LIFETIME
from notefall.server.activity import ActivityKind, record
from notefall.server.kit.mail import Mailer, compose, send_after_commit
from notefall.server.projects.models import Project
from notefall.server.usage.service import UsageService
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

# Recorded in activity details, so the user can tell an operator's change from their own.
BY_OPERATOR = "operator"


@dataclass(frozen=True)
class UserSummary:
    email: str
    name: str
    tier: str
    verified: bool
    two_factor: bool
    sessions: int
    projects: int
    storage_bytes: int


def parse_tier(value: str) -> Tier:
    try:
        return Tier(value.strip().lower())
    except ValueError:
        names = ", ".join(tier.value for tier in Tier)
        raise InputError(
            f"Unknown tier '{value}'; use one of: {names}", code="invalid_tier"
        ) from None


class AdminService:
    def __init__(self, session: Session, mailer: Mailer, now: datetime) -> None:
        self.session = session
        self.mailer = mailer
        self.now = now
        self.accounts = AccountRepository(session)

    def user(self, email: str) -> User:
        user = self.accounts.user_by_email(normalize_email(email))
        if user is None:
            raise InputError(
                f"No account has the address {normalize_email(email)}; "
                "`notefall admin list-users` lists them",
                code="unknown_user",
            )
        return user

    def create_user(self, email: str, name: str, password: str, tier: Tier) -> User:
        """A verified account (the operator vouches for the address) on ``tier``."""
        try:
            request = SignupRequest(email=email, name=name, password=password)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            raise InputError(f"{field}: {message}", code="invalid_input") from None
        email = normalize_email(request.email)
        try:
            check_password_strength(request.password, email=email)
        except WeakPasswordError as exc:
            raise InputError(exc.detail, code="weak_password") from None
        user = User(
            email=email,
            name=request.name,
            password_hash=hash_password(request.password),
            email_verified_at=self.now,
            tier=tier.value,
        )
        # add_user is False when the address is taken (also by a sign-up racing this).
        if not self.accounts.add_user(user):
            raise InputError(f"{email} already has an account", code="email_taken")
        record(self.session, user.id, ActivityKind.SIGNED_UP, at=self.now, by=BY_OPERATOR)
        return user

    def set_tier(self, email: str, tier: Tier) -> bool:
        """Put the account on ``tier``; False when it already was (nothing recorded)."""
        user = self.user(email)
        if user.tier == tier.value:
            return False
        user.tier = tier.value
        record(
            self.session,
            user.id,
            ActivityKind.BILLING_CHANGED,
            at=self.now,
            tier=tier.value,
            by=BY_OPERATOR,
        )
        self.session.flush()
        return True

    def set_admin(self, email: str, admin: bool) -> bool:
        """Grant (or revoke) the operator right (``/api/v1/admin/...``); False when unchanged."""
        user = self.user(email)
        if user.is_admin == admin:
            return False
        user.is_admin = admin
        self.session.flush()
        return True

    def disable_two_factor(self, email: str) -> None:
        """For a user who lost both the authenticator and the recovery codes: turn two-factor
        off, end every session (whoever holds one may be the reason) and tell the owner."""
        user = self.user(email)
        two_factor = self.accounts.two_factor_of(user.id)
        if two_factor is None or two_factor.enabled_at is None:
            raise InputError(
                f"Two-factor sign-in is not on for {user.email}; nothing to do",
                code="two_factor_off",
            )
        self.accounts.delete_two_factor(user.id)
        self.accounts.revoke_sessions_of(user.id, self.now)
        record(self.session, user.id, ActivityKind.TWO_FACTOR_DISABLED, at=self.now, by=BY_OPERATOR)
        body = (
            f"Hello {user.name},\n\n"
            "A Notefall operator turned off two-factor sign-in for your account, as asked, and "
            "signed you out everywhere. You now sign in with your password alone.\n\n"
            "Sign in and set up two-factor sign-in again with your new phone. If you did not "
            "ask for this, change your password now and contact support.\n"
        )
        message = compose(user.email, "Two-factor sign-in was turned off", body)
        send_after_commit(self.session, self.mailer, message)

    def summary(self, user: User) -> UserSummary:
        two_factor = self.accounts.two_factor_of(user.id)
        sessions = self.accounts.active_sessions_of(user.id, self.now - SESSION_IDLE_LIFETIME)
        projects = self.session.scalar(
            select(func.count()).select_from(Project).where(Project.owner_id == user.id)
        )
        return UserSummary(
            email=user.email,
            name=user.name,
            tier=user.tier,
            verified=user.email_verified_at is not None,
            two_factor=two_factor is not None and two_factor.enabled_at is not None,
            sessions=len(sessions),
            projects=int(projects or 0),
            storage_bytes=UsageService(self.session).stored_bytes(user.id),
        )

    def users(self, tier: Tier | None = None) -> list[User]:
        statement = select(User).order_by(User.email)
        if tier is not None:
            statement = statement.where(User.tier == tier.value)
        return list(self.session.scalars(statement))
