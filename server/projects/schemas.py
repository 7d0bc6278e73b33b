"""Request and response bodies of the projects API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from notefall.server.kit.text import OneLine
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .models import Role

Name = Annotated[str, OneLine(200)]
Tag = Annotated[str, OneLine(40)]
Tags = Annotated[list[Tag], Field(max_length=20)]
RenderSettingsJSON = Annotated[
    dict[str, Any],
    Field(description='RenderSettings fields, e.g. {"theme": "neon", "fps": 60}', examples=[{}]),
]


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    tags: Tags = []
    settings: RenderSettingsJSON | None = None


class ProjectUpdate(BaseModel):
    """Only the fields sent change; ``settings`` replaces the stored settings as a whole."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    tags: Tags | None = None
    settings: RenderSettingsJSON | None = None


class SongSummary(BaseModel):
    title: str
    duration: float = Field(description="seconds")
    note_count: int
    midi_sha256: str


class AudioSummary(BaseModel):
    duration: float | None = Field(description="seconds; null when the file does not say")
    codec: str = Field(examples=["mp3", "flac", "pcm_s16le"])
    sha256: str


class ProjectOut(BaseModel):
    id: uuid.UUID
    name: str
    role: Literal["owner", "editor", "viewer"] = Field(description="what you are to this project")
    tags: list[str]
    settings: dict[str, Any] = Field(description="the RenderSettings fields set; others default")
    song: SongSummary | None = Field(description="null until a MIDI file is uploaded")
    audio: AudioSummary | None = Field(description="your recording; null when there is none")
    thumbnail_url: str | None = Field(description="redirects to the image; null without a MIDI")
    created_at: datetime
    updated_at: datetime


class ProjectPage(BaseModel):
    items: list[ProjectOut]
    total: int = Field(description="projects matching the query, on every page")
    limit: int
    offset: int


ProjectIds = Annotated[list[uuid.UUID], Field(min_length=1, max_length=100)]


class BulkDelete(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: ProjectIds


class BulkDeleted(BaseModel):
    deleted: int


class BulkTag(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: ProjectIds
    add: Tags = []
    remove: Tags = []


class ProjectList(BaseModel):
    items: list[ProjectOut]


class DuplicateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = Field(None, description='default: "<name> (copy)"')


class SettingsPreset(BaseModel):
    notefall_preset: Literal[1]
    settings: dict[str, Any]


class ShareLinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_at: datetime | None = Field(None, description="null: until revoked")


class ShareLinkOut(BaseModel):
    id: uuid.UUID
    created_at: datetime
    expires_at: datetime | None


class ShareLinkCreated(ShareLinkOut):
    token: str = Field(description="shown once; only its hash is kept")
    url: str = Field(description="anyone holding it may read the project")


class CollaboratorInvite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320, examples=["grace@example.com"])
    role: Role

    @field_validator("email")
    @classmethod
    def _plausible_email(cls, value: str) -> str:
        value = value.strip()
        local, at, domain = value.rpartition("@")
        if not at or not local or "." not in domain.strip(".") or any(c.isspace() for c in value):
            raise ValueError("must be an email address such as grace@example.com")
        return value


class CollaboratorUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


class CollaboratorOut(BaseModel):
    id: uuid.UUID
    email: str
    role: Role
    status: Literal["active", "invited"] = Field(
        description="active: a verified account has this address; invited: not yet"
    )
    created_at: datetime


class SharedProjectOut(BaseModel):
    """What a share link shows: no owner, no tags, no file keys."""

    name: str
    song: SongSummary | None
    settings: dict[str, Any]
    thumbnail_url: str | None = Field(description="a signed link to the image, valid 15 minutes")
