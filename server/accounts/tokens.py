"""The one store of mailed, single-use tokens: email verification, password reset, email change.

A token is signed for its purpose (forged or other-purpose tokens are turned away without a
query), stored only as its SHA-256 with an expiry, and spent by a conditional update, so
each works once even under concurrent requests. Never commits.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum

from notefall.server.kit.security import IssuedToken, hash_token, issue_token, token_is_signed
from sqlalchemy.orm import Session

from .models import SingleUseToken
from .repository import AccountRepository


class TokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify-email"
    PASSWORD_RESET = "password-reset"
    EMAIL_CHANGE = "email-change"


class SingleUseTokens:
    def __init__(self, session: Session, secret_key: str) -> None:
        self.accounts = AccountRepository(session)
        self.secret_key = secret_key

    def issue(
        self,
        user_id: uuid.UUID,
        purpose: TokenPurpose,
        lifetime: timedelta,
        now: datetime,
        *,
        payload: str | None = None,
    ) -> str:
        """A new token for ``user_id``; only its hash is stored, the token goes in a mail."""
        issued = issue_token(self.secret_key, purpose)
        self.store(user_id, purpose, issued, lifetime, now, payload=payload)
        return issued.token

    def store(
        self,
        user_id: uuid.UUID,
        purpose: TokenPurpose,
        issued: IssuedToken,
        lifetime: timedelta,
        now: datetime,
        *,
        payload: str | None = None,
    ) -> None:
        """Store a token made earlier with ``issue_token(secret, purpose)``."""
        self.accounts.add_single_use_token(
            SingleUseToken(
                user_id=user_id,
                purpose=str(purpose),
                token_hash=issued.token_hash,
                expires_at=now + lifetime,
                created_at=now,
                payload=payload,
            )
        )

    def find_valid(self, purpose: TokenPurpose, token: str, now: datetime) -> SingleUseToken | None:
        """The stored token if it is genuine, of this purpose, unused and unexpired; else None."""
        if not token_is_signed(self.secret_key, purpose, token):
            return None
        stored = self.accounts.single_use_token_by_hash(hash_token(token))
        if (
            stored is None
            or stored.purpose != purpose
            or stored.used_at is not None
            or stored.expires_at <= now
        ):
            return None
        return stored

    def spend(self, stored: SingleUseToken, now: datetime) -> bool:
        """Mark it used; False if a concurrent request spent it first."""
        return self.accounts.use_single_use_token(stored.id, now)

    def retire(self, user_id: uuid.UUID, purpose: TokenPurpose, now: datetime) -> None:
        """Every pending token of this purpose of the user stops working."""
        self.accounts.retire_single_use_tokens(user_id, purpose, now)
