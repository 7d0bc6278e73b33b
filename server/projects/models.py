"""Project rows. The MIDI file, the audio recording and the thumbnail live in storage; the
row keeps their keys and summaries, so listing never reads a file."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from notefall.server.kit.models import Base, Timestamped, utcnow
from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column


class Project(Timestamped, Base):
    __tablename__ = "projects"
    __table_args__ = (
        # The listing filters by owner and orders by one of these: each is one index range.
        Index("ix_projects_owner_id_created_at", "owner_id", "created_at"),
        Index("ix_projects_owner_id_updated_at", "owner_id", "updated_at"),
        Index("ix_projects_owner_id_name", "owner_id", "name"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    # In the user's order; ProjectTag holds the same tags for searching and filtering.
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The RenderSettings fields the user set, validated; defaults are left out.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    midi_key: Mapped[str | None] = mapped_column(String(300))
    midi_sha256: Mapped[str | None] = mapped_column(String(64))
    song_title: Mapped[str | None] = mapped_column(String(500))
    song_duration: Mapped[float | None] = mapped_column(Float)
    note_count: Mapped[int | None] = mapped_column(Integer)
    thumbnail_key: Mapped[str | None] = mapped_column(String(300))
    audio_key: Mapped[str | None] = mapped_column(String(300))
    audio_sha256: Mapped[str | None] = mapped_column(String(64))
    audio_codec: Mapped[str | None] = mapped_column(String(40))
    audio_duration: Mapped[float | None] = mapped_column(Float)


class ProjectTag(Base):
    """One tag of one project, lower-cased: an index answers "projects tagged x"."""

    __tablename__ = "project_tags"
    __table_args__ = (Index("ix_project_tags_tag_project_id", "tag", "project_id"),)

    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)


class Role(StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"


class Collaborator(Base):
    """Someone the owner shared a project with, by email address.

    The address need not have an account yet: the share takes effect for whoever holds a
    verified account with that address, so nothing has to be updated when they sign up.
    """

    __tablename__ = "project_collaborators"
    __table_args__ = (UniqueConstraint("project_id", "email"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("projects.id", ondelete="CASCADE")
    )
    # Lower-cased like users.email; indexed for "shared with me".
    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ShareLink(Base):
    """A read-only public link to a project. Only the token's SHA-256 is stored."""

    __tablename__ = "share_links"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    project_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
