"""A local project: one folder holding the MIDI, the optional recording and project.json.

project.json::

    {"version": 1, "name": "Moonlight", "settings": {...RenderSettings, non-defaults...},
     "midi": "song.mid", "audio": "recording.wav" | null, "duration": 83.5, "note_count": 812,
     "created": "2026-11-29T21:00:00+00:00", "updated": "..."}

Files are copied into the folder, so a project survives the user tidying their
Downloads. Every write goes to a temporary file first and is renamed into place, so a
crash never leaves half a project.json.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from notefall.common.errors import InputError
from notefall.common.midi import read_song
from notefall.common.settings import RenderSettings, settings_from_mapping
from notefall.common.song import Song

PROJECT_FILE = "project.json"
PROJECT_VERSION = 1
MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".rmi")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
MAX_NAME = 120


class ProjectError(InputError):
    """A project folder cannot be used (missing or damaged project.json, bad name...)."""

    code = "invalid_project"


def settings_changes(settings: RenderSettings) -> dict[str, Any]:
    """The fields that differ from Notefall's defaults, as JSON values.

    Compared value by value against a default ``RenderSettings`` (not with
    ``exclude_defaults``): a default like ``split_point="C4"`` is stored normalised (60),
    which pydantic would otherwise count as a change.
    """
    defaults = RenderSettings().model_dump(mode="json")
    return {k: v for k, v in settings.model_dump(mode="json").items() if v != defaults[k]}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def clean_name(name: str) -> str:
    text = " ".join(name.split())
    if not text:
        raise ProjectError("A project needs a name.", code="empty_name")
    if len(text) > MAX_NAME:
        raise ProjectError(f"Names are at most {MAX_NAME} characters.", code="name_too_long")
    return text


def _slug(name: str) -> str:
    keep = "".join(c if c.isalnum() else "-" for c in name.lower())
    slug = "-".join(p for p in keep.split("-") if p)[:40] or "project"
    return f"{slug}-{uuid.uuid4().hex[:8]}"


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(slots=True)
class LocalProject:
    folder: Path
    name: str
    midi_file: str
    settings: RenderSettings = field(default_factory=RenderSettings)
    audio_file: str | None = None
    # A summary of the song for the library list, so listing never re-reads every MIDI.
    duration: float = 0.0
    note_count: int = 0
    created: str = field(default_factory=now_iso)
    updated: str = field(default_factory=now_iso)

    # Paths -----------------------------------------------------------------------------

    @property
    def id(self) -> str:
        """Stable for the project's life: the folder name (renaming changes only ``name``)."""
        return self.folder.name

    @property
    def midi_path(self) -> Path:
        return self.folder / self.midi_file

    @property
    def audio_path(self) -> Path | None:
        return self.folder / self.audio_file if self.audio_file else None

    def read_song(self) -> Song:
        return read_song(self.midi_path, name=self.name)

    def render_settings(self) -> RenderSettings:
        """The settings a render uses: the project's recording, if any, replaces synthesis."""
        if self.audio_path is None:
            return self.settings
        data = self.settings.model_dump(mode="json", exclude_unset=True)
        data.update(audio=str(self.audio_path), soundfont=None, no_audio=False)
        return settings_from_mapping(data)

    # Reading and writing ---------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "version": PROJECT_VERSION,
            "name": self.name,
            "settings": settings_changes(self.settings),
            "midi": self.midi_file,
            "audio": self.audio_file,
            "duration": round(self.duration, 3),
            "note_count": self.note_count,
            "created": self.created,
            "updated": self.updated,
        }

    def save(self) -> None:
        self.updated = now_iso()
        write_json_atomically(self.folder / PROJECT_FILE, self.to_json())

    @classmethod
    def load(cls, folder: Path) -> LocalProject:
        path = folder / PROJECT_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ProjectError(
                f"{folder.name} has no {PROJECT_FILE}.", code="not_a_project"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProjectError(
                f"The project file in {folder.name} is damaged ({exc}).", code="damaged_project"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("midi"), str):
            raise ProjectError(
                f"The project file in {folder.name} is damaged (no MIDI file named).",
                code="damaged_project",
            )
        if int(data.get("version", 1)) > PROJECT_VERSION:
            raise ProjectError(
                f"{folder.name} was saved by a newer Notefall; update the app to open it.",
                code="newer_project",
            )
        settings_data = data.get("settings") or {}
        return cls(
            folder=folder,
            name=str(data.get("name") or folder.name),
            midi_file=data["midi"],
            settings=settings_from_mapping(
                settings_data if isinstance(settings_data, dict) else {}
            ),
            audio_file=data.get("audio") or None,
            duration=float(data.get("duration") or 0.0),
            note_count=int(data.get("note_count") or 0),
            created=str(data.get("created") or now_iso()),
            updated=str(data.get("updated") or now_iso()),
        )

    @classmethod
    def create(
        cls,
        root: Path,
        midi: Path,
        *,
        name: str | None = None,
        audio: Path | None = None,
        settings: RenderSettings | None = None,
    ) -> LocalProject:
        """A new project from a MIDI file, checked with the engine first.

        Everything is assembled in a hidden folder and renamed into the library at the
        end, so a damaged MIDI or a full disk leaves nothing behind.
        """
        midi = Path(midi)
        song = read_song(midi)  # raises MidiError with the engine's own message
        if song.note_count == 0:
            raise InputError(f"{midi.name} has no notes to show.", code="empty_song")
        if audio is not None:
            _check_audio(audio)
        title = clean_name(name if name is not None else (song.title or midi.stem))
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".new-", dir=root))
        try:
            midi_file = "song" + (midi.suffix.lower() or ".mid")
            shutil.copy2(midi, staging / midi_file)
            audio_file = None
            if audio is not None:
                audio_file = "recording" + audio.suffix.lower()
                shutil.copy2(audio, staging / audio_file)
            project = cls(
                folder=staging,
                name=title,
                midi_file=midi_file,
                settings=settings or RenderSettings(),
                audio_file=audio_file,
                duration=song.duration,
                note_count=song.note_count,
            )
            project.save()
            final = root / _slug(title)
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        project.folder = final
        return project

    # Edits -----------------------------------------------------------------------------

    def rename(self, name: str) -> None:
        self.name = clean_name(name)
        self.save()

    def set_settings(self, settings: RenderSettings) -> None:
        self.settings = settings
        self.save()

    def set_audio(self, audio: Path | None) -> None:
        """Attach (copying it in) or remove the user's recording."""
        old = self.audio_path
        if audio is None:
            self.audio_file = None
        else:
            _check_audio(audio)
            new_file = f"recording-{uuid.uuid4().hex[:6]}{audio.suffix.lower()}"
            shutil.copy2(audio, self.folder / new_file)
            self.audio_file = new_file
        self.save()
        if old is not None and old != self.audio_path:
            old.unlink(missing_ok=True)

    def duplicate(self, name: str | None = None) -> LocalProject:
        root = self.folder.parent
        staging = Path(tempfile.mkdtemp(prefix=".copy-", dir=root))
        try:
            shutil.copytree(self.folder, staging, dirs_exist_ok=True)
            copy = LocalProject.load(staging)
            copy.name = clean_name(name or f"{self.name} (copy)")
            copy.created = now_iso()
            copy.save()
            final = root / _slug(copy.name)
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        copy.folder = final
        return copy

    def delete(self) -> None:
        # Rename first so the library never lists a half-deleted folder.
        doomed = self.folder.with_name(f".deleting-{self.folder.name}")
        os.replace(self.folder, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def _check_audio(audio: Path) -> None:
    if not audio.is_file():
        raise InputError(f"Audio file not found: {audio}", code="missing_audio")
    if audio.suffix.lower() not in AUDIO_SUFFIXES:
        raise InputError(
            f"{audio.name} is not a recording Notefall can use; use WAV, FLAC, MP3 or OGG.",
            code="invalid_audio",
        )
