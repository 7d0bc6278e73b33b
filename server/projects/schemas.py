"""Request and response bodies of the projects API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
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


class ProjectOut(BaseModel):
    id: uuid.UUID
    name: str
    tags: list[str]
    settings: dict[str, Any] = Field(description="the RenderSettings fields set; others default")
    song: SongSummary | None = Field(description="null until a MIDI file is uploaded")
    thumbnail_url: str | None = Field(description="redirects to the image; null without a MIDI")
    created_at: datetime
    updated_at: datetime


class ProjectPage(BaseModel):
    items: list[ProjectOut]
    total: int = Field(description="projects matching the query, on every page")
    limit: int
    offset: int
