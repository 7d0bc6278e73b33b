"""All SQL of the projects domain."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from notefall.server.renders.models import Render
from notefall.server.renders.states import RenderStatus
from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.orm import Session

from .models import Collaborator, Project, ProjectTag, ShareLink

Sort = Literal["name", "-name", "created", "-created", "updated", "-updated"]
Shared = Literal["mine", "with_me", "all"]
_SORT_COLUMNS = {"name": Project.name, "created": Project.created_at, "updated": Project.updated_at}


@dataclass(frozen=True)
class ProjectFilter:
    query: str | None = None
    tags: Sequence[str] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    shared: Shared = "mine"
    # True: only projects with a finished video; False: only those without one.
    has_renders: bool | None = None
    sort: Sort = "-created"


class ProjectRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, project: Project) -> Project:
        self.session.add(project)
        self.session.flush()
        return project

    def get(self, project_id: uuid.UUID) -> Project | None:
        return self.session.get(Project, project_id)

    def get_many(self, project_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Project]:
        rows = self.session.scalars(select(Project).where(Project.id.in_(list(project_ids))))
        return {project.id: project for project in rows}

    def delete(self, project: Project) -> None:
        self.session.delete(project)
        self.session.flush()

    def set_tags(self, project: Project, tags: list[str]) -> None:
        """Store ``tags`` on the row (in order) and in project_tags (lower-cased)."""
        project.tags = tags
        self.session.execute(delete(ProjectTag).where(ProjectTag.project_id == project.id))
        self.session.add_all(
            ProjectTag(project_id=project.id, tag=tag) for tag in dict.fromkeys(_lower(tags))
        )
        self.session.flush()

    def page_of(
        self,
        owner_id: uuid.UUID,
        member_email: str | None,
        where: ProjectFilter,
        limit: int,
        offset: int,
    ) -> tuple[list[Project], int]:
        """One page of the projects matching ``where`` that ``owner_id`` owns and/or that are
        shared with ``member_email`` (None: no address to be shared with), and the total."""
        conditions: list[ColumnElement[bool]] = [
            self._visible(owner_id, member_email, where.shared)
        ]
        if where.query:
            tagged_like = select(ProjectTag.project_id).where(
                ProjectTag.tag.contains(where.query.lower(), autoescape=True)
            )
            conditions.append(
                or_(
                    Project.name.icontains(where.query, autoescape=True),
                    Project.song_title.icontains(where.query, autoescape=True),
                    Project.id.in_(tagged_like),
                )
            )
        for tag in dict.fromkeys(_lower(where.tags)):
            conditions.append(
                Project.id.in_(select(ProjectTag.project_id).where(ProjectTag.tag == tag))
            )
        if where.created_after is not None:
            conditions.append(Project.created_at >= where.created_after)
        if where.created_before is not None:
            conditions.append(Project.created_at < where.created_before)
        if where.has_renders is not None:
            rendered = select(Render.project_id).where(
                Render.project_id.is_not(None), Render.status == RenderStatus.SUCCEEDED.value
            )
            has = Project.id.in_(rendered)
            conditions.append(has if where.has_renders else ~has)
        column = _SORT_COLUMNS[where.sort.removeprefix("-")]
        descending = where.sort.startswith("-")
        # The id breaks ties, so pages never overlap or skip rows with equal keys.
        order = (column.desc(), Project.id.desc()) if descending else (column, Project.id)
        total = self.session.scalar(select(func.count()).select_from(Project).where(*conditions))
        rows = self.session.scalars(
            select(Project).where(*conditions).order_by(*order).limit(limit).offset(offset)
        )
        return list(rows), total or 0

    @staticmethod
    def _visible(
        owner_id: uuid.UUID, member_email: str | None, shared: Shared
    ) -> ColumnElement[bool]:
        mine = Project.owner_id == owner_id
        if member_email is None:
            with_me: ColumnElement[bool] = Project.id.is_(None)  # nothing is shared
        else:
            shared_ids = select(Collaborator.project_id).where(Collaborator.email == member_email)
            with_me = and_(Project.id.in_(shared_ids), Project.owner_id != owner_id)
        return {"mine": mine, "with_me": with_me, "all": or_(mine, with_me)}[shared]

    # Collaborators ---------------------------------------------------------------------

    def membership(self, project_id: uuid.UUID, email: str) -> Collaborator | None:
        return self.session.scalar(
            select(Collaborator).where(
                Collaborator.project_id == project_id, Collaborator.email == email
            )
        )

    def roles(self, project_ids: Iterable[uuid.UUID], email: str) -> dict[uuid.UUID, str]:
        rows = self.session.execute(
            select(Collaborator.project_id, Collaborator.role).where(
                Collaborator.project_id.in_(list(project_ids)), Collaborator.email == email
            )
        )
        return {project_id: role for project_id, role in rows}

    def collaborators(self, project_id: uuid.UUID) -> list[Collaborator]:
        return list(
            self.session.scalars(
                select(Collaborator)
                .where(Collaborator.project_id == project_id)
                .order_by(Collaborator.created_at, Collaborator.id)
            )
        )

    def collaborator(
        self, project_id: uuid.UUID, collaborator_id: uuid.UUID
    ) -> Collaborator | None:
        found = self.session.get(Collaborator, collaborator_id)
        return found if found is not None and found.project_id == project_id else None

    def add_collaborator(self, collaborator: Collaborator) -> Collaborator:
        self.session.add(collaborator)
        self.session.flush()
        return collaborator

    def delete_collaborator(self, collaborator: Collaborator) -> None:
        self.session.delete(collaborator)
        self.session.flush()

    # Share links -----------------------------------------------------------------------

    def add_share_link(self, link: ShareLink) -> ShareLink:
        self.session.add(link)
        self.session.flush()
        return link

    def share_links(self, project_id: uuid.UUID) -> list[ShareLink]:
        return list(
            self.session.scalars(
                select(ShareLink)
                .where(ShareLink.project_id == project_id, ShareLink.revoked_at.is_(None))
                .order_by(ShareLink.created_at, ShareLink.id)
            )
        )

    def share_link(self, project_id: uuid.UUID, link_id: uuid.UUID) -> ShareLink | None:
        found = self.session.get(ShareLink, link_id)
        return found if found is not None and found.project_id == project_id else None

    def share_link_by_hash(self, token_hash: str) -> ShareLink | None:
        return self.session.scalar(select(ShareLink).where(ShareLink.token_hash == token_hash))


def _lower(tags: Iterable[str]) -> list[str]:
    return [tag.lower() for tag in tags]
