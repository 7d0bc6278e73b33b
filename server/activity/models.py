"""Activity rows: one per security-relevant or billable event of an account."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from notefall.server.kit.models import Base, utcnow
from sqlalchemy import JSON, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column


class ActivityEvent(Base):
    __tablename__ = "activity_events"
    # The log is read newest first, one account at a time.
    __table_args__ = (Index("ix_activity_events_user_id_at", "user_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    # Small, non-secret facts about the event (a session id, a render id, a plan name).
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
