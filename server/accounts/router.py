"""HTTP endpoints of the accounts domain: /api/v1/auth and /api/v1/me."""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, status
from fastapi.security import OAuth2PasswordBearer
from notefall.server.kit.db import request_session
from notefall.server.kit.errors import NotFoundError, oauth_token_endpoint, problem_responses
from notefall.server.kit.ratelimit import (
    RateLimitedError,
    RateLimitUnavailableError,
    TooManyAttemptsError,
    limit_api_requests,
    limit_password_reset,
    limit_sign_up,
    sign_in_attempt,
)
from notefall.server.kit.settings import Settings
from notefall.server.oauth.errors import (
    AuthorizationCodeRefusedError,
    AuthorizationCodeReusedError,
    InvalidClientError,
)
from notefall.server.oauth.service import AuthorizationService
from notefall.server.profile.service import avatar_url
from notefall.server.web.session import SESSION_COOKIE, authenticate_cookie, submitted_csrf_token
from sqlalchemy.orm import Session

from .email_change import EmailChangeService
from .errors import (
    EmailNotVerifiedError,
    EmailTakenError,
    InvalidAccessTokenError,
    InvalidGrantError,
    InvalidOtpError,
    InvalidTokenError,
    OtpRequiredError,
    ReauthenticationRequiredError,
    RefreshTokenReusedError,
    TwoFactorStateError,
    WeakPasswordError,
    WrongPasswordError,
)
from .password_reset import PasswordService
from .schemas import (
    EmailChangeAccepted,
    EmailChangeRequest,
    EmailVerified,
    PasswordChange,
    PasswordResetAccepted,
    PasswordResetConfirm,
    PasswordResetRequest,
    Profile,
    Reauthenticated,
    ReauthRequest,
    RecoveryCodes,
    SessionInfo,
    SignupAccepted,
    SignupRequest,
    TokenRequest,
    TokenResponse,
    TwoFactorCode,
    TwoFactorSetupOut,
    VerifyEmailRequest,
)
from .service import AccountService
from .sign_in import REAUTHENTICATION_WINDOW, Authenticated, Device, IssuedTokens, SignInService
from .two_factor import TwoFactorService

router = APIRouter(prefix="/auth", tags=["auth"])
me_router = APIRouter(
    prefix="/me", tags=["account"], responses=problem_responses(InvalidAccessTokenError)
)

RequestSession = Annotated[Session, Depends(request_session, scope="function")]
# Documents the bearer scheme (and the Authorize button of /docs); the check is ours.
bearer_token = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def account_service(request: Request, session: RequestSession) -> AccountService:
    settings: Settings = request.app.state.settings
    return AccountService(session, settings, request.app.state.mailer, request.app.state.clock)


def device_of(request: Request) -> Device:
    return Device(
        user_agent=request.headers.get("user-agent"),
        ip=request.client.host if request.client else None,
    )


def sign_in_service(request: Request, session: RequestSession) -> SignInService:
    return SignInService(session, request.app.state.settings, request.app.state.clock)


def password_service(request: Request, session: RequestSession) -> PasswordService:
    settings: Settings = request.app.state.settings
    return PasswordService(session, settings, request.app.state.mailer, request.app.state.clock)


Service = Annotated[AccountService, Depends(account_service)]
SignIn = Annotated[SignInService, Depends(sign_in_service)]
Passwords = Annotated[PasswordService, Depends(password_service)]


