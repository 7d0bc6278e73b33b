"""All SQL of the activity log."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import ActivityEvent


class ActivityRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def newest_first(
        self, user_id: uuid.UUID, *, limit: int, before: datetime | None = None
    ) -> list[ActivityEvent]:
        query = select(ActivityEvent).where(ActivityEvent.user_id == user_id)
        if before is not None:
            query = query.where(ActivityEvent.at < before)
        query = query.order_by(ActivityEvent.at.desc(), ActivityEvent.id.desc()).limit(limit)
        return list(self.session.scalars(query))
