"""GET /api/v1/me/activity: the signed-in user's own activity log, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from notefall.server.accounts.errors import InvalidAccessTokenError
from notefall.server.accounts.router import Current, RequestSession
from notefall.server.kit.errors import problem_responses

from .repository import ActivityRepository
from .schemas import ActivityOut, ActivityPage

router = APIRouter(
    prefix="/me", tags=["account"], responses=problem_responses(InvalidAccessTokenError)
)


@router.get(
    "/activity", summary="Your account's activity: sign-ins, security changes, renders, billing"
)
def my_activity(
    current: Current,
    session: RequestSession,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[datetime | None, Query(description="Only events older than this.")] = None,
) -> ActivityPage:
    events = ActivityRepository(session).newest_first(
        current.user.id, limit=limit + 1, before=before
    )
    more = len(events) > limit
    events = events[:limit]
    return ActivityPage(
        items=[
            ActivityOut(kind=e.kind, at=e.at, ip=e.ip, user_agent=e.user_agent, detail=e.detail)
            for e in events
        ],
        next_before=events[-1].at if more else None,
    )
