"""All SQL of the accounts domain."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import AuthSession, RecoveryCode, RefreshToken, SingleUseToken, TwoFactor, User


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

    def add_single_use_token(self, token: SingleUseToken) -> None:
        self.session.add(token)
        self.session.flush()

    def single_use_token_by_hash(self, token_hash: str) -> SingleUseToken | None:
        return self.session.scalar(
            select(SingleUseToken).where(SingleUseToken.token_hash == token_hash)
        )

    def use_single_use_token(self, token_id: uuid.UUID, now: datetime) -> bool:
        """Mark the token used; False if another request used it first (single use)."""
        result = self.session.execute(
            update(SingleUseToken)
            .where(SingleUseToken.id == token_id, SingleUseToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def retire_single_use_tokens(self, user_id: uuid.UUID, purpose: str, now: datetime) -> None:
        """Mark every unused token of this purpose of the user used, so none works any more."""
        self.session.execute(
            update(SingleUseToken)
            .where(
                SingleUseToken.user_id == user_id,
                SingleUseToken.purpose == purpose,
                SingleUseToken.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )

    def add_session(self, auth_session: AuthSession) -> None:
        self.session.add(auth_session)
        self.session.flush()

    def active_session(self, session_id: uuid.UUID, seen_since: datetime) -> AuthSession | None:
        """The session if it is neither revoked nor lapsed (not seen since ``seen_since``)."""
        return self.session.scalar(
            select(AuthSession).where(
                AuthSession.id == session_id,
                AuthSession.revoked_at.is_(None),
                AuthSession.last_seen_at > seen_since,
            )
        )

    def active_sessions_of(self, user_id: uuid.UUID, seen_since: datetime) -> list[AuthSession]:
        return list(
            self.session.scalars(
                select(AuthSession)
                .where(
                    AuthSession.user_id == user_id,
                    AuthSession.revoked_at.is_(None),
                    AuthSession.last_seen_at > seen_since,
                )
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

    def two_factor_of(self, user_id: uuid.UUID) -> TwoFactor | None:
        return self.session.get(TwoFactor, user_id)

    def add_two_factor(self, two_factor: TwoFactor) -> None:
        self.session.add(two_factor)
        self.session.flush()

    def delete_two_factor(self, user_id: uuid.UUID) -> None:
        self.session.execute(delete(TwoFactor).where(TwoFactor.user_id == user_id))
        self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))

    def accept_step(self, user_id: uuid.UUID, step: int) -> bool:
        """Record ``step`` as the newest accepted one; False if it or a later one already was.

        Conditional, so two requests with the same code cannot both pass.
        """
        result = self.session.execute(
            update(TwoFactor)
            .where(
                TwoFactor.user_id == user_id,
                or_(TwoFactor.last_used_step.is_(None), TwoFactor.last_used_step < step),
            )
            .values(last_used_step=step)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def replace_recovery_codes(self, user_id: uuid.UUID, codes: list[RecoveryCode]) -> None:
        self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        self.session.add_all(codes)
        self.session.flush()

    def use_recovery_code(self, user_id: uuid.UUID, code_hash: str, now: datetime) -> bool:
        """Spend an unused recovery code of the user; False if there is none with this hash."""
        result = self.session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == code_hash,
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def unused_recovery_codes(self, user_id: uuid.UUID) -> int:
        return int(
            self.session.scalar(
                select(func.count())
                .select_from(RecoveryCode)
                .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
            )
            or 0
        )

    def email_is_taken(self, email: str) -> bool:
        return self.user_by_email(email) is not None