def authenticated(
    request: Request,
    response: Response,
    service: SignIn,
    token: Annotated[str | None, Depends(bearer_token)],
    csrf_token: Annotated[str | None, Depends(submitted_csrf_token)],
) -> Authenticated:
    """A bearer access token, else the browser's sign-in cookie (whose changes need CSRF)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if token is not None or cookie is None:
        current = service.authenticate(token)
    else:
        current = authenticate_cookie(request, response, service, cookie, csrf_token)
    limit_api_requests(request, current.user.id, current.user.tier)
    return current


Current = Annotated[Authenticated, Depends(authenticated)]


@router.post(
    "/signup",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(limit_sign_up)],
    responses=problem_responses(WeakPasswordError, RateLimitedError, RateLimitUnavailableError),
    summary="Create an account and mail a verification link",
)
def signup(body: SignupRequest, request: Request, service: Service) -> SignupAccepted:
    """Answers the same for an address that already has an account (whose owner is told by mail)."""
    return service.sign_up(body.email, body.password, body.name, device_of(request))


@router.post(
    "/verify-email",
    responses=problem_responses(InvalidTokenError),
    summary="Confirm an email address with the token from the verification mail",
)
def verify_email(body: VerifyEmailRequest, request: Request, service: Service) -> EmailVerified:
    user = service.verify_email(body.token, device_of(request))
    return EmailVerified(email=user.email)


@router.post(
    "/token",
    responses=problem_responses(
        InvalidGrantError,
        InvalidOtpError,
        OtpRequiredError,
        EmailNotVerifiedError,
        RefreshTokenReusedError,
        AuthorizationCodeRefusedError,
        AuthorizationCodeReusedError,
        InvalidClientError,
        TooManyAttemptsError,
        RateLimitUnavailableError,
    ),
    summary="Sign in (grant_type=password), refresh (grant_type=refresh_token) or exchange "
    "the desktop's PKCE code (grant_type=authorization_code)",
)
@oauth_token_endpoint
def token(
    body: Annotated[TokenRequest, Form()], request: Request, response: Response, service: SignIn
) -> TokenResponse:
    """An OAuth2 token endpoint. Each refresh returns a new refresh token and retires the old
    one; presenting a retired one again ends the whole session."""
    issued: IssuedTokens
    if body.grant_type == "password":
        assert body.username is not None and body.password is not None  # the schema checks
        with sign_in_attempt(request, body.username, failures=(InvalidGrantError, InvalidOtpError)):
            issued = service.sign_in_with_password(
                body.username, body.password, device_of(request), otp=body.otp
            )
    elif body.grant_type == "authorization_code":
        assert body.code is not None  # the schema checks
        issued = AuthorizationService(service.session, service.settings, service.clock).exchange(
            service,
            code=body.code,
            client_id=body.client_id,
            redirect_uri=body.redirect_uri,
            code_verifier=body.code_verifier,
            device=device_of(request),
        )
    else:
        assert body.refresh_token is not None
        issued = service.refresh(body.refresh_token, device_of(request))
    response.headers["Cache-Control"] = "no-store"  # RFC 6749 §5.1
    return TokenResponse(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
    )


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(InvalidAccessTokenError),
    summary="Sign out: end this session and every token it issued",
)
def logout(current: Current, request: Request, service: SignIn) -> None:
    service.sign_out(current.session, device_of(request))


@router.post(
    "/password-reset/request",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(limit_password_reset)],
    responses=problem_responses(RateLimitedError, RateLimitUnavailableError),
    summary="Mail a password-reset link to the address, if it has an account",
)
def password_reset_request(body: PasswordResetRequest, service: Passwords) -> PasswordResetAccepted:
    """Answers the same whether or not the address has an account."""
    return service.request_reset(body.email)


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(InvalidTokenError, WeakPasswordError),
    summary="Set a new password with the token from the reset mail; signs out everywhere",
)
def password_reset_confirm(
    body: PasswordResetConfirm, request: Request, service: Passwords
) -> None:
    service.confirm_reset(body.token, body.password, device_of(request))


@me_router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(WrongPasswordError, WeakPasswordError, TooManyAttemptsError),
    summary="Change your password; ends your other sessions, keeps this one",
)
def change_password(
    body: PasswordChange, current: Current, request: Request, service: Passwords
) -> None:
    with guessing_guard(request, current):
        service.change_password(
            current.user,
            current.session,
            body.current_password,
            body.new_password,
            device_of(request),
        )


@me_router.get("", summary="Your profile")
def me(current: Current, request: Request, session: RequestSession, service: SignIn) -> Profile:
    user = current.user
    return Profile(
        id=user.id,
        email=user.email,
        name=user.name,
        email_verified=user.email_verified_at is not None,
        two_factor_enabled=service.second_factor.is_enabled(user),
        tier=user.tier,
        avatar_url=avatar_url(session, request.app.state.storage, user.id),
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
    response_class=Response,
    responses=problem_responses(NotFoundError),
    summary="End one of your sessions (this one included)",
)
def end_session(session_id: uuid.UUID, current: Current, request: Request, service: SignIn) -> None:
    service.end_session(current.user, session_id, device_of(request))


def email_change_service(request: Request, session: RequestSession) -> EmailChangeService:
    return EmailChangeService(
        session, request.app.state.settings, request.app.state.mailer, request.app.state.clock
    )


EmailChanges = Annotated[EmailChangeService, Depends(email_change_service)]


def recently_reauthenticated(current: Current, service: SignIn) -> Authenticated:
    """The signed-in user, if this session re-authenticated within REAUTHENTICATION_WINDOW."""
    service.require_recent_reauthentication(current)
    return current


Reauthed = Annotated[Authenticated, Depends(recently_reauthenticated)]


def guessing_guard(request: Request, current: Authenticated) -> AbstractContextManager[None]:
    """Wrong passwords and codes typed while signed in count against the same backoff as
    sign-in: a stolen session must not let anyone guess a six-digit code without limit."""
    return sign_in_attempt(
        request, current.user.email, failures=(WrongPasswordError, InvalidOtpError)
    )


@router.post(
    "/reauth",
    responses=problem_responses(
        InvalidAccessTokenError,
        WrongPasswordError,
        OtpRequiredError,
        InvalidOtpError,
        TooManyAttemptsError,
    ),
    summary="Confirm your password (and two-factor code) again before a sensitive change",
)
def reauth(
    body: ReauthRequest, current: Current, request: Request, service: SignIn
) -> Reauthenticated:
    with guessing_guard(request, current):
        service.reauthenticate(current, body.password, body.otp, device_of(request))
    assert current.session.reauthenticated_at is not None
    return Reauthenticated(
        reauthenticated_until=current.session.reauthenticated_at + REAUTHENTICATION_WINDOW
    )


@router.post(
    "/verify-email-change",
    responses=problem_responses(InvalidTokenError, EmailTakenError),
    summary="Switch your account to the new address with the token mailed there; ends your "
    "other sessions",
)
def verify_email_change(
    body: VerifyEmailRequest,
    request: Request,
    service: EmailChanges,
    sign_in: SignIn,
    token: Annotated[str | None, Depends(bearer_token)],
) -> EmailVerified:
    """Every session of the account ends, except the one sending this request, if any."""
    keep: uuid.UUID | None = None
    if token is not None:
        try:
            keep = sign_in.authenticate(token).session.id
        except InvalidAccessTokenError:
            keep = None  # the link alone is enough; an ended session just is not kept
    user = service.confirm_change(body.token, device_of(request), keep_session=keep)
    return EmailVerified(email=user.email)


def two_factor_service(request: Request, session: RequestSession) -> TwoFactorService:
    return TwoFactorService(session, request.app.state.settings, request.app.state.clock)


TwoFactors = Annotated[TwoFactorService, Depends(two_factor_service)]


@me_router.post(
    "/2fa/setup",
    responses=problem_responses(ReauthenticationRequiredError, TwoFactorStateError),
    summary="Start two-factor set-up: a new authenticator secret and its QR code",
)
def two_factor_setup(
    current: Reauthed, response: Response, service: TwoFactors
) -> TwoFactorSetupOut:
    """Nothing changes at sign-in until POST /me/2fa/enable proves the app shows the codes."""
    setup = service.set_up(current.user)
    response.headers["Cache-Control"] = "no-store"  # a secret: no cache may keep it
    return TwoFactorSetupOut(
        secret=setup.secret, otpauth_uri=setup.otpauth_uri, qr_svg=setup.qr_svg
    )


@me_router.post(
    "/2fa/enable",
    responses=problem_responses(
        ReauthenticationRequiredError, TwoFactorStateError, InvalidOtpError, TooManyAttemptsError
    ),
    summary="Turn two-factor sign-in on with a first code; returns recovery codes once",
)
def two_factor_enable(
    body: TwoFactorCode,
    current: Reauthed,
    request: Request,
    response: Response,
    service: TwoFactors,
) -> RecoveryCodes:
    with guessing_guard(request, current):
        codes = service.enable(current.user, body.code, device_of(request))
    response.headers["Cache-Control"] = "no-store"
    return RecoveryCodes(recovery_codes=codes)


@me_router.post(
    "/2fa/disable",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(
        ReauthenticationRequiredError, TwoFactorStateError, InvalidOtpError, TooManyAttemptsError
    ),
    summary="Turn two-factor sign-in off (with a current code or a recovery code)",
)
def two_factor_disable(
    body: TwoFactorCode, current: Reauthed, request: Request, service: TwoFactors
) -> None:
    with guessing_guard(request, current):
        service.disable(current.user, body.code, device_of(request))


@me_router.post(
    "/2fa/recovery-codes",
    responses=problem_responses(ReauthenticationRequiredError, TwoFactorStateError),
    summary="Replace your recovery codes; the old ones stop working",
)
def two_factor_recovery_codes(
    current: Reauthed, response: Response, service: TwoFactors
) -> RecoveryCodes:
    codes = service.regenerate_recovery_codes(current.user)
    response.headers["Cache-Control"] = "no-store"
    return RecoveryCodes(recovery_codes=codes)


@me_router.post(
    "/email",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(ReauthenticationRequiredError, EmailTakenError),
    summary="Change your email address: mails a confirmation link to the new one",
)
def change_email(
    body: EmailChangeRequest, current: Reauthed, request: Request, service: EmailChanges
) -> EmailChangeAccepted:
    """The address changes only once the link mailed to it is opened; the old one is told."""
    new_email = service.request_change(current.user, body.new_email, device_of(request))
    return EmailChangeAccepted(
        new_email=new_email,
        detail="Check the inbox of the new address: the change takes effect once you open the "
        "link we sent there (within 24 hours).",
    )
