"""HTTP endpoints of the accounts domain, under /api/v1/auth."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from notefall.server.kit.db import request_session
from notefall.server.kit.errors import problem_responses
from notefall.server.kit.mail import Outbox
from notefall.server.kit.settings import Settings
from sqlalchemy.orm import Session

from .errors import InvalidTokenError, WeakPasswordError
from .schemas import EmailVerified, SignupAccepted, SignupRequest, VerifyEmailRequest
from .service import AccountService

router = APIRouter(prefix="/auth", tags=["auth"])


def account_service(
    request: Request,
    session: Annotated[Session, Depends(request_session, scope="function")],
) -> AccountService:
    settings: Settings = request.app.state.settings
    return AccountService(session, settings, Outbox(settings.outbox_dir))


Service = Annotated[AccountService, Depends(account_service)]


@router.post(
    "/signup",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(WeakPasswordError),
    summary="Create an account and mail a verification link",
)
def signup(body: SignupRequest, service: Service) -> SignupAccepted:
    """Answers the same for an address that already has an account (whose owner is told by mail)."""
    return service.sign_up(body.email, body.password, body.name)


@router.post(
    "/verify-email",
    responses=problem_responses(InvalidTokenError),
    summary="Confirm an email address with the token from the verification mail",
)
def verify_email(body: VerifyEmailRequest, service: Service) -> EmailVerified:
    user = service.verify_email(body.token)
    return EmailVerified(email=user.email)
