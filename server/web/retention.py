"""What retention deletes of the browser sessions: cookies that have expired. (A cookie of
a revoked session goes with the session, by the foreign key's cascade.)"""

from __future__ import annotations

from datetime import datetime

from notefall.server.retention import retention_purge
from notefall.server.storage.storage import Storage
from sqlalchemy import delete
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from .models import BrowserSession


@retention_purge("browser_sessions")
def purge_expired_cookies(session: Session, _storage: Storage, now: datetime) -> int:
    result = session.execute(delete(BrowserSession).where(BrowserSession.expires_at < now))
    assert isinstance(result, CursorResult)  # what a DELETE answers; it carries the count
    return result.rowcount
