"""All SQL of the projects domain."""

from __future__ import annotations

import uuid
from typing import Literal

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from .models import Project

Sort = Literal["name", "-name", "created", "-created", "updated", "-updated"]
_SORT_COLUMNS = {"name": Project.name, "created": Project.created_at, "updated": Project.updated_at}


class ProjectRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, project: Project) -> Project:
        self.session.add(project)
        self.session.flush()
        return project

    def get(self, project_id: uuid.UUID) -> Project | None:
        return self.session.get(Project, project_id)

    def delete(self, project: Project) -> None:
        self.session.delete(project)
        self.session.flush()

    def page_of(
        self, owner_id: uuid.UUID, query: str | None, sort: Sort, limit: int, offset: int
    ) -> tuple[list[Project], int]:
        """One page of the owner's projects matching ``query``, and how many match in all."""
        where: list[ColumnElement[bool]] = [Project.owner_id == owner_id]
        if query:
            where.append(
                or_(
                    Project.name.icontains(query, autoescape=True),
                    Project.song_title.icontains(query, autoescape=True),
                )
            )
        column = _SORT_COLUMNS[sort.removeprefix("-")]
        descending = sort.startswith("-")
        # The id breaks ties, so pages never overlap or skip rows with equal keys.
        order = (column.desc(), Project.id.desc()) if descending else (column, Project.id)
        total = self.session.scalar(select(func.count()).select_from(Project).where(*where))
        rows = self.session.scalars(
            select(Project).where(*where).order_by(*order).limit(limit).offset(offset)
        )
        return list(rows), total or 0
