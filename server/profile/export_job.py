"""Building a data export: a zip of everything an account holds, written to storage.

``build_export`` is a plain, idempotent function: the Celery task in ``tasks.py`` calls it,
tests call it directly. Delivery is at least once, so running it twice, or after the
export has finished or its account was deleted, is harmless: only a pending export is
built, the zip always goes to the same key, and the pending → ready/failed change is a
conditional update that exactly one run wins.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import uuid
import zipfile
from contextlib import closing
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, BinaryIO

from notefall.common.tiers import limits_for
from notefall.server.accounts.models import AuthSession, User
from notefall.server.activity.models import ActivityEvent
from notefall.server.jobs import enqueue
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.settings import Settings
from notefall.server.projects.models import Project
from notefall.server.storage.storage import Storage
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import DataExport, ExportStatus
from .repository import ProfileRepository
from .service import notification_preferences, privacy_settings

log = logging.getLogger("notefall.server.profile")
# The request's commit-once unit of work, outside a request.

EXPORT_TASK = "notefall.profile.build_export"
ACCOUNT_FILE = "account.json"
FILES_FOLDER = "files"


class BuildOutcome(StrEnum):
    READY = "ready"
    FAILED = "failed"
    # Already ready or failed (a repeated delivery): nothing was done.
    ALREADY_FINISHED = "already_finished"
    # No such export: not committed yet (the task outran the request) or its account is gone.
    MISSING = "missing"


CHUNK_BYTES = 1024 * 1024


def export_key(user_id: uuid.UUID, export_id: uuid.UUID) -> str:
    return f"exports/{user_id}/export-{export_id}.zip"


def enqueue_export(settings: Settings, export_id: uuid.UUID) -> None:
    """Hand the export to the workers; 503 ``queue_unavailable`` (and the request rolls back,
    so no export stays pending forever) when the queue does not take it."""
    enqueue(settings, EXPORT_TASK, args=[str(export_id)])


def build_export(
    settings: Settings, storage: Storage, export_id: uuid.UUID, now: datetime
) -> BuildOutcome:
    """Build export ``export_id`` if it is pending: zip, store, then mark it ready until the
    account's tier retention ends, or failed if anything goes wrong."""
    database = Database(settings.database_url)
    try:
        return _build(database, storage, export_id, now)
    finally:
        database.dispose()


def _build(
    database: Database, storage: Storage, export_id: uuid.UUID, now: datetime
) -> BuildOutcome:
    with transaction_scope(database) as session:
        export = session.get(DataExport, export_id)
        if export is None:
            return BuildOutcome.MISSING
        if export.status != ExportStatus.PENDING.value:
            return BuildOutcome.ALREADY_FINISHED
        user = session.get(User, export.user_id)
        assert user is not None  # the export's row cascades with its user
        user_id = user.id
        retention = timedelta(days=limits_for(user.tier).retention_days)
        account = _account_document(session, user, now)
        files = [key for _project, key in ProfileRepository(session).project_file_keys(user_id)]
        if account["profile"]["avatar_key"]:
            files.append(account["profile"]["avatar_key"])
    key = export_key(user_id, export_id)
    try:
        with tempfile.TemporaryFile() as archive:
            _zip(storage, account, files, archive)
            archive.seek(0)
            storage.put(key, archive)
    except Exception:
        log.exception("data export %s failed", export_id)
        with transaction_scope(database) as session:
            ProfileRepository(session).finish_export(export_id, ExportStatus.FAILED, now)
        return BuildOutcome.FAILED
    with transaction_scope(database) as session:
        marked = ProfileRepository(session).finish_export(
            export_id, ExportStatus.READY, now, storage_key=key, expires_at=now + retention
        )
        gone = not marked and session.get(DataExport, export_id) is None
    if gone:
        # The account was deleted while the zip was being built: no row names the file.
        storage.delete(key)
        return BuildOutcome.MISSING
    return BuildOutcome.READY if marked else BuildOutcome.ALREADY_FINISHED


def _account_document(session: Session, user: User, now: datetime) -> dict[str, Any]:
    profile = ProfileRepository(session).profile_of(user.id)
    sessions = session.scalars(
        select(AuthSession).where(AuthSession.user_id == user.id).order_by(AuthSession.created_at)
    )
    activity = session.scalars(
        select(ActivityEvent).where(ActivityEvent.user_id == user.id).order_by(ActivityEvent.at)
    )
    projects = session.scalars(
        select(Project).where(Project.owner_id == user.id).order_by(Project.created_at)
    )
    file_columns = [c.key for c in Project.__table__.columns if c.name.endswith("_key")]
    return {
        "exported_at": now.isoformat(),
        "profile": {
            "id": str(user.id),
            "email": user.email,
            "name": user.name,
            "email_verified_at": _time(user.email_verified_at),
            "tier": user.tier,
            "created_at": _time(user.created_at),
            "avatar_key": profile.avatar_key if profile else None,
        },
        "notifications": notification_preferences(session, user.id),
        "privacy": privacy_settings(session, user.id),
        "sessions": [
            {
                "id": str(s.id),
                "created_at": _time(s.created_at),
                "last_seen_at": _time(s.last_seen_at),
                "revoked_at": _time(s.revoked_at),
                "user_agent": s.user_agent,
                "ip": s.ip,
            }
            for s in sessions
        ],
        "activity": [
            {
                "kind": e.kind,
                "at": _time(e.at),
                "ip": e.ip,
                "user_agent": e.user_agent,
                "detail": e.detail,
            }
            for e in activity
        ],
        "projects": [
            {
                "id": str(p.id),
                "name": p.name,
                "tags": p.tags,
                "settings": p.settings,
                "song": None
                if p.midi_sha256 is None
                else {
                    "title": p.song_title,
                    "duration": p.song_duration,
                    "note_count": p.note_count,
                    "midi_sha256": p.midi_sha256,
                },
                "created_at": _time(p.created_at),
                "updated_at": _time(p.updated_at),
                # Where each of the project's files is in the zip.
                "files": {
                    column: f"{FILES_FOLDER}/{getattr(p, column)}"
                    for column in file_columns
                    if getattr(p, column)
                },
            }
            for p in projects
        ],
    }


def _zip(storage: Storage, account: dict[str, Any], files: list[str], out: BinaryIO) -> None:
    # Streamed through a temporary file, file by file: an account may hold gigabytes (the
    # tier quotas), which must not pass through the worker's memory.
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(ACCOUNT_FILE, json.dumps(account, indent=2, ensure_ascii=False))
        for key in files:
            # Keys are checked storage names (letters, digits, ._- and slashes): safe paths.
            with (
                closing(storage.open(key)) as source,
                archive.open(f"{FILES_FOLDER}/{key}", "w") as target,
            ):
                shutil.copyfileobj(source, target, CHUNK_BYTES)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def stale_pending_exports(
    settings: Settings, now: datetime, older_than: timedelta
) -> list[uuid.UUID]:
    """Pending exports requested more than ``older_than`` ago: their queue message may be lost
    (Redis restarted without it, a worker died holding it), so they are queued again."""
    database = Database(settings.database_url)
    try:
        with transaction_scope(database) as session:
            return list(
                session.scalars(
                    select(DataExport.id).where(
                        DataExport.status == ExportStatus.PENDING.value,
                        DataExport.created_at < now - older_than,
                    )
                )
            )
    finally:
        database.dispose()
