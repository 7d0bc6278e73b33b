"""Queries over render rows for the API. Never commits."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from .models import Render, RenderStep
from .states import ACTIVE, COUNTED, RenderStatus


@dataclass(frozen=True)
class RenderFilter:
    project_id: uuid.UUID | None = None
    statuses: Collection[RenderStatus] = ()


class RenderRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, render_id: uuid.UUID) -> Render | None:
        return self.session.get(Render, render_id)

    def add(self, render: Render) -> Render:
        self.session.add(render)
        self.session.flush()
        return render

    def by_idempotency_key(self, owner_id: uuid.UUID, key: str) -> Render | None:
        return self.session.scalars(
            select(Render).where(Render.owner_id == owner_id, Render.idempotency_key == key)
        ).one_or_none()

    def equal_render(
        self, owner_id: uuid.UUID, project_id: uuid.UUID, fingerprint: str, now: datetime
    ) -> Render | None:
        """The newest render of ``owner_id`` of this project with this fingerprint that is
        queued, running, or succeeded with its video still kept. Only the same project: an
        equal render of another project (the same song copied) would leave this project's
        history empty and name the video after the other one."""
        kept = (
            (Render.status == RenderStatus.SUCCEEDED.value)
            & Render.output_key.is_not(None)
            & (Render.expires_at.is_(None) | (Render.expires_at > now))
        )
        active = Render.status.in_([s.value for s in ACTIVE])
        return self.session.scalars(
            select(Render)
            .where(
                Render.owner_id == owner_id,
                Render.project_id == project_id,
                Render.fingerprint == fingerprint,
            )
            .where(or_(active, kept))
            .order_by(Render.created_at.desc(), Render.id.desc())
            .limit(1)
        ).first()

    def count_counted(self, owner_id: uuid.UUID, period: str) -> int:
        """Renders of ``period`` that count against the month's quota."""
        return self._count(
            Render.owner_id == owner_id,
            Render.period == period,
            Render.status.in_([s.value for s in COUNTED]),
        )

    def count_active(self, owner_id: uuid.UUID) -> int:
        """Renders holding a slot of the plan's concurrent renders."""
        return self._count(
            Render.owner_id == owner_id, Render.status.in_([s.value for s in ACTIVE])
        )

    def page_of(
        self,
        where: RenderFilter,
        limit: int,
        offset: int,
        *,
        owner_id: uuid.UUID | None,
    ) -> tuple[list[Render], int]:
        """Newest first; ``owner_id`` None means every owner's (a project owner's history)."""
        conditions = []
        if owner_id is not None:
            conditions.append(Render.owner_id == owner_id)
        if where.project_id is not None:
            conditions.append(Render.project_id == where.project_id)
        if where.statuses:
            conditions.append(Render.status.in_([s.value for s in where.statuses]))
        total = self._count(*conditions)
        rows = self.session.scalars(
            select(Render)
            .where(*conditions)
            .order_by(Render.created_at.desc(), Render.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return list(rows), total

    def owned_by(self, owner_id: uuid.UUID) -> list[Render]:
        return list(self.session.scalars(select(Render).where(Render.owner_id == owner_id)))

    def step_output_keys(self, render_ids: list[uuid.UUID]) -> list[str]:
        if not render_ids:
            return []
        return [
            key
            for key in self.session.scalars(
                select(RenderStep.output_key).where(
                    RenderStep.render_id.in_(render_ids), RenderStep.output_key.is_not(None)
                )
            )
            if key
        ]

    def _count(self, *conditions: object) -> int:
        query = select(func.count()).select_from(Render).where(*conditions)  # type: ignore[arg-type]
        return int(self.session.scalar(query) or 0)
