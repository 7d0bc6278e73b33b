"""HTTP endpoints of the renders domain: /api/v1/renders and a project's render history.

The WebSocket of live events (/api/v1/renders/{id}/events) has its own module.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import redis
from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from notefall.server.accounts.errors import InvalidAccessTokenError
from notefall.server.accounts.router import Current, RequestSession
from notefall.server.kit.errors import NotFoundError, problem_responses
from notefall.server.kit.ratelimit import redis_client
from notefall.server.kit.settings import Settings
from notefall.server.projects.errors import (
    ForbiddenForRoleError,
    InvalidSettingsError,
    UnreadableMidiError,
)
from notefall.server.usage.errors import StorageQuotaExceededError

from .errors import (
    IdempotencyKeyReusedError,
    InvalidIdempotencyKeyError,
    NotInPlanError,
    ProjectHasNoMidiError,
    RenderExpiredError,
    RenderFinishedError,
    RenderHasNoVideoError,
    RenderNotReadyError,
    RenderQuotaExceededError,
    TooManyConcurrentRendersError,
)
from .models import Render
from .repository import RenderFilter
from .schemas import (
    RenderCreate,
    RenderError,
    RenderLinks,
    RenderOut,
    RenderOutput,
    RenderPage,
    Segments,
    Status,
)
from .service import Outcome, RenderService
from .states import RenderStatus

API_PREFIX = "/api/v1"
# Response headers of a submit answered with an existing render (200 instead of 202).
REPLAYED_HEADER = "Idempotent-Replayed"
DUPLICATE_HEADER = "Notefall-Duplicate-Of"

router = APIRouter(
    tags=["renders"],
    responses=problem_responses(InvalidAccessTokenError, NotFoundError),
)


def _redis(request: Request) -> redis.Redis | None:
    """The app's Redis for events and cancel flags (short timeouts), made on first use."""
    state = request.app.state
    client: redis.Redis | None = getattr(state, "render_redis", None)
    settings: Settings = state.settings
    if client is None and settings.redis_url:
        client = state.render_redis = redis_client(settings.redis_url)
    return client


def render_service(request: Request, session: RequestSession) -> RenderService:
    return RenderService(
        session,
        request.app.state.storage,
        request.app.state.settings,
        _redis(request),
        lambda: request.app.state.clock(),
    )


Service = Annotated[RenderService, Depends(render_service)]


def _out(
    request: Request, render: Render, service: RenderService, viewer: uuid.UUID | None = None
) -> RenderOut:
    """``viewer``: who asks, when it may be someone else than the owner (a project's history
    shows its owner collaborators' renders, whose files and events only they may open)."""
    succeeded = render.status == RenderStatus.SUCCEEDED.value
    own = viewer is None or viewer == render.owner_id
    kept = own and succeeded and (render.expires_at is None or render.expires_at > service.clock())
    output = None
    if succeeded:
        output = RenderOutput(
            duration=render.output_duration,
            bytes=render.output_bytes,
            codec=render.output_codec,
            width=render.width,
            height=render.height,
            fps=render.fps,
            format=render.format,
        )
    error = None
    if render.error_code is not None:
        error = RenderError(code=render.error_code, message=render.error_message or "")

    def link(name: str) -> str:
        return str(request.url_for(name, render_id=render.id).path)

    return RenderOut(
        id=render.id,
        project_id=render.project_id,
        project_name=render.project_name,
        status=render.status,  # type: ignore[arg-type]  # a RenderStatus value
        stage=render.stage,
        percent=round(render.percent, 1),
        eta_seconds=None if render.eta_seconds is None else round(render.eta_seconds),
        settings=render.settings,
        tier=render.tier,
        queue=render.queue,
        created_at=render.created_at,
        started_at=render.started_at,
        finished_at=render.finished_at,
        expires_at=render.expires_at,
        error=error,
        output=output,
        segments=Segments(done=render.segments_done, total=render.segment_count),
        links=RenderLinks(
            events=f"{API_PREFIX}/renders/{render.id}/events" if own else None,
            download=link("render_download") if kept and render.output_key else None,
            thumbnail=link("render_thumbnail") if kept and render.thumbnail_key else None,
        ),
    )


def _page(
    request: Request,
    service: RenderService,
    page: tuple[list[Render], int],
    limit: int,
    offset: int,
    viewer: uuid.UUID | None = None,
) -> RenderPage:
    renders, total = page
    items = [_out(request, r, service, viewer) for r in renders]
    return RenderPage(items=items, total=total, limit=limit, offset=offset)


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="1–200 visible ASCII characters; the same key returns the same render",
    ),
]
StatusFilter = Annotated[
    list[Status], Query(alias="status", description="only renders in these states")
]
Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0)]


