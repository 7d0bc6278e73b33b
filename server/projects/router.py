"""HTTP endpoints of the projects domain: /api/v1/projects."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile, status
from fastapi.responses import RedirectResponse
from notefall.server.accounts.errors import InvalidAccessTokenError
from notefall.server.accounts.router import Current, RequestSession
from notefall.server.kit.errors import NotFoundError, problem_responses
from notefall.server.kit.settings import Settings

from .errors import FileTooLargeError, InvalidSettingsError, UnreadableMidiError
from .models import Project
from .repository import Sort
from .schemas import ProjectCreate, ProjectOut, ProjectPage, ProjectUpdate, SongSummary
from .service import ProjectService

router = APIRouter(
    prefix="/projects",
    tags=["projects"],
    responses=problem_responses(InvalidAccessTokenError, NotFoundError),
)


def project_service(request: Request, session: RequestSession) -> ProjectService:
    settings: Settings = request.app.state.settings
    return ProjectService(session, request.app.state.storage, settings.max_midi_bytes)


Service = Annotated[ProjectService, Depends(project_service)]


def _out(request: Request, project: Project) -> ProjectOut:
    song = None
    if project.midi_sha256 is not None:
        assert project.song_title is not None and project.song_duration is not None
        assert project.note_count is not None
        song = SongSummary(
            title=project.song_title,
            duration=project.song_duration,
            note_count=project.note_count,
            midi_sha256=project.midi_sha256,
        )
    thumbnail_url = None
    if project.thumbnail_key is not None:
        thumbnail_url = str(request.url_for("project_thumbnail", project_id=project.id).path)
    return ProjectOut(
        id=project.id,
        name=project.name,
        tags=project.tags,
        settings=project.settings,
        song=song,
        thumbnail_url=thumbnail_url,
        created_at=project.created_at,
        updated_at=project.updated_at,
    )


@router.get("", summary="Your projects, newest first unless sorted otherwise")
def list_projects(
    request: Request,
    current: Current,
    service: Service,
    q: Annotated[str | None, Query(max_length=200, description="in the name or song title")] = None,
    sort: Annotated[Sort, Query(description="a leading - sorts descending")] = "-created",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ProjectPage:
    projects, total = service.page_of(current.user, q or None, sort, limit, offset)
    return ProjectPage(
        items=[_out(request, p) for p in projects], total=total, limit=limit, offset=offset
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(InvalidSettingsError),
    summary="Create a project",
)
def create_project(
    body: ProjectCreate, request: Request, current: Current, service: Service
) -> ProjectOut:
    project = service.create(current.user, body.name, body.tags, body.settings)
    return _out(request, project)


@router.get("/{project_id}", summary="One of your projects")
def get_project(
    project_id: uuid.UUID, request: Request, current: Current, service: Service
) -> ProjectOut:
    return _out(request, service.get(current.user, project_id))


@router.patch(
    "/{project_id}",
    responses=problem_responses(InvalidSettingsError),
    summary="Rename, retag or change the render settings (which redraws the thumbnail)",
)
def update_project(
    project_id: uuid.UUID, body: ProjectUpdate, request: Request, current: Current, service: Service
) -> ProjectOut:
    project = service.update(
        current.user, project_id, name=body.name, tags=body.tags, settings=body.settings
    )
    return _out(request, project)


@router.delete(
    "/{project_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a project and its files",
)
def delete_project(project_id: uuid.UUID, current: Current, service: Service) -> None:
    service.delete(current.user, project_id)


@router.put(
    "/{project_id}/midi",
    responses=problem_responses(FileTooLargeError, UnreadableMidiError),
    summary="Upload the project's MIDI file (multipart field `file`); draws the thumbnail",
)
def upload_midi(
    project_id: uuid.UUID,
    file: Annotated[UploadFile, File(description="a Standard MIDI File (.mid)")],
    request: Request,
    current: Current,
    service: Service,
) -> ProjectOut:
    """Refused with the engine's own code (e.g. `not_midi`, `truncated_midi`) when the
    engine cannot read the file."""
    limit = service.max_midi_bytes
    data = file.file.read(limit + 1)  # one byte more tells "too large" from "exactly the limit"
    return _out(request, service.upload_midi(current.user, project_id, data))


@router.get(
    "/{project_id}/thumbnail",
    name="project_thumbnail",
    response_class=RedirectResponse,
    status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    summary="The project's thumbnail: a redirect to a signed link that expires",
)
def project_thumbnail(
    project_id: uuid.UUID, current: Current, service: Service
) -> RedirectResponse:
    url = service.thumbnail_url(current.user, project_id)
    return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)
