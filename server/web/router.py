"""Browser pages: sign-in (with the second step of two-factor), sign-out, the account home;
and ``GET /api/v1/auth/csrf`` for pages that call the API with fetch."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request, Response, status
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from notefall.server.accounts.errors import (
    InvalidAccessTokenError,
    InvalidGrantError,
    InvalidOtpError,
    OtpRequiredError,
)
from notefall.server.accounts.passwords import MAX_PASSWORD_LENGTH
from notefall.server.accounts.router import Current, SignIn
from notefall.server.kit.errors import ProblemError, problem_responses
from notefall.server.kit.ratelimit import sign_in_attempt
from notefall.server.kit.security import hash_token
from pydantic import BaseModel

from .account_pages import FORM_EXPIRED, account_pages
from .account_settings_pages import account_settings_pages
from .billing_pages import billing_pages
from .error_pages import install_error_pages
from .errors import CsrfFailedError
from .pages import (
    STATIC_DIR,
    device_of,
    error_page,
    finish,
    page_csrf_token,
    render,
    safe_next,
    signed_in,
)
from .project_pages import project_pages
from .render_pages import render_pages
from .session import (
    SIGNIN_CSRF_COOKIE,
    BrowserSessions,
    check_signin_csrf,
    clear_session_cookie,
    new_signin_csrf_token,
    set_session_cookie,
    set_signin_csrf_cookie,
    signin_csrf_cookie_is_valid,
    submitted_csrf_token,
)

pages = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/auth", tags=["auth"])

SubmittedCsrf = Annotated[str | None, Depends(submitted_csrf_token)]


class CsrfToken(BaseModel):
    csrf_token: str


@api_router.get(
    "/csrf",
    summary="The CSRF token of this browser session, for pages that call the API with fetch",
    responses=problem_responses(InvalidAccessTokenError),
)
def csrf(current: Current, sign_in: SignIn) -> CsrfToken:
    """Send it back as the `X-CSRF-Token` header on every POST, PUT, PATCH and DELETE made
    with the sign-in cookie. Bearer-token clients do not need it."""
    return CsrfToken(csrf_token=page_csrf_token(sign_in, current))


def _signin_page(
    request: Request,
    *,
    next_path: str,
    status_code: int = 200,
    error: str | None = None,
    email: str = "",
    pending: str = "",
    otp_step: bool = False,
) -> Response:
    secret = request.app.state.settings.secret_key.get_secret_value()
    token = request.cookies.get(SIGNIN_CSRF_COOKIE)
    if token is None or not signin_csrf_cookie_is_valid(secret, token):
        token = new_signin_csrf_token(secret)
    app_name = "Notefall Desktop" if next_path.startswith("/oauth/authorize") else None
    page = render(
        request,
        "signin.html",
        status_code,
        csrf_token=token,
        next=next_path,
        error=error,
        email=email,
        pending=pending,
        otp_step=otp_step,
        app_name=app_name,
        max_password_length=MAX_PASSWORD_LENGTH,
    )
    set_signin_csrf_cookie(page, token)
    return page


@pages.get("/signin")
def signin_form(request: Request, sign_in: SignIn, next: str | None = None) -> Response:
    scratch = Response()
    target = safe_next(next)
    if signed_in(request, sign_in, scratch, None) is not None:
        return finish(RedirectResponse(target, status.HTTP_303_SEE_OTHER), scratch)
    return _signin_page(request, next_path=target)


@pages.post("/signin")
def signin(
    request: Request,
    sign_in: SignIn,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=MAX_PASSWORD_LENGTH)] = "",
    otp: Annotated[str, Form(max_length=64)] = "",
    # The two-factor step: proof of the password given in the first step (never the password).
    pending: Annotated[str, Form(max_length=300)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    # Room for an OAuth authorize request: its redirect_uri alone may be 2,000 characters.
    next: Annotated[str, Form(max_length=8000)] = "/",
) -> Response:
    target = safe_next(next)
    settings = request.app.state.settings
    try:
        check_signin_csrf(request, settings, request.cookies.get(SIGNIN_CSRF_COOKIE), csrf_token)
    except CsrfFailedError as error:
        return _signin_page(request, next_path=target, status_code=403, error=error.detail)
    if not email or not (password or pending):
        return _signin_page(
            request,
            next_path=target,
            status_code=400,
            error="Enter your email address and your password.",
            email=email,
        )
    device = device_of(request)
    try:
        # The same backoff as the token endpoint's password grant: the form is no way around it.
        with sign_in_attempt(request, email, failures=(InvalidGrantError, InvalidOtpError)):
            if pending and not password:
                user = sign_in.check_second_step(pending, otp.strip() or None, device)
            else:
                user = sign_in.check_credentials(email, password, otp.strip() or None, device)
    except (OtpRequiredError, InvalidOtpError) as error:
        return _signin_page(
            request,
            next_path=target,
            status_code=400 if isinstance(error, InvalidOtpError) else 200,
            error=error.detail if isinstance(error, InvalidOtpError) else None,
            email=email,
            pending=pending if pending and not password else sign_in.pending_sign_in(email),
            otp_step=True,
        )
    except ProblemError as error:
        # Wrong password, unconfirmed address, too many attempts...: the service's own
        # words, which say what to do; never a trace.
        return _signin_page(
            request, next_path=target, status_code=error.status, error=error.detail, email=email
        )
    issued = sign_in.open_session(user, device, via="browser")
    # The session's refresh token is never handed out: the cookie stands in for it.
    found = sign_in.accounts.refresh_token_by_hash(hash_token(issued.refresh_token))
    assert found is not None  # issued in this very transaction
    cookie = BrowserSessions(sign_in.session, settings, sign_in.clock).open(found[1].id)
    response = RedirectResponse(target, status.HTTP_303_SEE_OTHER)
    set_session_cookie(response, cookie)
    response.delete_cookie(SIGNIN_CSRF_COOKIE, path="/", secure=True, httponly=True)
    return response


@pages.post("/signout")
def signout(request: Request, sign_in: SignIn, csrf_token: SubmittedCsrf) -> Response:
    """Ends the session on the server (its cookie then opens nothing) and drops the cookie."""
    scratch = Response()
    try:
        current = signed_in(request, sign_in, scratch, csrf_token)
    except CsrfFailedError:
        return error_page(request, 403, "Sign-out refused", FORM_EXPIRED)
    if current is not None:
        sign_in.sign_out(current.session, device_of(request))
    response = RedirectResponse("/signin", status.HTTP_303_SEE_OTHER)
    clear_session_cookie(response)
    return response


def signin_redirect(path_and_query: str) -> RedirectResponse:
    return RedirectResponse(f"/signin?next={quote(path_and_query, safe='')}", status.HTTP_302_FOUND)


def install_pages(app: FastAPI, api_prefix: str) -> None:
    """The pages, their static files, and the CSRF endpoint under the API prefix."""
    app.include_router(pages)
    app.include_router(account_pages)
    app.include_router(project_pages)
    app.include_router(account_settings_pages)
    app.include_router(render_pages)
    app.include_router(billing_pages)
    install_error_pages(app, api_prefix)
    app.include_router(api_router, prefix=api_prefix)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
