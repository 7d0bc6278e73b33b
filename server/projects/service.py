"""What users may do with projects. Every access check lives here: a project that is not
yours is answered exactly like one that does not exist. Never commits."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import timedelta
from typing import Any

from notefall.common.engine import FrameRenderer, get_theme
from notefall.common.errors import InputError
from notefall.common.midi import read_song
from notefall.common.pipeline import require_notes
from notefall.common.settings import RenderSettings, SettingsError, settings_from_mapping
from notefall.common.song import Song
from notefall.server.accounts.models import User
from notefall.server.kit.db import after_commit
from notefall.server.kit.errors import NotFoundError
from notefall.server.storage.storage import Storage
from sqlalchemy.orm import Session

from .errors import FileTooLargeError, InvalidSettingsError, UnreadableMidiError
from .models import Project
from .repository import ProjectRepository, Sort

THUMBNAIL_RESOLUTION = "640x360"
# Into the music, past the lead-in, so the picture shows falling notes.
THUMBNAIL_SECONDS_AFTER_LEAD_IN = 2.0
THUMBNAIL_LINK_LIFETIME = timedelta(minutes=15)


class ProjectService:
    def __init__(self, session: Session, storage: Storage, max_midi_bytes: int) -> None:
        self.session = session
        self.storage = storage
        self.max_midi_bytes = max_midi_bytes
        self.projects = ProjectRepository(session)

    def page_of(
        self, user: User, query: str | None, sort: Sort, limit: int, offset: int
    ) -> tuple[list[Project], int]:
        return self.projects.page_of(user.id, query, sort, limit, offset)

    def create(
        self, user: User, name: str, tags: list[str], settings: dict[str, Any] | None
    ) -> Project:
        project = Project(
            owner_id=user.id,
            name=name,
            tags=_unique(tags),
            settings=_validated(settings or {}),
        )
        return self.projects.add(project)

    def get(self, user: User, project_id: uuid.UUID) -> Project:
        project = self.projects.get(project_id)
        if project is None or project.owner_id != user.id:
            raise NotFoundError("You have no project with this id.")
        return project

    def update(
        self,
        user: User,
        project_id: uuid.UUID,
        *,
        name: str | None = None,
        tags: list[str] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Project:
        project = self.get(user, project_id)
        if name is not None:
            project.name = name
        if tags is not None:
            project.tags = _unique(tags)
        if settings is not None:
            project.settings = _validated(settings)
            if project.midi_key is not None:
                song = read_song(self.storage.get(project.midi_key))
                self._store_thumbnail(project, _thumbnail_png(project.settings, song))
        self.session.flush()
        return project

    def delete(self, user: User, project_id: uuid.UUID) -> None:
        project = self.get(user, project_id)
        keys = [key for key in (project.midi_key, project.thumbnail_key) if key]
        self.projects.delete(project)
        for key in keys:
            self._delete_after_commit(key)

    def upload_midi(self, user: User, project_id: uuid.UUID, data: bytes) -> Project:
        """Store a MIDI file the engine can read, its summary, and a fresh thumbnail."""
        project = self.get(user, project_id)
        if len(data) > self.max_midi_bytes:
            raise FileTooLargeError(
                f"MIDI files may be at most {_size(self.max_midi_bytes)}; "
                "this one is larger. Remove unused tracks or split the song."
            )
        try:
            song = read_song(data)
            require_notes(song)
        except InputError as error:
            raise UnreadableMidiError(error) from None
        # Drawn first: settings that do not fit this song refuse it before anything is stored.
        thumbnail = _thumbnail_png(project.settings, song)
        sha256 = hashlib.sha256(data).hexdigest()
        key = f"projects/{project.id}/song-{sha256}.mid"
        self.storage.put(key, data)
        if project.midi_key not in (None, key):
            self._delete_after_commit(project.midi_key)
        project.midi_key, project.midi_sha256 = key, sha256
        project.song_title = song.title
        project.song_duration = round(song.duration, 3)
        project.note_count = song.note_count
        self._store_thumbnail(project, thumbnail)
        self.session.flush()
        return project

    def thumbnail_url(self, user: User, project_id: uuid.UUID) -> str:
        project = self.get(user, project_id)
        if project.thumbnail_key is None:
            raise NotFoundError("This project has no thumbnail yet; upload its MIDI file first.")
        return self.storage.signed_url(project.thumbnail_key, THUMBNAIL_LINK_LIFETIME)

    def _store_thumbnail(self, project: Project, png: bytes) -> None:
        # A new name per picture, so no cache keeps showing the old one.
        key = f"projects/{project.id}/thumbnail-{uuid.uuid4().hex}.png"
        self.storage.put(key, png)
        if project.thumbnail_key is not None:
            self._delete_after_commit(project.thumbnail_key)
        project.thumbnail_key = key

    def _delete_after_commit(self, key: str) -> None:
        # Only once the rows no longer name the file; a rolled-back request keeps it.
        after_commit(self.session, lambda: self.storage.delete(key))


def _validated(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings as the engine reads them, keeping only the fields that were given."""
    try:
        render_settings = settings_from_mapping(settings)
        get_theme(render_settings.theme)  # the schema takes any name; the engine does not
    except SettingsError as error:
        raise InvalidSettingsError(error.message) from None
    if paths := render_settings.input_paths():
        raise InvalidSettingsError(
            f"{', '.join(sorted(paths))}: files on the server cannot be named in settings; "
            "leave the field out."
        )
    return render_settings.model_dump(mode="json", exclude_unset=True)


def _thumbnail_png(stored_settings: dict[str, Any], song: Song) -> bytes:
    """The engine's picture of ``song`` with the project's look, small and opaque."""
    settings = RenderSettings.model_validate(
        {
            **stored_settings,
            "resolution": THUMBNAIL_RESOLUTION,
            "vertical": False,
            "transparent": False,
        }
    )
    try:
        renderer = FrameRenderer(song, settings)
        timeline = renderer.timeline
        at = min(timeline.lead_in + THUMBNAIL_SECONDS_AFTER_LEAD_IN, timeline.duration)
        image = renderer.still_image(at)
    except InputError as error:
        # Settings that only fail with this song, e.g. a start after its end.
        raise InvalidSettingsError(error.message) from None
    png = io.BytesIO()
    image.save(png, format="PNG", compress_level=6)
    return png.getvalue()


def _size(n_bytes: int) -> str:
    mb = 1024 * 1024
    return f"{n_bytes / mb:g} MB" if n_bytes >= mb else f"{n_bytes:,} bytes"


def _unique(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))
