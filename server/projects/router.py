"""HTTP endpoints of the projects domain: /api/v1/projects and the public /api/v1/shared."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from notefall.server.accounts.errors import InvalidAccessTokenError
from notefall.server.accounts.router import Current, RequestSession
from notefall.server.kit.errors import NotFoundError, problem_responses
from notefall.server.kit.settings import Settings
from notefall.server.storage.storage import content_disposition
from notefall.server.usage.errors import StorageQuotaExceededError
from starlette.datastructures import UploadFile as StarletteUploadFile

from .errors import (
    AlreadyCollaboratorError,
    CannotInviteOwnerError,
    FileTooLargeError,
    ForbiddenForRoleError,
    InvalidExpiryError,
    InvalidPresetError,
    InvalidSettingsError,
    TooManyTagsError,
    UnreadableAudioError,
    UnreadableMidiError,
)
from .models import Collaborator, Project, ShareLink
from .repository import ProjectFilter, Shared, Sort
from .schemas import (
    AudioSummary,
    BulkDelete,
    BulkDeleted,
    BulkTag,
    CollaboratorInvite,
    CollaboratorOut,
    CollaboratorUpdate,
    DuplicateRequest,
    ProjectCreate,
    ProjectList,
    ProjectOut,
    ProjectPage,
    ProjectUpdate,
    SettingsPreset,
    SharedProjectOut,
    ShareLinkCreate,
    ShareLinkCreated,
    ShareLinkOut,
    SongSummary,
)
from .service import MAX_PRESET_BYTES, ProjectService, file_slug
from .sharing import SharingService

router = APIRouter(
    prefix="/projects",
    tags=["projects"],
    responses=problem_responses(InvalidAccessTokenError, NotFoundError, ForbiddenForRoleError),
)
shared_router = APIRouter(prefix="/shared", tags=["projects"])


def project_service(request: Request, session: RequestSession) -> ProjectService:
    settings: Settings = request.app.state.settings
    return ProjectService(session, request.app.state.storage, settings.max_midi_bytes)


Service = Annotated[ProjectService, Depends(project_service)]


def sharing_service(request: Request, projects: Service) -> SharingService:
    settings: Settings = request.app.state.settings
    return SharingService(
        projects,
        settings.secret_key.get_secret_value(),
        settings.public_url,
        request.app.state.mailer,
        lambda: request.app.state.clock(),
    )


Sharing = Annotated[SharingService, Depends(sharing_service)]


def _song(project: Project) -> SongSummary | None:
    if project.midi_sha256 is None:
        return None
    assert project.song_title is not None and project.song_duration is not None
    assert project.note_count is not None
    return SongSummary(
        title=project.song_title,
        duration=project.song_duration,
        note_count=project.note_count,
        midi_sha256=project.midi_sha256,
    )


def _out(request: Request, project: Project, role: str) -> ProjectOut:
    audio = None
    if project.audio_sha256 is not None:
        assert project.audio_codec is not None
        audio = AudioSummary(
            duration=project.audio_duration, codec=project.audio_codec, sha256=project.audio_sha256
        )
    thumbnail_url = None
    if project.thumbnail_key is not None:
        thumbnail_url = str(request.url_for("project_thumbnail", project_id=project.id).path)
    return ProjectOut(
        id=project.id,
        name=project.name,
        role=role,  # type: ignore[arg-type]  # "owner" or a Role value
        tags=project.tags,
        settings=project.settings,
        song=_song(project),
        audio=audio,
        thumbnail_url=thumbnail_url,
        created_at=project.created_at,
        updated_at=project.updated_at,
    )


def _mine(
    request: Request, current: Current, service: ProjectService, project: Project
) -> ProjectOut:
    return _out(request, project, service.role_of(current.user, project))


@router.get("", summary="Your projects and those shared with you, newest first by default")
def list_projects(
    request: Request,
    current: Current,
    service: Service,
    q: Annotated[
        str | None, Query(max_length=200, description="in the name, a tag or the song title")
    ] = None,
    tag: Annotated[list[str], Query(description="only projects with every tag given")] = [],  # noqa: B006
    created_after: Annotated[datetime | None, Query(description="created at or after")] = None,
    created_before: Annotated[datetime | None, Query(description="created before")] = None,
    shared: Annotated[
        Shared, Query(description="mine: yours; with_me: shared with you; all: both")
    ] = "mine",
    has_renders: Annotated[
        bool | None,
        Query(description="true: only projects with a finished video; false: only without"),
    ] = None,
    sort: Annotated[Sort, Query(description="a leading - sorts descending")] = "-created",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ProjectPage:
    where = ProjectFilter(
        query=q or None,
        tags=tag,
        created_after=created_after,
        created_before=created_before,
        shared=shared,
        has_renders=has_renders,
        sort=sort,
    )
    projects, total = service.page_of(current.user, where, limit, offset)
    roles = service.roles_of(current.user, projects)
    return ProjectPage(
        items=[_out(request, p, roles[p.id]) for p in projects],
        total=total,
        limit=limit,
        offset=offset,
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
    return _mine(request, current, service, project)


@router.post(
    "/bulk-delete",
    summary="Delete several of your projects and their files, all or none",
)
def bulk_delete(body: BulkDelete, current: Current, service: Service) -> BulkDeleted:
    """Any id that is not one of your projects refuses the whole request (404, or 403
    for a project you only collaborate on) and nothing is deleted."""
    return BulkDeleted(deleted=service.bulk_delete(current.user, body.ids))


@router.post(
    "/bulk-tag",
    responses=problem_responses(TooManyTagsError),
    summary="Add and remove tags on several projects, all or none",
)
def bulk_tag(body: BulkTag, request: Request, current: Current, service: Service) -> ProjectList:
    """`remove` matches tags case-insensitively; `add` appends tags not already there."""
    projects = service.bulk_tag(current.user, body.ids, body.add, body.remove)
    roles = service.roles_of(current.user, projects)
    return ProjectList(items=[_out(request, p, roles[p.id]) for p in projects])


@router.get("/{project_id}", summary="One of your projects, or one shared with you")
def get_project(
    project_id: uuid.UUID, request: Request, current: Current, service: Service
) -> ProjectOut:
    return _mine(request, current, service, service.get(current.user, project_id))


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
    return _mine(request, current, service, project)


@router.delete(
    "/{project_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a project and its files (its owner only)",
)
def delete_project(project_id: uuid.UUID, current: Current, service: Service) -> None:
    service.delete(current.user, project_id)


@router.put(
    "/{project_id}/midi",
    responses=problem_responses(FileTooLargeError, UnreadableMidiError, StorageQuotaExceededError),
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
    engine cannot read the file. The limit is the smaller of your plan's and the server's."""
    limit = service.max_midi_bytes(current.user)
    data = file.file.read(limit + 1)  # one byte more tells "too large" from "exactly the limit"
    return _mine(request, current, service, service.upload_midi(current.user, project_id, data))


