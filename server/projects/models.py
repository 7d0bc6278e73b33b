"""Project rows. The MIDI file and thumbnail live in storage; the row keeps their keys
and the song's summary, so listing never reads a file."""

from __future__ import annotations

import uuid
from typing import Any

from notefall.server.kit.models import Base, Timestamped
from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column


class Project(Timestamped, Base):
    __tablename__ = "projects"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The RenderSettings fields the user set, validated; defaults are left out.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    midi_key: Mapped[str | None] = mapped_column(String(300))
    midi_sha256: Mapped[str | None] = mapped_column(String(64))
    song_title: Mapped[str | None] = mapped_column(String(500))
    song_duration: Mapped[float | None] = mapped_column(Float)
    note_count: Mapped[int | None] = mapped_column(Integer)
    thumbnail_key: Mapped[str | None] = mapped_column(String(300))
