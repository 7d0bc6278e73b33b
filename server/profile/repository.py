"""All SQL of the profile domain."""

from __future__ import annotations

import uuid
from datetime import datetime

from notefall.server.projects.models import Project
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import DataExport, ExportStatus, UserProfile


class ProfileRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def profile_of(self, user_id: uuid.UUID) -> UserProfile | None:
        return self.session.get(UserProfile, user_id)

    def profile_for_update(self, user_id: uuid.UUID) -> UserProfile:
        """The user's row, created with the defaults on first use."""
        found = self.profile_of(user_id)
        if found is not None:
            return found
        try:
            # A savepoint: a concurrent first change by the same user loses only this insert.
            with self.session.begin_nested():
                profile = UserProfile(user_id=user_id)
                self.session.add(profile)
        except IntegrityError:
            found = self.profile_of(user_id)
            assert found is not None
            return found
        return profile

    def add_export(self, export: DataExport) -> bool:
        """Insert ``export``; False if the user already has a pending one (the unique index)."""
        try:
            with self.session.begin_nested():
                self.session.add(export)
        except IntegrityError:
            return False
        return True

    def pending_export_of(self, user_id: uuid.UUID) -> DataExport | None:
        return self.session.scalar(
            select(DataExport).where(
                DataExport.user_id == user_id, DataExport.status == ExportStatus.PENDING.value
            )
        )

    def export(self, export_id: uuid.UUID) -> DataExport | None:
        return self.session.get(DataExport, export_id)

    def exports_of(self, user_id: uuid.UUID) -> list[DataExport]:
        return list(self.session.scalars(select(DataExport).where(DataExport.user_id == user_id)))

    def finish_export(
        self,
        export_id: uuid.UUID,
        status: ExportStatus,
        now: datetime,
        *,
        storage_key: str | None = None,
        expires_at: datetime | None = None,
    ) -> bool:
        """Move a pending export to ``status``; False if it is no longer pending (or gone)."""
        result = self.session.execute(
            update(DataExport)
            .where(DataExport.id == export_id, DataExport.status == ExportStatus.PENDING.value)
            .values(
                status=status.value, storage_key=storage_key, finished_at=now, expires_at=expires_at
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def project_file_keys(self, user_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
        """(project id, storage key) of every file the user's projects name.

        Every ``*_key`` column of a project names a stored file (MIDI, audio, thumbnail),
        so a file column added later is exported and deleted without touching this code.
        """
        columns = [c for c in Project.__table__.columns if c.name.endswith("_key")]
        rows = self.session.execute(
            select(Project.id, *columns).where(Project.owner_id == user_id)
        ).all()
        return [(row[0], key) for row in rows for key in row[1:] if key]
