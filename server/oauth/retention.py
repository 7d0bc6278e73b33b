"""What retention deletes of the OAuth domain: authorization codes long past their minute."""

from __future__ import annotations

from datetime import datetime, timedelta

from notefall.server.retention import retention_purge
from notefall.server.storage.storage import Storage
from sqlalchemy import delete
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from .models import AuthorizationCode

# Kept a day past expiry: until then a replayed code still finds its row and revokes the
# session its first use opened; after it, a replay is refused as unknown all the same.
EXPIRED_CODE_RETENTION = timedelta(days=1)


@retention_purge("oauth_authorization_codes")
def purge_expired_codes(session: Session, _storage: Storage, now: datetime) -> int:
    cutoff = now - EXPIRED_CODE_RETENTION
    result = session.execute(delete(AuthorizationCode).where(AuthorizationCode.expires_at < cutoff))
    assert isinstance(result, CursorResult)  # what a DELETE answers; it carries the count
    return result.rowcount