@router.put(
    "/{project_id}/audio",
    responses=problem_responses(FileTooLargeError, UnreadableAudioError, StorageQuotaExceededError),
    summary="Upload your recording (multipart field `file`): WAV, FLAC, MP3, OGG, M4A, ...",
)
def upload_audio(
    project_id: uuid.UUID,
    file: Annotated[UploadFile, File(description="an audio file FFmpeg can read")],
    request: Request,
    current: Current,
    service: Service,
) -> ProjectOut:
    """The setting `audio_offset_ms` places it against the notes. The size limit is your plan's."""
    limit = service.max_audio_bytes(current.user)
    data = file.file.read(limit + 1)
    project = service.upload_audio(current.user, project_id, data, file.filename)
    return _mine(request, current, service, project)


@router.delete("/{project_id}/audio", summary="Remove the recording (renders synthesize again)")
def delete_audio(
    project_id: uuid.UUID, request: Request, current: Current, service: Service
) -> ProjectOut:
    return _mine(request, current, service, service.delete_audio(current.user, project_id))


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


@router.get(
    "/{project_id}/midi",
    name="project_midi",
    response_class=RedirectResponse,
    status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    responses=problem_responses(NotFoundError),
    summary="The project's MIDI file: a redirect to a signed link (15 minutes)",
)
def project_midi(project_id: uuid.UUID, current: Current, service: Service) -> RedirectResponse:
    url = service.source_file_url(current.user, project_id, "midi")
    return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.get(
    "/{project_id}/audio",
    name="project_audio",
    response_class=RedirectResponse,
    status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    responses=problem_responses(NotFoundError),
    summary="The project's recording: a redirect to a signed link (15 minutes)",
)
def project_audio(project_id: uuid.UUID, current: Current, service: Service) -> RedirectResponse:
    url = service.source_file_url(current.user, project_id, "audio")
    return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.post(
    "/{project_id}/duplicate",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(StorageQuotaExceededError),
    summary="Copy a project (settings, tags and files) into your own projects",
)
def duplicate_project(
    project_id: uuid.UUID,
    request: Request,
    current: Current,
    service: Service,
    body: DuplicateRequest | None = None,
) -> ProjectOut:
    copy = service.duplicate(current.user, project_id, body.name if body else None)
    return _out(request, copy, "owner")


