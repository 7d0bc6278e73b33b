"""HTTP endpoints of the accounts domain: /api/v1/auth and /api/v1/me."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, status
from fastapi.security import OAuth2PasswordBearer
from notefall.server.kit.db import request_session
from notefall.server.kit.errors import NotFoundError, problem_responses
from notefall.server.kit.mail import Outbox
from notefall.server.kit.settings import Settings
from sqlalchemy.orm import Session

from .errors import (
    EmailNotVerifiedError,
    InvalidAccessTokenError,
    InvalidGrantError,
    InvalidTokenError,
    RefreshTokenReusedError,
    WeakPasswordError,
    WrongPasswordError,
)
from .password_reset import PasswordService
from .schemas import (
    EmailVerified,
    PasswordChange,
    PasswordResetAccepted,
    PasswordResetConfirm,
    PasswordResetRequest,
    Profile,
    SessionInfo,
    SignupAccepted,
    SignupRequest,
    TokenRequest,
    TokenResponse,
    VerifyEmailRequest,
)
from .service import AccountService
from .sign_in import Authenticated, Device, IssuedTokens, SignInService

router = APIRouter(prefix="/auth", tags=["auth"])
me_router = APIRouter(
    prefix="/me", tags=["account"], responses=problem_responses(InvalidAccessTokenError)
)

RequestSession = Annotated[Session, Depends(request_session, scope="function")]
# Documents the bearer scheme (and the Authorize button of /docs); the check is ours.
bearer_token = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def account_service(request: Request, session: RequestSession) -> AccountService:
    settings: Settings = request.app.state.settings
    return AccountService(session, settings, Outbox(settings.outbox_dir))


def sign_in_service(request: Request, session: RequestSession) -> SignInService:
    return SignInService(session, request.app.state.settings, request.app.state.clock)


def password_service(request: Request, session: RequestSession) -> PasswordService:
    settings: Settings = request.app.state.settings
    return PasswordService(session, settings, Outbox(settings.outbox_dir), request.app.state.clock)


Service = Annotated[AccountService, Depends(account_service)]
SignIn = Annotated[SignInService, Depends(sign_in_service)]
Passwords = Annotated[PasswordService, Depends(password_service)]


def authenticated(
    service: SignIn, token: Annotated[str | None, Depends(bearer_token)]
) -> Authenticated:
    return service.authenticate(token)


Current = Annotated[Authenticated, Depends(authenticated)]


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


@router.post(
    "/token",
    responses=problem_responses(InvalidGrantError, EmailNotVerifiedError, RefreshTokenReusedError),
    summary="Sign in (grant_type=password) or refresh (grant_type=refresh_token)",
)
def token(
    body: Annotated[TokenRequest, Form()], request: Request, response: Response, service: SignIn
) -> TokenResponse:
    """An OAuth2 token endpoint. Each refresh returns a new refresh token and retires the old
    one; presenting a retired one again ends the whole session."""
    issued: IssuedTokens
    if body.grant_type == "password":
        assert body.username is not None and body.password is not None  # the schema checks
        device = Device(
            user_agent=request.headers.get("user-agent"),
            ip=request.client.host if request.client else None,
        )
        issued = service.sign_in_with_password(body.username, body.password, device)
    else:
        assert body.refresh_token is not None
        issued = service.refresh(body.refresh_token)
    response.headers["Cache-Control"] = "no-store"  # RFC 6749 §5.1
    return TokenResponse(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
    )


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(InvalidAccessTokenError),
    summary="Sign out: end this session and every token it issued",
)
def logout(current: Current, service: SignIn) -> None:
    service.sign_out(current.session)


@router.post(
    "/password-reset/request",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Mail a password-reset link to the address, if it has an account",
)
def password_reset_request(body: PasswordResetRequest, service: Passwords) -> PasswordResetAccepted:
    """Answers the same whether or not the address has an account."""
    return service.request_reset(body.email)


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(InvalidTokenError, WeakPasswordError),
    summary="Set a new password with the token from the reset mail; signs out everywhere",
)
def password_reset_confirm(body: PasswordResetConfirm, service: Passwords) -> None:
    service.confirm_reset(body.token, body.password)


@me_router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(WrongPasswordError, WeakPasswordError),
    summary="Change your password; ends your other sessions, keeps this one",
)
def change_password(body: PasswordChange, current: Current, service: Passwords) -> None:
    service.change_password(current.user, current.session, body.current_password, body.new_password)


@me_router.get("", summary="Your profile")
def me(current: Current) -> Profile:
    user = current.user
    return Profile(
        id=user.id,
        email=user.email,
        name=user.name,
        email_verified=user.email_verified_at is not None,
    )


@me_router.get("/sessions", summary="Where you are signed in")
def my_sessions(current: Current, service: SignIn) -> list[SessionInfo]:
    return [
        SessionInfo(
            id=s.id,
            created_at=s.created_at,
            last_seen_at=s.last_seen_at,
            user_agent=s.user_agent,
            ip=s.ip,
            current=s.id == current.session.id,
        )
        for s in service.sessions_of(current.user)
    ]


@me_router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(NotFoundError),
    summary="End one of your sessions (this one included)",
)
def end_session(session_id: uuid.UUID, current: Current, service: SignIn) -> None:
    service.end_session(current.user, session_id)
