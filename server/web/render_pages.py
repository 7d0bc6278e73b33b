"""The render pages: ``/renders`` (your recent renders) and ``/renders/{id}``, the progress
page people open from the "render finished" notification on their phone.

The page is complete without JavaScript (the render as the database has it, a refresh link,
the cancel form); render_progress.js then follows the render live over the API's WebSocket
(cookie-authenticated) and shows the video when it is done. Reading and cancelling go
through the renders domain's own service, as the API does.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from notefall.server.kit.errors import NotFoundError, ProblemError
from notefall.server.renders.models import Render
from notefall.server.renders.repository import RenderFilter
from notefall.server.renders.router import render_service
from notefall.server.renders.service import RenderService
from notefall.server.renders.states import ACTIVE, RenderStatus

from .layout import Page, SignedInPage

render_pages = APIRouter(include_in_schema=False)

Renders = Annotated[RenderService, Depends(render_service)]

PAGE_SIZE = 25
NOT_FOUND = "You have no render at this address; your renders are listed at /renders."

# What each stage means, in the words of someone waiting for their video.
STAGE_LABELS = {
    "preparing": "Reading the song and preparing the audio",
    "rendering": "Drawing and encoding the frames",
    "joining": "Joining the video and its sound",
    "thumbnail": "Making the thumbnail",
    "finalizing": "Finishing up",
}
STATUS_LABELS = {
    RenderStatus.QUEUED: "Waiting for a worker",
    RenderStatus.RUNNING: "Rendering",
    RenderStatus.SUCCEEDED: "Done",
    RenderStatus.FAILED: "Failed",
    RenderStatus.CANCELLED: "Cancelled",
    RenderStatus.DEAD: "Failed",
}


def stage_label(render_status: str, stage: str | None) -> str:
    if render_status == RenderStatus.RUNNING and stage in STAGE_LABELS:
        return STAGE_LABELS[stage]
    return STATUS_LABELS[RenderStatus(render_status)]


def eta_text(seconds: float | None) -> str:
    """'about 3 min left'; '' when unknown (a guess would be worse than nothing)."""
    if seconds is None or seconds < 0:
        return ""
    if seconds < 60:
        return "less than a minute left"
    minutes = math.ceil(seconds / 60)
    if minutes < 90:
        return f"about {minutes} min left"
    return f"about {minutes / 60:.1f} h left"


def size_text(n_bytes: int | None) -> str:
    if not n_bytes:
        return ""
    if n_bytes < 1024 * 1024:
        return f"{max(1, round(n_bytes / 1024))} KB"
    return f"{n_bytes / (1024 * 1024):.1f} MB"


def duration_text(seconds: float | None) -> str:
    if not seconds:
        return ""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


@dataclass(frozen=True)
class Video:
    """Signed links of a finished render's files, made when the page is served."""

    url: str
    poster: str | None


def _video(service: RenderService, page: Page, render: Render) -> tuple[Video | None, str]:
    """The playable video of a succeeded render, or None and why not (expired, missing)."""
    if render.status != RenderStatus.SUCCEEDED:
        return None, ""
    try:
        url = service.download_url(page.user, render.id)
    except ProblemError as error:
        return None, error.detail
    try:
        poster: str | None = service.thumbnail_url(page.user, render.id)
    except ProblemError:
        poster = None  # a video without a still plays all the same
    return Video(url=url, poster=poster), ""


def _render_id(value: str) -> uuid.UUID:
    """The id in the address; anything that is not one is a render that does not exist."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFoundError(NOT_FOUND) from None


def settings_summary(render: Render) -> str:
    settings = render.settings or {}
    parts = [
        str(settings.get("resolution") or (f"{render.height}p" if render.height else "")),
        f"{settings.get('fps')} fps" if settings.get("fps") else "",
        str(settings.get("format") or "").upper(),
    ]
    return " · ".join(p for p in parts if p)


@render_pages.get("/renders")
def renders_list(
    page: SignedInPage,
    service: Renders,
    number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
) -> Response:
    offset = (number - 1) * PAGE_SIZE
    renders, total = service.page_of(page.user, RenderFilter(), PAGE_SIZE, offset)
    rows = [
        {
            "render": r,
            "label": stage_label(r.status, r.stage),
            "active": RenderStatus(r.status) in ACTIVE,
            "summary": settings_summary(r),
        }
        for r in renders
    ]
    return page.render(
        "render_list.html",
        nav="renders",
        rows=rows,
        total=total,
        page_number=number,
        has_next=offset + len(renders) < total,
    )


@render_pages.get("/renders/{render_id}")
def render_progress(render_id: str, page: SignedInPage, service: Renders) -> Response:
    render = service.get(page.user, _render_id(render_id))  # someone else's: the 404 page
    video, gone = _video(service, page, render)
    now = service.clock()
    return page.render(
        "render_progress.html",
        nav="renders",
        render=render,
        label=stage_label(render.status, render.stage),
        eta=eta_text(render.eta_seconds) if render.status == RenderStatus.RUNNING else "",
        active=RenderStatus(render.status) in ACTIVE,
        summary=settings_summary(render),
        video=video,
        video_gone=gone,
        size=size_text(render.output_bytes),
        duration=duration_text(render.output_duration),
        percent=round(render.percent or 0.0),
        finished_ago=ago(render.finished_at, now),
    )


@render_pages.post("/renders/{render_id}/cancel")
def cancel_render(render_id: str, page: SignedInPage, service: Renders) -> Response:
    """A refused cancel (the render already ended) raises: the request's transaction rolls
    back and the error page says why, as the API would."""
    wanted = _render_id(render_id)
    service.cancel(page.user, wanted)
    return page.redirect(f"/renders/{wanted}")


def ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return ""
    if when.tzinfo is None and now.tzinfo is not None:
        now = now.replace(tzinfo=None)
    seconds = max(0, int((now - when).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"on {when:%d %b %Y}"
