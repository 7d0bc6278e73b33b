"""All SQL of the accounts domain."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import AuthSession, EmailVerificationToken, PasswordResetToken, RefreshToken, User


class AccountRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def user_by_email(self, email: str) -> User | None:
        return self.session.scalar(select(User).where(User.email == email))

    def user_by_id(self, user_id: uuid.UUID) -> User | None:
        return self.session.get(User, user_id)

    def add_user(self, user: User) -> bool:
        """Insert ``user``; False (and nothing written) if its email is already taken."""
        try:
            # A savepoint: a concurrent sign-up with the same email loses only this insert.
            with self.session.begin_nested():
                self.session.add(user)
        except IntegrityError:
            return False
        return True

    def add_verification_token(self, token: EmailVerificationToken) -> None:
        self.session.add(token)
        self.session.flush()

    def verification_token_by_hash(self, token_hash: str) -> EmailVerificationToken | None:
        return self.session.scalar(
            select(EmailVerificationToken).where(EmailVerificationToken.token_hash == token_hash)
        )

    def use_verification_token(self, token_id: uuid.UUID, now: datetime) -> bool:
        """Mark the token used; False if another request used it first (single use)."""
        result = self.session.execute(
            update(EmailVerificationToken)
            .where(EmailVerificationToken.id == token_id, EmailVerificationToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def add_session(self, auth_session: AuthSession) -> None:
        self.session.add(auth_session)
        self.session.flush()

    def active_session(self, session_id: uuid.UUID) -> AuthSession | None:
        return self.session.scalar(
            select(AuthSession).where(
                AuthSession.id == session_id, AuthSession.revoked_at.is_(None)
            )
        )

    def active_sessions_of(self, user_id: uuid.UUID) -> list[AuthSession]:
        return list(
            self.session.scalars(
                select(AuthSession)
                .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
                .order_by(AuthSession.created_at.desc(), AuthSession.id)
            )
        )

    def revoke_session(self, session_id: uuid.UUID, now: datetime) -> bool:
        """Revoke the session; False if it was already revoked."""
        result = self.session.execute(
            update(AuthSession)
            .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def add_refresh_token(self, token: RefreshToken) -> None:
        self.session.add(token)
        self.session.flush()

    def refresh_token_by_hash(self, token_hash: str) -> tuple[RefreshToken, AuthSession] | None:
        row = self.session.execute(
            select(RefreshToken, AuthSession)
            .join(AuthSession, AuthSession.refresh_family_id == RefreshToken.family_id)
            .where(RefreshToken.token_hash == token_hash)
        ).one_or_none()
        return None if row is None else (row[0], row[1])

    def use_refresh_token(self, token_id: uuid.UUID, now: datetime) -> bool:
        """Mark the token used; False if it already was (by this or a concurrent request)."""
        result = self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def add_reset_token(self, token: PasswordResetToken) -> None:
        self.session.add(token)
        self.session.flush()

    def reset_token_by_hash(self, token_hash: str) -> PasswordResetToken | None:
        return self.session.scalar(
            select(PasswordResetToken).where(PasswordResetToken.token_hash == token_hash)
        )

    def use_reset_token(self, token_id: uuid.UUID, now: datetime) -> bool:
        """Mark the token used; False if another request used it first (single use)."""
        result = self.session.execute(
            update(PasswordResetToken)
            .where(PasswordResetToken.id == token_id, PasswordResetToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def retire_reset_tokens_of(self, user_id: uuid.UUID, now: datetime) -> None:
        """Mark every unused reset token of the user used, so none of them works any more."""
        self.session.execute(
            update(PasswordResetToken)
            .where(PasswordResetToken.user_id == user_id, PasswordResetToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )

    def revoke_sessions_of(
        self, user_id: uuid.UUID, now: datetime, *, keep: uuid.UUID | None = None
    ) -> None:
        """Revoke every active session of the user, except ``keep`` when given."""
        statement = update(AuthSession).where(
            AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
        )
        if keep is not None:
            statement = statement.where(AuthSession.id != keep)
        self.session.execute(
            statement.values(revoked_at=now).execution_options(synchronize_session=False)
        )
