"""Request and response bodies of the renders API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RenderSettingsJSON = Annotated[
    dict[str, Any],
    Field(
        description="RenderSettings fields laid over the project's own settings, e.g. "
        '{"resolution": "720p", "fps": 30}',
        examples=[{"resolution": "720p", "fps": 30, "format": "mp4"}],
    ),
]
Status = Literal["queued", "running", "succeeded", "failed", "cancelled", "dead"]


class RenderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_id: uuid.UUID
    settings: RenderSettingsJSON | None = None


class RenderError(BaseModel):
    code: str = Field(examples=["cancelled", "unreadable_midi", "render_dead"])
    message: str = Field(description="what happened and what to do")


class RenderOutput(BaseModel):
    duration: float | None = Field(description="seconds")
    bytes: int | None
    codec: str | None = Field(examples=["h264", "vp9", "prores"])
    width: int | None
    height: int | None
    fps: int | None
    format: str | None = Field(examples=["mp4", "webm", "mov"])


class Segments(BaseModel):
    done: int
    total: int | None = Field(description="null until the prepare step has split the video")


class RenderLinks(BaseModel):
    # All null on another user's render in a project's history: only its owner may open them.
    events: str | None = Field(description="WebSocket: a snapshot, then live progress events")
    download: str | None = Field(description="redirects to the video; null until it exists")
    thumbnail: str | None = Field(description="redirects to a still; null until it exists")


class RenderOut(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID | None = Field(description="null once the project was deleted")
    project_name: str
    status: Status
    stage: str | None = Field(
        description="while running: preparing, rendering, joining, thumbnail or finalizing"
    )
    percent: float = Field(description="0–100 over the whole render")
    eta_seconds: float | None
    settings: dict[str, Any] = Field(description="the effective settings, plan rules applied")
    tier: str
    queue: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None = Field(description="when the video will be deleted")
    error: RenderError | None
    output: RenderOutput | None = Field(description="the video; null until it succeeded")
    segments: Segments
    links: RenderLinks


class RenderPage(BaseModel):
    items: list[RenderOut]
    total: int = Field(description="renders matching the filters, on every page")
    limit: int
    offset: int
