"""What retention deletes of the profile domain (the runner imports this module)."""

from __future__ import annotations

from datetime import datetime, timedelta

from notefall.server.kit.db import after_commit
from notefall.server.retention import retention_purge
from notefall.server.storage.storage import Storage
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from .models import DataExport, ExportStatus

# A failed export is kept a while so its owner sees that it failed.
FAILED_EXPORT_KEEPING = timedelta(days=30)


@retention_purge("data_exports")
def purge_expired_exports(session: Session, storage: Storage, now: datetime) -> int:
    """Ready exports past their tier's retention (their zips too) and old failed ones."""
    expired = or_(
        (DataExport.status == ExportStatus.READY.value) & (DataExport.expires_at <= now),
        (DataExport.status == ExportStatus.FAILED.value)
        & (DataExport.finished_at <= now - FAILED_EXPORT_KEEPING),
    )
    rows = session.execute(select(DataExport.id, DataExport.storage_key).where(expired)).all()
    if not rows:
        return 0
    session.execute(
        delete(DataExport)
        .where(DataExport.id.in_([row.id for row in rows]))
        .execution_options(synchronize_session=False)
    )
    keys = [row.storage_key for row in rows if row.storage_key]

    def remove() -> None:
        for key in keys:
            storage.delete(key)

    after_commit(session, remove)
    return len(rows)
