"""Operator endpoints of the render farm: ``/api/v1/admin/dead-letters``.

Only users with ``is_admin`` (``notefall admin set-admin EMAIL``) may call them; anyone
else signed in gets 403 ``admin_only``, and an anonymous caller 401.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from http import HTTPStatus
from typing import Annotated

import redis
from fastapi import APIRouter, Depends, Request, Response, status
from notefall.server.accounts.errors import InvalidAccessTokenError
from notefall.server.accounts.router import Current, RequestSession
from notefall.server.accounts.sign_in import Authenticated
from notefall.server.kit.errors import NotFoundError, ProblemError, problem_responses
from pydantic import BaseModel

from .deadletters import DeadLetter, DeadLetterService, NotDeadLetterError


class AdminOnlyError(ProblemError):
    status = HTTPStatus.FORBIDDEN
    code = "admin_only"
    title = "Operators only"


def operator(current: Current) -> Authenticated:
    if not current.user.is_admin:
        raise AdminOnlyError(
            "Only operators may do this; an operator can grant the right with "
            "`notefall admin set-admin EMAIL`."
        )
    return current


Operator = Annotated[Authenticated, Depends(operator)]

router = APIRouter(
    prefix="/admin/dead-letters",
    tags=["operations"],
    responses=problem_responses(InvalidAccessTokenError, AdminOnlyError),
)


class DeadLetterOut(BaseModel):
    render_id: uuid.UUID
    owner_id: uuid.UUID
    project_name: str
    queue: str
    attempt: int
    step: str | None
    reason: str
    error_code: str | None
    died_at: datetime | None


class DeadLetterList(BaseModel):
    items: list[DeadLetterOut]


class RequeuedOut(BaseModel):
    render_id: uuid.UUID
    status: str
    attempt: int


def _redis(request: Request) -> redis.Redis | None:
    limiter = request.app.state.rate_limiter
    return None if limiter is None else limiter.client


def dead_letter_service(request: Request, session: RequestSession) -> DeadLetterService:
    state = request.app.state
    return DeadLetterService(session, state.settings, _redis(request), state.storage, state.clock())


Service = Annotated[DeadLetterService, Depends(dead_letter_service)]


def _out(letter: DeadLetter) -> DeadLetterOut:
    return DeadLetterOut(
        render_id=letter.render_id,
        owner_id=letter.owner_id,
        project_name=letter.project_name,
        queue=letter.queue,
        attempt=letter.attempt,
        step=letter.step,
        reason=letter.reason,
        error_code=letter.error_code,
        died_at=letter.died_at,
    )


@router.get("", summary="Renders in the dead-letter queue, oldest first, with the reason")
def list_dead_letters(_operator: Operator, service: Service) -> DeadLetterList:
    return DeadLetterList(items=[_out(letter) for letter in service.list()])


@router.post(
    "/{render_id}/requeue",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(NotFoundError, NotDeadLetterError),
    summary="Start a dead render over as a new attempt",
)
def requeue_dead_letter(render_id: uuid.UUID, _operator: Operator, service: Service) -> RequeuedOut:
    render = service.requeue(render_id)
    return RequeuedOut(render_id=render.id, status=render.status, attempt=render.attempt)


@router.delete(
    "/{render_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(NotFoundError, NotDeadLetterError),
    summary="Take a dead render off the list (it stays dead) and delete its work files",
)
def discard_dead_letter(render_id: uuid.UUID, _operator: Operator, service: Service) -> None:
    service.discard(render_id)