@router.get(
    "/{project_id}/settings/export",
    response_model=SettingsPreset,
    summary="The render settings as a preset file to import into another project",
)
def export_settings(project_id: uuid.UUID, current: Current, service: Service) -> Response:
    project, preset = service.export_settings(current.user, project_id)
    # RFC 6266: an ASCII name for old clients (accents folded, "Émile" -> "emile") and the
    # project's own name, UTF-8 percent-encoded (RFC 5987), for every current browser.
    slug = file_slug(project.name)
    suffix = ".notefall-preset.json"
    return Response(
        json.dumps(preset, indent=2, sort_keys=True) + "\n",
        media_type="application/json",
        headers={"Content-Disposition": content_disposition(project.name + suffix, slug + suffix)},
    )


_PRESET_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "a preset as exported: JSON, or a multipart form with the file in `file`",
        "content": {
            "application/json": {"schema": SettingsPreset.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


@router.post(
    "/{project_id}/settings/import",
    openapi_extra=_PRESET_BODY,
    responses=problem_responses(InvalidPresetError, InvalidSettingsError, FileTooLargeError),
    summary="Replace the render settings with a preset's (redraws the thumbnail)",
)
async def import_settings(
    project_id: uuid.UUID, request: Request, current: Current, service: Service
) -> ProjectOut:
    """Validated like any settings: unknown fields and settings naming files are refused."""
    raw = await _preset_bytes(request)
    try:
        preset = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidPresetError(
            "This preset is not JSON; export it again from a project."
        ) from None

    def apply() -> ProjectOut:  # database and drawing work: off the event loop
        project = service.import_settings(current.user, project_id, preset)
        return _mine(request, current, service, project)

    return await run_in_threadpool(apply)


async def _preset_bytes(request: Request) -> bytes:
    too_large = FileTooLargeError(
        f"A preset is at most {MAX_PRESET_BYTES // 1024} KB; this is not a settings preset."
    )
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=0)
        upload = form.get("file")
        if not isinstance(upload, StarletteUploadFile):
            raise InvalidPresetError("Send the preset file in the multipart field `file`.")
        data = await upload.read(MAX_PRESET_BYTES + 1)
    else:
        data = b""
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_PRESET_BYTES:
                break
    if len(data) > MAX_PRESET_BYTES:
        raise too_large
    return data


# Sharing ---------------------------------------------------------------------------------


def _link_out(link: ShareLink) -> ShareLinkOut:
    return ShareLinkOut(id=link.id, created_at=link.created_at, expires_at=link.expires_at)


@router.post(
    "/{project_id}/share-links",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(InvalidExpiryError),
    summary="A read-only link anyone may open without signing in (owner only)",
)
def create_share_link(
    project_id: uuid.UUID,
    request: Request,
    current: Current,
    sharing: Sharing,
    body: ShareLinkCreate | None = None,
) -> ShareLinkCreated:
    """The token is in the answer once; only its hash is kept, so a lost link is revoked
    and made anew."""
    link, token = sharing.create_link(current.user, project_id, body.expires_at if body else None)
    settings: Settings = request.app.state.settings
    path = request.url_for("shared_project", token=token).path
    return ShareLinkCreated(
        **_link_out(link).model_dump(), token=token, url=settings.public_url + path
    )


@router.get("/{project_id}/share-links", summary="The project's live share links (owner only)")
def list_share_links(
    project_id: uuid.UUID, current: Current, sharing: Sharing
) -> list[ShareLinkOut]:
    return [_link_out(link) for link in sharing.links(current.user, project_id)]


@router.delete(
    "/{project_id}/share-links/{link_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Revoke a share link: it answers 404 from now on (owner only)",
)
def revoke_share_link(
    project_id: uuid.UUID, link_id: uuid.UUID, current: Current, sharing: Sharing
) -> None:
    sharing.revoke_link(current.user, project_id, link_id)


def _collaborators_out(
    sharing: SharingService, members: list[Collaborator]
) -> list[CollaboratorOut]:
    active = sharing.shown_as_active([m.email for m in members])
    return [
        CollaboratorOut(
            id=m.id,
            email=m.email,
            role=m.role,  # type: ignore[arg-type]  # a Role value
            status="active" if m.email in active else "invited",
            created_at=m.created_at,
        )
        for m in members
    ]


@router.post(
    "/{project_id}/collaborators",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(AlreadyCollaboratorError, CannotInviteOwnerError),
    summary="Share with someone by email as viewer or editor; mails them (owner only)",
)
def invite_collaborator(
    project_id: uuid.UUID, body: CollaboratorInvite, current: Current, sharing: Sharing
) -> CollaboratorOut:
    """The address need not have an account yet: the share takes effect once a verified
    account has it."""
    member = sharing.invite(current.user, project_id, body.email, body.role)
    return _collaborators_out(sharing, [member])[0]


@router.get("/{project_id}/collaborators", summary="Who the project is shared with (owner only)")
def list_collaborators(
    project_id: uuid.UUID, current: Current, sharing: Sharing
) -> list[CollaboratorOut]:
    return _collaborators_out(sharing, sharing.collaborators(current.user, project_id))


@router.patch(
    "/{project_id}/collaborators/{collaborator_id}",
    summary="Change a collaborator's role (owner only)",
)
def change_collaborator_role(
    project_id: uuid.UUID,
    collaborator_id: uuid.UUID,
    body: CollaboratorUpdate,
    current: Current,
    sharing: Sharing,
) -> CollaboratorOut:
    member = sharing.change_role(current.user, project_id, collaborator_id, body.role)
    return _collaborators_out(sharing, [member])[0]


@router.delete(
    "/{project_id}/collaborators/{collaborator_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Stop sharing with a collaborator (owner only)",
)
def remove_collaborator(
    project_id: uuid.UUID, collaborator_id: uuid.UUID, current: Current, sharing: Sharing
) -> None:
    sharing.remove(current.user, project_id, collaborator_id)


@shared_router.get(
    "/{token}",
    name="shared_project",
    responses=problem_responses(NotFoundError),
    summary="A project behind a share link; no sign-in needed",
)
def shared_project(token: str, sharing: Sharing) -> SharedProjectOut:
    """Revoked, expired and made-up links all answer 404 `not_found`."""
    project = sharing.shared_project(token)
    thumbnail = sharing.projects.thumbnail_link(project) if project.thumbnail_key else None
    return SharedProjectOut(
        name=project.name, song=_song(project), settings=project.settings, thumbnail_url=thumbnail
    )