@router.post(
    "/renders",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {
            "description": f"An existing render: the Idempotency-Key's ({REPLAYED_HEADER}: "
            f"true) or an equal one still queued, running or kept ({DUPLICATE_HEADER}: its id)",
            "model": RenderOut,
        },
        **problem_responses(
            InvalidSettingsError,
            InvalidIdempotencyKeyError,
            IdempotencyKeyReusedError,
            UnreadableMidiError,
            ProjectHasNoMidiError,
            RenderQuotaExceededError,
            TooManyConcurrentRendersError,
            StorageQuotaExceededError,
            NotInPlanError,
            ForbiddenForRoleError,
        ),
    },
    summary="Render a project's video in the cloud (queued; watch its events)",
)
def submit_render(
    body: RenderCreate,
    request: Request,
    response: Response,
    current: Current,
    service: Service,
    idempotency_key: IdempotencyKey = None,
) -> RenderOut:
    """`settings` are laid over the project's own. You need to own the project or edit it;
    the render is yours and counts against your plan. See docs/renders.md#submitting."""
    submitted = service.submit(current.user, body.project_id, body.settings, idempotency_key)
    render = submitted.render
    if submitted.outcome is Outcome.CREATED:
        response.headers["Location"] = str(request.url_for("get_render", render_id=render.id).path)
    else:
        response.status_code = status.HTTP_200_OK
        if submitted.outcome is Outcome.REPLAYED:
            response.headers[REPLAYED_HEADER] = "true"
        else:
            response.headers[DUPLICATE_HEADER] = str(render.id)
    return _out(request, render, service)


@router.get("/renders", summary="Your renders, newest first")
def list_renders(
    request: Request,
    current: Current,
    service: Service,
    project_id: Annotated[uuid.UUID | None, Query(description="only this project's")] = None,
    statuses: StatusFilter = [],  # noqa: B006
    limit: Limit = 20,
    offset: Offset = 0,
) -> RenderPage:
    where = RenderFilter(project_id=project_id, statuses=[RenderStatus(s) for s in statuses])
    return _page(
        request, service, service.page_of(current.user, where, limit, offset), limit, offset
    )


@router.get(
    "/projects/{project_id}/renders",
    summary="A project's render history: everyone's for its owner, yours for a collaborator",
)
def project_renders(
    project_id: uuid.UUID,
    request: Request,
    current: Current,
    service: Service,
    statuses: StatusFilter = [],  # noqa: B006
    limit: Limit = 20,
    offset: Offset = 0,
) -> RenderPage:
    where = RenderFilter(statuses=[RenderStatus(s) for s in statuses])
    page = service.project_history(current.user, project_id, where, limit, offset)
    return _page(request, service, page, limit, offset, viewer=current.user.id)


@router.get("/renders/{render_id}", name="get_render", summary="One of your renders")
def get_render(
    render_id: uuid.UUID, request: Request, current: Current, service: Service
) -> RenderOut:
    return _out(request, service.get(current.user, render_id), service)


@router.post(
    "/renders/{render_id}/cancel",
    responses=problem_responses(RenderFinishedError),
    summary="Cancel a queued or running render (nothing is charged)",
)
def cancel_render(
    render_id: uuid.UUID, request: Request, current: Current, service: Service
) -> RenderOut:
    """Cancelling a cancelled render answers 200 again; a finished one is refused."""
    return _out(request, service.cancel(current.user, render_id), service)


@router.get(
    "/renders/{render_id}/download",
    name="render_download",
    response_class=RedirectResponse,
    status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    responses=problem_responses(RenderNotReadyError, RenderHasNoVideoError, RenderExpiredError),
    summary="The video: a redirect to a signed link that expires in 15 minutes",
)
def download_render(render_id: uuid.UUID, current: Current, service: Service) -> RedirectResponse:
    url = service.download_url(current.user, render_id)
    return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.get(
    "/renders/{render_id}/thumbnail",
    name="render_thumbnail",
    response_class=RedirectResponse,
    status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    responses=problem_responses(RenderNotReadyError, RenderHasNoVideoError, RenderExpiredError),
    summary="A still of the video: a redirect to a signed link that expires",
)
def render_thumbnail(render_id: uuid.UUID, current: Current, service: Service) -> RedirectResponse:
    url = service.thumbnail_url(current.user, render_id)
    return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)
