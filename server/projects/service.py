"""What users may do with projects. Every access check lives here, in ``access``: a project
you neither own nor were invited to is answered exactly like one that does not exist, and
a collaborator whose role does not allow an action gets ``forbidden_for_role``. Never
commits."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import tempfile
import unicodedata
import uuid
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from notefall.common.engine import FrameRenderer, get_theme
from notefall.common.errors import InputError
from notefall.common.midi import read_song
from notefall.common.pipeline import require_notes
from notefall.common.settings import RenderSettings, SettingsError, settings_from_mapping
from notefall.common.song import Song
from notefall.common.tiers import limits_for
from notefall.common.video.ffmpeg import MediaInfo, probe
from notefall.server.accounts.models import User
from notefall.server.kit.db import after_commit
from notefall.server.kit.errors import NotFoundError
from notefall.server.storage.storage import Storage
from notefall.server.usage import UsageService
from sqlalchemy.orm import Session

from .errors import (
    FileTooLargeError,
    ForbiddenForRoleError,
    InvalidPresetError,
    InvalidSettingsError,
    TooManyTagsError,
    UnreadableAudioError,
    UnreadableMidiError,
)
from .models import Project, Role
from .repository import ProjectFilter, ProjectRepository

THUMBNAIL_RESOLUTION = "640x360"
# Into the music, past the lead-in, so the picture shows falling notes.
THUMBNAIL_SECONDS_AFTER_LEAD_IN = 2.0
THUMBNAIL_LINK_LIFETIME = timedelta(minutes=15)
# The song's own files, for the desktop app opening a cloud project: long enough for a
# slow download to start, short enough that a leaked link soon stops working.
SOURCE_LINK_LIFETIME = timedelta(minutes=15)
MAX_TAGS = 20
PRESET_VERSION = 1
# A preset is a few hundred bytes; anything near this is not one.
MAX_PRESET_BYTES = 64 * 1024
OWNER = "owner"
_NOT_FOUND = "You have no project with this id."
_AUDIO_SUFFIX = re.compile(r"\.[a-z0-9]{1,5}")


class Action(StrEnum):
    READ = "read"  # see it, its thumbnail, export its settings
    EDIT = "edit"  # rename, retag, change settings, upload MIDI and audio
    DUPLICATE = "duplicate"  # copy it into your own projects
    MANAGE = "manage"  # delete, share links, collaborators: the owner alone


ALLOWED: dict[Role, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.READ}),
    Role.EDITOR: frozenset({Action.READ, Action.EDIT, Action.DUPLICATE}),
}
_REFUSALS = {
    Action.EDIT: "change this project",
    Action.DUPLICATE: "duplicate this project",
    Action.MANAGE: "delete or share this project",
}


class ProjectService:
    def __init__(self, session: Session, storage: Storage, max_midi_bytes: int) -> None:
        self.session = session
        self.storage = storage
        # The server-wide cap (NOTEFALL_MAX_MIDI_BYTES); each tier may set a lower one.
        self.server_max_midi_bytes = max_midi_bytes
        self.projects = ProjectRepository(session)
        self.usage = UsageService(session)

    # Access --------------------------------------------------------------------------------

    def access(self, user: User, project_id: uuid.UUID, action: Action) -> Project:
        """The project, if ``user`` may do ``action`` with it; the one check every path uses."""
        project = self.projects.get(project_id)
        if project is None:
            raise NotFoundError(_NOT_FOUND)
        if project.owner_id == user.id:
            return project
        role = self._member_role(user, project)
        if role is None:
            raise NotFoundError(_NOT_FOUND)
        if action not in ALLOWED[role]:
            raise ForbiddenForRoleError(
                f"As {'an' if role is Role.EDITOR else 'a'} {role} of this project you cannot "
                f"{_REFUSALS[action]}; ask its owner."
            )
        return project

    def _member_role(self, user: User, project: Project) -> Role | None:
        # An invitation takes effect only for an address its holder has proven.
        if user.email_verified_at is None:
            return None
        member = self.projects.membership(project.id, user.email)
        return Role(member.role) if member is not None else None

    def role_of(self, user: User, project: Project) -> str:
        if project.owner_id == user.id:
            return OWNER
        role = self._member_role(user, project)
        assert role is not None, "access() let a non-member through"
        return str(role)

    def roles_of(self, user: User, projects: list[Project]) -> dict[uuid.UUID, str]:
        shared = [p.id for p in projects if p.owner_id != user.id]
        roles = self.projects.roles(shared, user.email) if shared else {}
        return {p.id: OWNER if p.owner_id == user.id else roles[p.id] for p in projects}

    # Limits --------------------------------------------------------------------------------

    def max_midi_bytes(self, user: User) -> int:
        return min(limits_for(user.tier).max_midi_bytes, self.server_max_midi_bytes)

    def max_audio_bytes(self, user: User) -> int:
        return limits_for(user.tier).max_audio_bytes

    # Projects ------------------------------------------------------------------------------

    def page_of(
        self, user: User, where: ProjectFilter, limit: int, offset: int
    ) -> tuple[list[Project], int]:
        email = user.email if user.email_verified_at is not None else None
        return self.projects.page_of(user.id, email, where, limit, offset)

    def create(
        self, user: User, name: str, tags: list[str], settings: dict[str, Any] | None
    ) -> Project:
        project = self.projects.add(
            Project(owner_id=user.id, name=name, tags=[], settings=_validated(settings or {}))
        )
        self.projects.set_tags(project, _unique(tags))
        return project

    def get(self, user: User, project_id: uuid.UUID) -> Project:
        return self.access(user, project_id, Action.READ)

    def update(
        self,
        user: User,
        project_id: uuid.UUID,
        *,
        name: str | None = None,
        tags: list[str] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Project:
        project = self.access(user, project_id, Action.EDIT)
        if name is not None:
            project.name = name
        if tags is not None:
            self.projects.set_tags(project, _unique(tags))
        if settings is not None:
            self._apply_settings(project, _validated(settings))
        self.session.flush()
        return project

    def delete(self, user: User, project_id: uuid.UUID) -> None:
        self._delete(self.access(user, project_id, Action.MANAGE))

    def bulk_delete(self, user: User, project_ids: list[uuid.UUID]) -> int:
        """All or nothing: every project is checked before any is deleted."""
        projects = [self.access(user, pid, Action.MANAGE) for pid in dict.fromkeys(project_ids)]
        for project in projects:
            self._delete(project)
        return len(projects)

    def bulk_tag(
        self, user: User, project_ids: list[uuid.UUID], add: list[str], remove: list[str]
    ) -> list[Project]:
        """Add and remove tags on every project, or on none when one is refused."""
        projects = [self.access(user, pid, Action.EDIT) for pid in dict.fromkeys(project_ids)]
        removed = {tag.lower() for tag in remove}
        for project in projects:
            tags = _unique([t for t in project.tags if t.lower() not in removed] + add)
            if len(tags) > MAX_TAGS:
                raise TooManyTagsError(
                    f"{project.name!r} would have {len(tags)} tags; a project may have at most "
                    f"{MAX_TAGS}. Remove some in the same request."
                )
            self.projects.set_tags(project, tags)
        self.session.flush()
        return projects

    def duplicate(self, user: User, project_id: uuid.UUID, name: str | None) -> Project:
        """A copy owned by ``user``, with its own copies of the files (charged to ``user``)."""
        source = self.access(user, project_id, Action.DUPLICATE)
        copy = self.projects.add(
            Project(
                owner_id=user.id,
                name=name or f"{source.name} (copy)"[:200],
                tags=[],
                settings=dict(source.settings),
                midi_sha256=source.midi_sha256,
                song_title=source.song_title,
                song_duration=source.song_duration,
                note_count=source.note_count,
                audio_sha256=source.audio_sha256,
                audio_codec=source.audio_codec,
                audio_duration=source.audio_duration,
            )
        )
        self.projects.set_tags(copy, list(source.tags))
        prefix, new_prefix = f"projects/{source.id}/", f"projects/{copy.id}/"
        for kind in ("midi", "audio"):
            key: str | None = getattr(source, f"{kind}_key")
            if key is not None:
                new_key = new_prefix + key.removeprefix(prefix)
                # Charged before copying: a copy that does not fit is never made.
                self.usage.charge(user, new_key, self.storage.size(key), kind)
                self.storage.copy(key, new_key)
                setattr(copy, f"{kind}_key", new_key)
        if source.thumbnail_key is not None:
            thumbnail_key = f"projects/{copy.id}/thumbnail-{uuid.uuid4().hex}.png"
            self.storage.copy(source.thumbnail_key, thumbnail_key)
            copy.thumbnail_key = thumbnail_key
        self.session.flush()
        return copy

    # Files ---------------------------------------------------------------------------------

    def upload_midi(self, user: User, project_id: uuid.UUID, data: bytes) -> Project:
        """Store a MIDI file the engine can read, its summary, and a fresh thumbnail."""
        project = self.access(user, project_id, Action.EDIT)
        limit = self.max_midi_bytes(user)
        if len(data) > limit:
            raise FileTooLargeError(
                f"MIDI files may be at most {_size(limit)}; "
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
        self._replace_file(project, project.midi_key, key, data, "midi")
        project.midi_key, project.midi_sha256 = key, sha256
        project.song_title = song.title
        project.song_duration = round(song.duration, 3)
        project.note_count = song.note_count
        self._store_thumbnail(project, thumbnail)
        self.session.flush()
        return project

    def upload_audio(
        self, user: User, project_id: uuid.UUID, data: bytes, filename: str | None
    ) -> Project:
        """Store a recording FFmpeg can read, with its duration, codec and SHA-256."""
        project = self.access(user, project_id, Action.EDIT)
        limit = self.max_audio_bytes(user)
        if len(data) > limit:
            raise FileTooLargeError(
                f"Audio files may be at most {_size(limit)} on your plan; this one is larger. "
                "Export it compressed (MP3, OGG or FLAC) or upgrade your plan."
            )
        info = _probe_audio(data)
        sha256 = hashlib.sha256(data).hexdigest()
        suffix = Path(filename or "").suffix.lower()
        key = f"projects/{project.id}/audio-{sha256}"
        if _AUDIO_SUFFIX.fullmatch(suffix):
            key += suffix  # kept, so tools reading the file later can go by its name
        self._replace_file(project, project.audio_key, key, data, "audio")
        project.audio_key, project.audio_sha256 = key, sha256
        project.audio_codec = info.audio_codec
        project.audio_duration = round(info.duration, 3) if info.duration is not None else None
        self.session.flush()
        return project

    def delete_audio(self, user: User, project_id: uuid.UUID) -> Project:
        project = self.access(user, project_id, Action.EDIT)
        if project.audio_key is not None:
            self.usage.release(project.audio_key)
            self._delete_after_commit(project.audio_key)
        project.audio_key = project.audio_sha256 = project.audio_codec = None
        project.audio_duration = None
        self.session.flush()
        return project

    def thumbnail_url(self, user: User, project_id: uuid.UUID) -> str:
        return self.thumbnail_link(self.access(user, project_id, Action.READ))

    def thumbnail_link(self, project: Project) -> str:
        if project.thumbnail_key is None:
            raise NotFoundError("This project has no thumbnail yet; upload its MIDI file first.")
        return self.storage.signed_url(project.thumbnail_key, THUMBNAIL_LINK_LIFETIME)

    def source_file_url(self, user: User, project_id: uuid.UUID, kind: str) -> str:
        """A signed link to the project's MIDI file (``midi``) or recording (``audio``),
        served as an attachment named after the project, for whoever may read it."""
        project = self.access(user, project_id, Action.READ)
        key = project.midi_key if kind == "midi" else project.audio_key
        if key is None:
            raise NotFoundError(
                "This project has no MIDI file yet; upload one first."
                if kind == "midi"
                else "This project has no recording; renders synthesize the MIDI."
            )
        suffix = Path(key).suffix or (".mid" if kind == "midi" else "")
        return self.storage.signed_url(
            key, SOURCE_LINK_LIFETIME, download_name=file_slug(project.name) + suffix
        )

    # Settings presets ----------------------------------------------------------------------

    def export_settings(self, user: User, project_id: uuid.UUID) -> tuple[Project, dict[str, Any]]:
        project = self.access(user, project_id, Action.READ)
        return project, {"notefall_preset": PRESET_VERSION, "settings": dict(project.settings)}

    def import_settings(self, user: User, project_id: uuid.UUID, preset: object) -> Project:
        """Replace the settings with a preset's (validated like any settings); redraws."""
        project = self.access(user, project_id, Action.EDIT)
        if not isinstance(preset, dict) or preset.get("notefall_preset") != PRESET_VERSION:
            raise InvalidPresetError(
                'A preset is a JSON object {"notefall_preset": 1, "settings": {...}}, as '
                "exported from a project; this is not one."
            )
        settings = preset.get("settings")
        if not isinstance(settings, dict) or set(preset) - {"notefall_preset", "settings"}:
            raise InvalidPresetError(
                'A preset holds "notefall_preset" and a "settings" object and nothing else; '
                "export it again from a project."
            )
        self._apply_settings(project, _validated(settings))
        self.session.flush()
        return project

    # Internals -----------------------------------------------------------------------------

    def _apply_settings(self, project: Project, settings: dict[str, Any]) -> None:
        if settings == project.settings and project.thumbnail_key is not None:
            # Same settings, same picture: an autosaving client must not cost a redraw per save.
            return
        project.settings = settings
        if project.midi_key is not None:
            song = read_song(self.storage.get(project.midi_key))
            self._store_thumbnail(project, _thumbnail_png(project.settings, song))

    def _owner(self, project: Project) -> User:
        owner = self.session.get(User, project.owner_id)
        assert owner is not None  # the foreign key cascades
        return owner

    def _store_file(self, owner: User, key: str, data: bytes, kind: str) -> None:
        # Charged first: a file that does not fit is never written.
        self.usage.charge(owner, key, len(data), kind)
        self.storage.put(key, data)

    def _replace_file(
        self, project: Project, old_key: str | None, key: str, data: bytes, kind: str
    ) -> None:
        """Store ``data`` at ``key`` for the project's owner (whoever uploads it) and let go
        of ``old_key``: the owner's quota counts what is in their projects."""
        if old_key not in (None, key):
            assert old_key is not None
            self.usage.release(old_key)
            self._delete_after_commit(old_key)
        self._store_file(self._owner(project), key, data, kind)

    def _delete(self, project: Project) -> None:
        charged = [key for key in (project.midi_key, project.audio_key) if key]
        keys = [*charged, *([project.thumbnail_key] if project.thumbnail_key else [])]
        self.usage.release(*charged)
        self.projects.delete(project)
        for key in keys:
            self._delete_after_commit(key)

    def _store_thumbnail(self, project: Project, png: bytes) -> None:
        # A new name per picture, so no cache keeps showing the old one. Thumbnails are
        # derived and small, so they are not charged against the quota.
        key = f"projects/{project.id}/thumbnail-{uuid.uuid4().hex}.png"
        self.storage.put(key, png)
        if project.thumbnail_key is not None:
            self._delete_after_commit(project.thumbnail_key)
        project.thumbnail_key = key

    def _delete_after_commit(self, key: str) -> None:
        # Only once the rows no longer name the file; a rolled-back request keeps it.
        after_commit(self.session, lambda: self.storage.delete(key))


def _probe_audio(data: bytes) -> MediaInfo:
    """What FFmpeg reads in ``data``; refused unless it holds an audio stream."""
    advice = "Upload a WAV, FLAC, MP3, OGG or M4A recording."
    with tempfile.TemporaryDirectory(prefix="notefall-audio-") as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        try:
            info = probe(path)
        except InputError as error:
            # FFmpeg names the file it read: our temporary path means nothing to the user.
            reason = error.message.replace(str(path), "the file")
            raise UnreadableAudioError(f"{reason.rstrip('.')}. {advice}") from None
        except subprocess.TimeoutExpired:
            raise UnreadableAudioError(f"Reading this file took too long. {advice}") from None
    if not info.has_audio:
        raise UnreadableAudioError(f"FFmpeg reads this file but finds no sound in it. {advice}")
    return info


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


def file_slug(name: str) -> str:
    """An ASCII file name stem from a project name ("Émile's Song" -> "emile-s-song")."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")[:60] or "project"


def _size(n_bytes: int) -> str:
    mb = 1024 * 1024
    return f"{n_bytes / mb:g} MB" if n_bytes >= mb else f"{n_bytes:,} bytes"


def _unique(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))
