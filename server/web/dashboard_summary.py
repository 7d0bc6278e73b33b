"""What the dashboard shows beside each project, read for a whole page at once.

A page of projects costs a fixed number of queries, never one per project: the latest
render and the stored bytes come from two grouped queries, the tag list from a third.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from notefall.server.projects.models import Project, ProjectTag
from notefall.server.renders.models import Render
from notefall.server.usage.models import ChargedFile
from sqlalchemy import func, select
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class ProjectFacts:
    last_render_at: datetime | None
    # The project's files (MIDI, recording) and the videos still kept.
    stored_bytes: int


@dataclass(frozen=True)
class TagCount:
    tag: str
    projects: int


def facts_of(session: Session, projects: Sequence[Project]) -> dict[uuid.UUID, ProjectFacts]:
    ids = [project.id for project in projects]
    if not ids:
        return {}
    renders = {
        project_id: (last, int(video_bytes or 0))
        for project_id, last, video_bytes in session.execute(
            select(
                Render.project_id,
                func.max(Render.created_at),
                # A video deleted at the end of its retention no longer takes room.
                func.sum(Render.output_bytes).filter(Render.output_key.is_not(None)),
            )
            .where(Render.project_id.in_(ids))
            .group_by(Render.project_id)
        )
    }
    owner_of_key = {
        key: project.id
        for project in projects
        for key in (project.midi_key, project.audio_key)
        if key is not None
    }
    file_bytes: dict[uuid.UUID, int] = {}
    if owner_of_key:
        for key, n_bytes in session.execute(
            select(ChargedFile.key, ChargedFile.bytes).where(ChargedFile.key.in_(owner_of_key))
        ):
            project_id = owner_of_key[key]
            file_bytes[project_id] = file_bytes.get(project_id, 0) + n_bytes
    facts = {}
    for project_id in ids:
        last, video_bytes = renders.get(project_id, (None, 0))
        facts[project_id] = ProjectFacts(
            last_render_at=last, stored_bytes=file_bytes.get(project_id, 0) + video_bytes
        )
    return facts


def tags_of(session: Session, owner_id: uuid.UUID) -> list[TagCount]:
    """The tags of the owner's projects (as stored, lower-cased) and how many carry each."""
    rows = session.execute(
        select(ProjectTag.tag, func.count())
        .join(Project, Project.id == ProjectTag.project_id)
        .where(Project.owner_id == owner_id)
        .group_by(ProjectTag.tag)
        .order_by(ProjectTag.tag)
    )
    return [TagCount(tag=tag, projects=count) for tag, count in rows]
