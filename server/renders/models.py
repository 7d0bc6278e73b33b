"""Render rows. The database is the record of truth; Redis carries messages and events.

A ``Render`` is what the user asked for and what came out; its ``RenderStep`` rows are the
units of work the workers claim, one lease at a time, so no step runs twice at once and a
reconciler can tell which step a lost message or a dead worker left behind.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from notefall.server.kit.models import Base, Timestamped
from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from .states import RenderStatus, StepStatus


class Render(Timestamped, Base):
    __tablename__ = "renders"
    __table_args__ = (
        # An Idempotency-Key names one render of its owner, forever.
        UniqueConstraint("owner_id", "idempotency_key"),
        Index("ix_renders_owner_id_created_at", "owner_id", "created_at"),
        # The month's quota and the concurrent-render limit count these.
        Index("ix_renders_owner_id_period_status", "owner_id", "period", "status"),
        Index("ix_renders_project_id_created_at", "project_id", "created_at"),
        # The reconciler and /metrics look for unfinished renders.
        Index("ix_renders_status_created_at", "status", "created_at"),
        # Duplicate detection: the same song, recording and settings.
        Index("ix_renders_owner_id_fingerprint", "owner_id", "fingerprint"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # History outlives the project: the name is kept, the link is cleared.
    project_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("projects.id", ondelete="SET NULL")
    )
    project_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default=RenderStatus.QUEUED)
    # What runs now (states.STAGE_OF_STEP), with progress over the whole render.
    stage: Mapped[str | None] = mapped_column(String(20))
    percent: Mapped[float] = mapped_column(Float, default=0.0)
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    # The plan the render was submitted under; its queue follows from it.
    tier: Mapped[str] = mapped_column(String(20))
    queue: Mapped[str] = mapped_column(String(40))
    # The effective RenderSettings (tier rules applied), as JSON; what the worker renders.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    # sha256 over MIDI, audio and settings: equal renders of one owner share it.
    fingerprint: Mapped[str] = mapped_column(String(64))
    midi_sha256: Mapped[str] = mapped_column(String(64))
    audio_sha256: Mapped[str | None] = mapped_column(String(64))
    # Copies of the inputs taken at submit: later uploads to the project do not change it.
    input_midi_key: Mapped[str] = mapped_column(String(300))
    input_audio_key: Mapped[str | None] = mapped_column(String(300))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # sha256 of the request first sent with the Idempotency-Key: reusing the key for a
    # different request is refused.
    request_sha256: Mapped[str | None] = mapped_column(String(64))
    # The month ('2026-11', UTC) whose quota the render counts against.
    period: Mapped[str] = mapped_column(String(7))
    # Bumped when the whole render starts over (an operator's requeue of a dead letter):
    # steps of an older attempt then do nothing.
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    frame_count: Mapped[int | None] = mapped_column(Integer)
    segment_count: Mapped[int | None] = mapped_column(Integer)
    segments_done: Mapped[int] = mapped_column(Integer, default=0)
    # A failed, dead or cancelled render says why, in words a user can act on.
    error_code: Mapped[str | None] = mapped_column(String(60))
    error_message: Mapped[str | None] = mapped_column(String(1000))
    # The finished video.
    output_key: Mapped[str | None] = mapped_column(String(300))
    output_bytes: Mapped[int | None] = mapped_column(BigInteger)
    output_duration: Mapped[float | None] = mapped_column(Float)
    output_codec: Mapped[str | None] = mapped_column(String(20))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    fps: Mapped[int | None] = mapped_column(Integer)
    format: Mapped[str | None] = mapped_column(String(8))
    thumbnail_key: Mapped[str | None] = mapped_column(String(300))
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # The latest heartbeat of any of its running steps.
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    cancel_requested_at: Mapped[datetime | None] = mapped_column()
    # An operator took a dead render off the dead-letter list for good.
    discarded_at: Mapped[datetime | None] = mapped_column()
    # The video is deleted after this (the plan's retention), the row is kept.
    expires_at: Mapped[datetime | None] = mapped_column()


class RenderStep(Base):
    """One unit of work of one attempt of a render; a worker must hold its lease to run it."""

    __tablename__ = "render_steps"
    __table_args__ = (
        UniqueConstraint("render_id", "attempt", "name", "index"),
        Index("ix_render_steps_status_heartbeat_at", "status", "heartbeat_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    render_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("renders.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(12))
    index: Mapped[int] = mapped_column(Integer, default=0)
    # For segments: frames [first_frame, last_frame) of the render's frame grid.
    first_frame: Mapped[int | None] = mapped_column(Integer)
    last_frame: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default=StepStatus.PENDING)
    # Times a worker started it; past NOTEFALL_RENDER_MAX_DELIVERIES it goes to dead letters.
    deliveries: Mapped[int] = mapped_column(Integer, default=0)
    # The token of the delivery that holds it, and where that delivery runs.
    lease: Mapped[str | None] = mapped_column(String(32))
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    # When its latest message was published, and the earliest a retry may start.
    enqueued_at: Mapped[datetime | None] = mapped_column()
    not_before: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # 0..1 within the step, for the render's overall percent.
    fraction: Mapped[float] = mapped_column(Float, default=0.0)
    output_key: Mapped[str | None] = mapped_column(String(300))
    error: Mapped[str | None] = mapped_column(String(1000))
