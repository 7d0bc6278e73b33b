"""The purges retention owns: records of sign-in and account security that have served
their purpose. Each keeps a margin past the point where a record stops working, so
support can still see recent history."""

from __future__ import annotations

from datetime import datetime, timedelta

from notefall.server.accounts.models import AuthSession, RefreshToken, SingleUseToken
from notefall.server.activity.models import ActivityEvent
from notefall.server.storage.storage import Storage
from sqlalchemy import Delete, delete, or_
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from .registry import retention_purge

# Mailed tokens (verification, reset, email change) kept this long after use or expiry.
SPENT_TOKEN_RETENTION = timedelta(days=7)
# Ended sessions stay listed this long (their refresh tokens go with them).
REVOKED_SESSION_RETENTION = timedelta(days=30)
# An account's activity log reaches back this far: a year and a bit, so yearly events compare.
ACTIVITY_RETENTION = timedelta(days=400)


@retention_purge("single_use_tokens")
def purge_spent_single_use_tokens(session: Session, _storage: Storage, now: datetime) -> int:
    cutoff = now - SPENT_TOKEN_RETENTION
    return _deleted(
        session,
        delete(SingleUseToken).where(
            or_(SingleUseToken.used_at < cutoff, SingleUseToken.expires_at < cutoff)
        ),
    )


@retention_purge("refresh_tokens")
def purge_expired_refresh_tokens(session: Session, _storage: Storage, now: datetime) -> int:
    # Past its expiry a token is refused before reuse detection would look at it.
    return _deleted(session, delete(RefreshToken).where(RefreshToken.expires_at < now))


@retention_purge("revoked_sessions")
def purge_revoked_sessions(session: Session, _storage: Storage, now: datetime) -> int:
    cutoff = now - REVOKED_SESSION_RETENTION
    return _deleted(session, delete(AuthSession).where(AuthSession.revoked_at < cutoff))


@retention_purge("activity_events")
def purge_old_activity(session: Session, _storage: Storage, now: datetime) -> int:
    cutoff = now - ACTIVITY_RETENTION
    return _deleted(session, delete(ActivityEvent).where(ActivityEvent.at < cutoff))


def _deleted(session: Session, statement: Delete) -> int:
    result = session.execute(statement)
    assert isinstance(result, CursorResult)  # what a DELETE answers; it carries the count
    return result.rowcount
